// Near-duplicate groups: pairs of images that are the same photo, linked pair by pair (union-find),
// so a photo, its resized copy and a recompressed copy of that form one group. A pair is judged on
// two things: the centred cosine similarity of their feature vectors (what the photo shows) and the
// correlation of their 16 × 16 luma thumbnails (how it is laid out; dataset/pixelStats.ts). The
// features alone confuse two photos of the same kind of scene (two tulip fields: 0.85 and more);
// the layout alone confuses any two centred leaves on one background. Together, calibrated in
// docs/doctor.md on resized, recompressed and cropped copies of real photos against distinct photos:

/** Features this similar are the same photo whatever the layout (only without thumbnails: the one rule). */
export const NEAR_DUPLICATE_SIMILARITY = 0.85;
/** Features this similar are the same photo if the layouts agree at least LAYOUT_AGREES… */
const LAYOUT_AGREES = 0.5;
/** …and features down to CANDIDATE_SIMILARITY if the layouts are the same (a copy resized so far down that its features drift). */
export const CANDIDATE_SIMILARITY = 0.6;
const LAYOUT_SAME = 0.97;
/** Features this similar are the same photo even when the layouts differ (a crop, a flip). */
const FEATURES_CERTAIN = 0.95;

/** Whether two images are the same photo, from their feature similarity and (when known) their layouts' correlation. */
/** The rule's thresholds, for the keys of results that depend on them (a cached similarity pass). */
export const NEAR_DUPLICATE_RULE = {
  layoutAgrees: LAYOUT_AGREES,
  candidate: CANDIDATE_SIMILARITY,
  layoutSame: LAYOUT_SAME,
  certain: FEATURES_CERTAIN,
};

export function isNearDuplicate(similarity: number, layout: number | undefined): boolean {
  if (layout === undefined) return similarity >= NEAR_DUPLICATE_SIMILARITY;
  if (similarity >= FEATURES_CERTAIN) return true;
  if (similarity >= NEAR_DUPLICATE_SIMILARITY) return layout >= LAYOUT_AGREES;
  return similarity >= CANDIDATE_SIMILARITY && layout >= LAYOUT_SAME;
}

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
