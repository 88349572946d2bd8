// Progress in words for the notification and the status bar: stage, epoch, speed, ETA, and one
// overall percentage that only moves forward. No `vscode` import (unit-tested).
import type { Progress, Stage } from '../shared/types';
import { STAGE_LABELS } from '../shared/stages';
import { doctorStageLabel } from '../shared/protocol/doctorPanel';

// Share of the whole run each stage takes, roughly, so one bar can advance monotonically.
const STAGE_SPANS: Record<Stage, [number, number]> = {
  scan: [0, 3],
  download: [3, 5],
  features: [5, 50],
  head: [50, 85],
  'fine-tune': [85, 95],
  evaluate: [95, 99],
  save: [99, 100],
};

/** Seconds as `1:05` or `1:02:03`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** One line describing a progress report: stage, epoch, percentage of the stage, ETA. A doctor check trains its heads fold by fold. */
export function describeProgress(progress: Progress, kind: 'train' | 'doctor' = 'train'): string {
  const parts = [kind === 'doctor' ? doctorStageLabel(progress.stage) : (STAGE_LABELS[progress.stage] ?? progress.stage)];
  if (progress.epoch !== undefined && progress.epochs !== undefined) parts.push(`epoch ${progress.epoch} of ${progress.epochs}`);
  else if (progress.total > 0) parts.push(`${progress.done} of ${progress.total}`);
  if (progress.imagesPerSec !== undefined && progress.imagesPerSec > 0) parts.push(`${progress.imagesPerSec.toFixed(0)} images/s`);
  if (progress.etaSec !== undefined && Number.isFinite(progress.etaSec)) parts.push(`ETA ${formatDuration(progress.etaSec)}`);
  return parts.join(' · ');
}

/** Overall percentage of a run (0–100) from a progress report. */
export function overallPercent(progress: Progress): number {
  const [from, to] = STAGE_SPANS[progress.stage] ?? [0, 100];
  const fraction = progress.total > 0 ? Math.min(1, Math.max(0, progress.done / progress.total)) : 0;
  return from + (to - from) * fraction;
}
