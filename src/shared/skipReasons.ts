// Why a file was skipped, in words, for the CLI, the run report and the panel alike; and the cap on
// how many skipped files of one reason a report lists (a link to a system folder can skip thousands).
import type { SkippedFile, SkipReason } from './types';

/** Each reason as [singular, plural], in the order reports list them on equal counts. */
export const SKIP_REASON_WORDS: Readonly<Record<SkipReason, readonly [singular: string, plural: string]>> = {
  empty: ['empty file', 'empty files'],
  corrupt: ['corrupt image', 'corrupt images'],
  'not-image': ['not an image', 'not images'],
  'too-many-pixels': ['over the pixel limit', 'over the pixel limit'],
  unreadable: ['unreadable', 'unreadable'],
  'dangling-symlink': ['dangling symlink', 'dangling symlinks'],
  'symlink-loop': ['symlink loop', 'symlink loops'],
  'external-symlink': ['outside the dataset (symlink)', 'outside the dataset (symlinks)'],
};

/** Skipped files listed per reason in a dataset report; the rest are only counted. */
export const SKIPPED_LIST_CAP = 200;

/** Per-reason counts of skipped files not in the list, as a report carries them. */
export type UnlistedSkips = Partial<Record<SkipReason, number>>;

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** "1 empty file", "2 not images", "5,003 outside the dataset (symlinks)"; an unknown reason is shown as it is. */
export function countedSkipReason(reason: SkipReason, n: number): string {
  const words = SKIP_REASON_WORDS[reason] ?? [reason, reason];
  return `${formatCount(n)} ${words[n === 1 ? 0 : 1]}`;
}

/** Skipped files per reason, listed and unlisted, largest first (reason order on equal counts). */
export function skippedCounts(skipped: readonly { reason: SkipReason }[], unlisted: UnlistedSkips = {}): [SkipReason, number][] {
  const counts = new Map<SkipReason, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  for (const [reason, n] of Object.entries(unlisted) as [SkipReason, number][]) counts.set(reason, (counts.get(reason) ?? 0) + n);
  const order = Object.keys(SKIP_REASON_WORDS);
  return [...counts].filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1] || order.indexOf(a[0]) - order.indexOf(b[0]));
}

/** One line for the user, e.g. "3 files skipped: 2 not images, 1 over the pixel limit"; empty when nothing was skipped. */
export function summarizeSkipped(skipped: readonly { reason: SkipReason }[], unlisted: UnlistedSkips = {}): string {
  const counts = skippedCounts(skipped, unlisted);
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return '';
  return `${formatCount(total)} ${total === 1 ? 'file' : 'files'} skipped: ${counts.map(([reason, n]) => countedSkipReason(reason, n)).join(', ')}`;
}

/** The first `cap` skipped files of each reason (in the given order), and how many of each were left out. */
export function capSkipped(
  skipped: readonly SkippedFile[],
  cap: number = SKIPPED_LIST_CAP,
): { skipped: SkippedFile[]; unlisted: UnlistedSkips } {
  const listed = new Map<SkipReason, number>();
  const unlisted: UnlistedSkips = {};
  const kept: SkippedFile[] = [];
  for (const s of skipped) {
    const n = listed.get(s.reason) ?? 0;
    if (n < cap) {
      kept.push(s);
      listed.set(s.reason, n + 1);
    } else unlisted[s.reason] = (unlisted[s.reason] ?? 0) + 1;
  }
  return { skipped: kept, unlisted };
}

/** "5,003 outside the dataset (symlinks; first: a.png, b.png …)": one reason's count with its first paths. */
export function skipReasonLine(reason: SkipReason, total: number, firstPaths: readonly string[], shown = 3): string {
  const counted = countedSkipReason(reason, total);
  if (firstPaths.length === 0) return counted;
  const more = total > Math.min(shown, firstPaths.length) ? ' …' : '';
  const first = `first: ${firstPaths.slice(0, shown).join(', ')}${more}`;
  // Words that end in a parenthesis take the paths inside it.
  return counted.endsWith(')') ? `${counted.slice(0, -1)}; ${first})` : `${counted} (${first})`;
}

/**
 * What a terminal shows of the skipped files: a count per reason with its first few paths, never
 * the whole list. One line when there is one reason, else a total and one indented line per reason.
 */
export function skippedLines(skipped: readonly SkippedFile[], unlisted: UnlistedSkips = {}, shown = 3): string[] {
  const counts = skippedCounts(skipped, unlisted);
  const total = counts.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return [];
  const head = `Skipped ${formatCount(total)} ${total === 1 ? 'file' : 'files'}:`;
  const lines = counts.map(([reason, n]) =>
    skipReasonLine(
      reason,
      n,
      skipped.filter((s) => s.reason === reason).map((s) => s.path),
      shown,
    ),
  );
  return lines.length === 1 ? [`${head} ${lines[0]}`] : [head, ...lines.map((l) => `  ${l}`)];
}

/** "… and 4,803 more outside the dataset (symlinks), not listed": the line under a capped list. */
export function unlistedSkipsLine(reason: SkipReason, n: number): string {
  const words = SKIP_REASON_WORDS[reason] ?? [reason, reason];
  return `… and ${formatCount(n)} more ${words[n === 1 ? 0 : 1]}, not listed`;
}
