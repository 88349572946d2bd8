// Outliers: images far from every other photo of the dataset, whatever its class. The score is
// 1 − the mean cosine similarity to the image's k nearest other photos (near-duplicates excluded, so
// two copies of a screenshot still stand out); a placeholder or a screenshot among leaf photos has
// no close neighbour in any class. Reported: scores more than OUTLIER_SPREAD robust standard
// deviations (1.4826 × the median absolute deviation) above the median.

const OUTLIER_SPREAD = 4;

/** Each row's outlier score from its neighbours' similarities (n × k, -Infinity where absent). */
export function outlierScores(similarity: Float32Array, n: number, k: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    let count = 0;
    for (let t = 0; t < k; t++) {
      const s = similarity[i * k + t];
      if (s === -Infinity) continue;
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
