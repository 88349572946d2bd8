// Why a file was skipped, in words, for the CLI, the run report and the panel alike.
import type { SkipReason } from './types';

/** Each reason as [singular, plural], in the order reports list them on equal counts. */
export const SKIP_REASON_WORDS: Readonly<Record<SkipReason, readonly [singular: string, plural: string]>> = {
  empty: ['empty file', 'empty files'],
  corrupt: ['corrupt image', 'corrupt images'],
  'not-image': ['not an image', 'not images'],
  'too-many-pixels': ['over the pixel limit', 'over the pixel limit'],
  unreadable: ['unreadable', 'unreadable'],
  'dangling-symlink': ['dangling symlink', 'dangling symlinks'],
  'symlink-loop': ['symlink loop', 'symlink loops'],
};

/** "1 empty file", "2 not images"; an unknown reason is shown as it is. */
export function countedSkipReason(reason: SkipReason, n: number): string {
  const words = SKIP_REASON_WORDS[reason] ?? [reason, reason];
  return `${n} ${words[n === 1 ? 0 : 1]}`;
}

/** One line for the user, e.g. "3 files skipped: 2 not images, 1 over the pixel limit"; empty when nothing was skipped. */
export function summarizeSkipped(skipped: readonly { reason: SkipReason }[]): string {
  if (skipped.length === 0) return '';
  const counts = new Map<SkipReason, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const order = Object.keys(SKIP_REASON_WORDS);
  const parts = [...counts]
    .sort((a, b) => b[1] - a[1] || order.indexOf(a[0]) - order.indexOf(b[0]))
    .map(([reason, n]) => countedSkipReason(reason, n));
  return `${skipped.length} ${skipped.length === 1 ? 'file' : 'files'} skipped: ${parts.join(', ')}`;
}
