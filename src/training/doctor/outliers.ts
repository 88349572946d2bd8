// Outliers: images far from every other photo of the dataset, whatever its class. The score is
// 1 − the mean cosine similarity of the raw (uncentred) feature vectors to the image's
// OUTLIER_NEIGHBOURS nearest other photos (near-duplicates excluded, so two copies of a screenshot
// still stand out); a placeholder or a screenshot among leaf photos has no close neighbour in any
// class. Raw, not centred: centring removes what all photos share, which is exactly what a
// placeholder lacks (hymenoptera's imageNotFound.gif is the top outlier by raw similarity, 5.9 robust
// deviations out, and not in the top 4 by centred similarity). Reported: scores more than
// OUTLIER_SPREAD robust standard deviations (1.4826 × the median absolute deviation) above the median.
import type { Neighbourhood } from './featureSimilarity';

const OUTLIER_SPREAD = 4;
export const OUTLIER_NEIGHBOURS = 5;

/** Each row's outlier score: 1 − its mean raw cosine similarity (rows of `unit`, unit length, n × f) to its nearest neighbours in `nb`. */
export function outlierScores(unit: Float32Array, f: number, nb: Neighbourhood): Float64Array {
  const out = new Float64Array(nb.n);
  const k = Math.min(OUTLIER_NEIGHBOURS, nb.k);
  for (let i = 0; i < nb.n; i++) {
    let sum = 0;
    let count = 0;
    for (let t = 0; t < k; t++) {
      const j = nb.index[i * nb.k + t];
      if (j < 0) continue;
      let s = 0;
      for (let d = 0; d < f; d++) s += unit[i * f + d] * unit[j * f + d];
      sum += s;
      count++;
    }
    out[i] = count ? 1 - sum / count : 1;
  }
  return out;
}

/** The median of `values`. */
export function median(values: ArrayLike<number>): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return 0;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The rows whose score stands out (median + OUTLIER_SPREAD robust deviations), farthest first. */
export function outlierRows(scores: Float64Array): number[] {
  const m = median(scores);
  const mad = 1.4826 * median(scores.map((s) => Math.abs(s - m)));
  const cut = m + OUTLIER_SPREAD * Math.max(mad, 1e-6);
  const rows: number[] = [];
  scores.forEach((s, i) => s > cut && rows.push(i));
  return rows.sort((a, b) => scores[b] - scores[a] || a - b);
}
