// Near-duplicate groups: images whose feature vectors are at least `threshold` cosine-similar,
// linked pair by pair (union-find), so a photo, its resized copy and a recompressed copy of that
// form one group. The threshold is calibrated in docs/doctor.md on resized, recompressed and
// cropped copies of real photos against distinct photos of one dataset.

/** Cosine similarity from which two images count as the same photo (docs/doctor.md: calibration). */
export const NEAR_DUPLICATE_SIMILARITY = 0.85;

/** One group: its rows (ascending) and the smallest similarity among its members. */
export interface DuplicateRows {
  rows: number[];
  similarity: number;
}

/** Groups of rows linked by `pairs`; `groupOf[i]` is the group's id (its smallest row) for every row, singletons included. */
export function groupPairs(n: number, pairs: readonly { i: number; j: number }[]): { groupOf: Int32Array; groups: number[][] } {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (a: number): number => {
    while (parent[a] !== a) a = parent[a] = parent[parent[a]];
    return a;
  };
  for (const { i, j } of pairs) {
    const a = find(i);
    const b = find(j);
    if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
  }
  const groupOf = new Int32Array(n);
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const g = find(i);
    groupOf[i] = g;
    let list = members.get(g);
    if (!list) members.set(g, (list = []));
    list.push(i);
  }
  return { groupOf, groups: [...members.values()].filter((rows) => rows.length > 1) };
}

/** The smallest cosine similarity between any two of `rows` (unit-length rows of `unit`, n × f). */
export function smallestSimilarity(unit: Float32Array, f: number, rows: readonly number[]): number {
  let least = 1;
  for (let a = 0; a < rows.length; a++) {
    for (let b = a + 1; b < rows.length; b++) {
      let s = 0;
      for (let j = 0; j < f; j++) s += unit[rows[a] * f + j] * unit[rows[b] * f + j];
      least = Math.min(least, s);
    }
  }
  return Math.min(1, least);
}
