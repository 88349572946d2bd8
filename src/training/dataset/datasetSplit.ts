import { createHash } from 'node:crypto';

/**
 * Stratified, seeded, stable train/validation split.
 *
 * A file's side depends only on its content hash and the seed: `u = sha256(seed + ':' + sha256)`
 * read as a number in [0, 1); the file goes to validation when `u < valSplit`. Hence
 * - adding or removing files never moves the others (no reshuffle between runs as a dataset grows);
 * - identical files (same sha256) always land on the same side, in one class or across classes,
 *   so duplicates cannot leak a training image into validation;
 * - renaming or moving a file keeps its side.
 * Stratification comes from the guarantee below rather than from counting: over a class the
 * expected validation share is `valSplit`, and every class with at least 2 distinct files gets
 * at least one validation file and keeps at least one training file (when `valSplit > 0`).
 *
 * The one exception to stability is that guarantee: when a class has no file with `u < valSplit`,
 * its file with the smallest `u` is moved to validation (with the largest `u` to training in the
 * opposite case). Adding a file to such a class can therefore move that one file back. A class
 * of a single distinct content (one file, or copies of one file) stays entirely in training: a
 * class seen only in validation could never be predicted.
 * Because identical files share a side, the forced move also moves the copies in other classes;
 * that only happens with cross-class duplicates, which the scan reports as label noise.
 */

export type SplitSide = 'train' | 'val';

export interface SplitInput {
  classIndex: number;
  /** Hex sha256 of the file's content. */
  sha256: string;
}

/** Maps a content hash and a seed to a stable number in [0, 1). */
export function splitKey(sha256: string, seed: number): number {
  const digest = createHash('sha256').update(`${seed}:${sha256}`).digest();
  // 48 bits fit exactly in a double.
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/** Assigns each item to train or val (same order as `items`), stratified by class, seeded and stable. */
export function stratifiedSplit(items: readonly SplitInput[], valSplit: number, seed: number): SplitSide[] {
  if (!Number.isFinite(valSplit) || valSplit < 0 || valSplit >= 1) {
    throw new RangeError(`Validation split must be at least 0 and below 1, got ${valSplit}`);
  }
  const keys = new Map<string, number>();
  const sides = new Map<string, SplitSide>();
  for (const { sha256 } of items) {
    if (keys.has(sha256)) continue;
    const u = splitKey(sha256, seed);
    keys.set(sha256, u);
    sides.set(sha256, u < valSplit ? 'val' : 'train');
  }
  if (valSplit > 0) {
    const contentsByClass = new Map<number, Set<string>>();
    for (const { classIndex, sha256 } of items) {
      let set = contentsByClass.get(classIndex);
      if (!set) contentsByClass.set(classIndex, (set = new Set()));
      set.add(sha256);
    }
    for (const classIndex of [...contentsByClass.keys()].sort((a, b) => a - b)) {
      const contents = [...contentsByClass.get(classIndex)!];
      if (contents.length < 2) {
        // Validation without training would leave the class unlearnable.
        sides.set(contents[0], 'train');
        continue;
      }
      // Ties in u are astronomically unlikely; the hash breaks them so the order is total anyway.
      contents.sort((a, b) => keys.get(a)! - keys.get(b)! || (a < b ? -1 : a > b ? 1 : 0));
      if (!contents.some((sha) => sides.get(sha) === 'val')) sides.set(contents[0], 'val');
      if (!contents.some((sha) => sides.get(sha) === 'train')) sides.set(contents[contents.length - 1], 'train');
    }
  }
  return items.map(({ sha256 }) => sides.get(sha256)!);
}
