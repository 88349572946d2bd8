// How numbers, durations, stages and skip reasons read in the panel.
import type { RunState } from '../shared/protocol/panel';
import type { SkipReason, SkippedFile, Stage } from '../shared/types';
import { STAGE_LABELS } from '../shared/stages';
import { countedSkipReason, SKIP_REASON_WORDS, type UnlistedSkips } from '../shared/skipReasons';

/** 0.8123 → "81.2%" (or "81%" with 0 digits). */
export function formatPercent(fraction: number, digits = 1): string {
  if (!Number.isFinite(fraction)) return '–';
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** Seconds → "0:42", "12:05" or "1:02:03". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** A metric such as a loss: 3 significant digits. */
export function formatMetric(value: number): string {
  if (!Number.isFinite(value)) return '–';
  return Math.abs(value) >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

/** A learning rate: 0.001 → "1e-3", 0.0005 → "5e-4", 0.00025 → "2.5e-4". */
export function formatLearningRate(lr: number): string {
  if (!Number.isFinite(lr) || lr <= 0) return String(lr);
  const [mantissa, exponent] = lr.toExponential(2).split('e');
  return `${Number(mantissa)}e${Number(exponent)}`;
}

/** An integer with thousands separators. */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** The stage in words. */
export function stageLabel(stage: Stage): string {
  return STAGE_LABELS[stage];
}

/** What a progress unit of the stage is. */
export function stageUnit(stage: Stage): string {
  return stage === 'head' || stage === 'fine-tune' ? 'batches' : stage === 'scan' ? 'files' : 'images';
}

const RUN_STATE_LABELS: Record<RunState, string> = {
  starting: 'Starting',
  running: 'Running',
  finished: 'Finished',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** The run state in words. */
export function runStateLabel(state: RunState): string {
  return RUN_STATE_LABELS[state];
}

/** One reason in words, e.g. "not an image". */
export function skipReasonLabel(reason: SkipReason): string {
  return SKIP_REASON_WORDS[reason]?.[0] ?? reason;
}

/** "3 files skipped: 2 not images, 1 over the pixel limit", counting those the report does not list (`unlisted`). */
export function skippedSummary(skipped: readonly SkippedFile[], unlisted: UnlistedSkips = {}): string {
  const counts = new Map<SkipReason, number>();
  for (const file of skipped) counts.set(file.reason, (counts.get(file.reason) ?? 0) + 1);
  for (const [reason, n] of Object.entries(unlisted) as [SkipReason, number][]) counts.set(reason, (counts.get(reason) ?? 0) + n);
  const total = [...counts.values()].reduce((sum, n) => sum + n, 0);
  if (total === 0) return 'No files skipped';
  const parts = [...counts].map(([reason, n]) => countedSkipReason(reason, n));
  return `${formatCount(total)} ${total === 1 ? 'file' : 'files'} skipped: ${parts.join(', ')}`;
}

/** "1 image" / "3 images". */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${formatCount(n)} ${n === 1 ? singular : pluralForm}`;
}
