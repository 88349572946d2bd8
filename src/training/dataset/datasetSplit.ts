import { createHash } from 'node:crypto';

/**
 * Stratified, seeded, exact train/validation split.
 *
 * Each file's content hash and the seed give it a stable rank key, `u = sha256(seed + ':' + sha256)`
 * read as a number in [0, 1). Within each class the distinct contents are ranked by `u` and the
 * first ⌈valSplit · n⌉ go to validation (n = the class's distinct contents), so
 * - every class validates exactly its share (the shipped sample at 0.2: 6 of each 30), and every
 *   class of at least 2 distinct contents keeps at least one training and, when `valSplit > 0`,
 *   one validation content; a class of a single content stays in training (a class seen only in
 *   validation could never be predicted);
 * - adding a file to a class moves at most one other file of it (the new file takes a rank: either
 *   it goes to validation and the last one there goes back to training, or the share grows by one
 *   and the next in rank joins validation); renaming or moving a file keeps its rank;
 * - identical files (same sha256) share a side, in one class or across classes, so duplicates
 *   cannot leak a training image into validation: a content placed by an earlier class (classes in
 *   index order) counts towards the later class's share;
 * - with `groups`, files of one group (near-duplicates: the same photo resized, recompressed,
 *   cropped; found from the feature vectors, so only after the features stage) share a side too:
 *   a group is ranked by its smallest `u` and placed whole, so a class's share can then exceed its
 *   ⌈valSplit · n⌉ by less than one group.
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

/** Validation contents a class of `n` distinct contents gets: ⌈valSplit · n⌉, leaving at least one for training. */
export function validationCount(n: number, valSplit: number): number {
  if (n < 2 || valSplit <= 0) return 0;
  return Math.min(n - 1, Math.ceil(valSplit * n - 1e-9));
}

/** A unit of the split: contents that must share a side, its rank key and its contents per class. */
interface Unit {
  key: number;
  tie: string;
  perClass: Map<number, number>;
  side?: SplitSide;
}

/** The units: distinct contents, joined by shared group ids. */
function unitsOf(items: readonly SplitInput[], seed: number, groups?: ArrayLike<number>): { unitOf: Unit[]; units: Unit[] } {
  // Union-find over contents: two contents of one group are one unit.
  const content = new Map<string, number>();
  const parent: number[] = [];
  const find = (a: number): number => (parent[a] === a ? a : (parent[a] = find(parent[a])));
  items.forEach(({ sha256 }) => content.has(sha256) || (content.set(sha256, parent.length), parent.push(parent.length)));
  if (groups) {
    const firstOfGroup = new Map<number, number>();
    items.forEach(({ sha256 }, i) => {
      const c = content.get(sha256)!;
      const first = firstOfGroup.get(groups[i]);
      if (first === undefined) firstOfGroup.set(groups[i], c);
      else parent[find(c)] = find(first);
    });
  }
  const byRoot = new Map<number, Unit>();
  const seen = new Set<string>();
  const unitOf = items.map(({ sha256, classIndex }) => {
    const root = find(content.get(sha256)!);
    let unit = byRoot.get(root);
    if (!unit) byRoot.set(root, (unit = { key: Infinity, tie: sha256, perClass: new Map() }));
    const u = splitKey(sha256, seed);
    if (u < unit.key || (u === unit.key && sha256 < unit.tie)) [unit.key, unit.tie] = [u, sha256];
    const id = `${classIndex}:${sha256}`;
    if (!seen.has(id)) {
      seen.add(id);
      unit.perClass.set(classIndex, (unit.perClass.get(classIndex) ?? 0) + 1);
    }
    return unit;
  });
  return { unitOf, units: [...byRoot.values()] };
}

/** Assigns each item to train or val (same order as `items`): exact per class, seeded, stable; `groups` (same value = same group) share a side. */
export function stratifiedSplit(items: readonly SplitInput[], valSplit: number, seed: number, groups?: ArrayLike<number>): SplitSide[] {
  if (!Number.isFinite(valSplit) || valSplit < 0 || valSplit >= 1) {
    throw new RangeError(`Validation split must be at least 0 and below 1, got ${valSplit}`);
  }
  const { unitOf, units } = unitsOf(items, seed, groups);
  const byClass = new Map<number, Unit[]>();
  for (const unit of units) for (const c of unit.perClass.keys()) (byClass.get(c) ?? byClass.set(c, []).get(c)!).push(unit);
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const list = byClass.get(c)!.sort((a, b) => a.key - b.key || (a.tie < b.tie ? -1 : a.tie > b.tie ? 1 : 0));
    const n = list.reduce((s, u) => s + u.perClass.get(c)!, 0);
    const target = validationCount(n, valSplit);
    let val = list.reduce((s, u) => s + (u.side === 'val' ? u.perClass.get(c)! : 0), 0);
    let train = list.reduce((s, u) => s + (u.side === 'train' ? u.perClass.get(c)! : 0), 0);
    for (const unit of list) {
      if (unit.side) continue;
      const size = unit.perClass.get(c)!;
      // Into validation while the class is short of its share, never taking its last training content.
      const toVal = val < target && val + size < n - train;
      unit.side = toVal ? 'val' : 'train';
      if (toVal) val += size;
      else train += size;
    }
  }
  return unitOf.map((unit) => unit.side ?? 'train');
}
