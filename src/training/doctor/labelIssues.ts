// Likely label errors by confident learning (Northcutt, Jiang & Chuang, "Confident Learning:
// Estimating Uncertainty in Dataset Labels", JAIR 70, 2021) over out-of-sample probabilities.
//
// The probabilities are the mean of two out-of-sample estimates: the cross-validated head's (each
// image predicted by a head that never saw it) and a k-NN vote among the image's nearest other
// photos (near-duplicates excluded, so a copy cannot vouch for its own label). The two err
// differently — the head generalises, the vote is local — and their mean ranks moved files better
// than either (docs/doctor.md has the measurements).
//
// Confident learning then sets a threshold per class, t_j = the mean probability of class j over
// the images labelled j (what "confidently j" means for that class: lower for hard classes), counts
// an image labelled y as confidently j when p_j ≥ t_j (the highest such j when several are), and
// flags it when that j is not y (an off-diagonal cell of the confident joint). An image whose most
// probable class is not y is flagged as well: on an easy dataset the thresholds are near 1 and the
// confident joint alone lists fewer images than were mislabelled (plantvillage-apple with 10% moved:
// 88 listed for 110 moved), while the union lists them all without costing precision at the top.
// Flagged images are ranked by self-confidence, the lower p_y the likelier the label is wrong
// (Northcutt et al. rank by it or by the normalised margin; here self-confidence ranked better on
// both datasets measured).

/** A flagged image: its row, the class it is confidently in, and its score 1 − p(given label). */
export interface RankedLabelIssue {
  row: number;
  suggested: number;
  score: number;
}

/** Class probabilities from a similarity-weighted vote of each row's neighbours (Laplace-smoothed). */
export function knnProbs(y: ArrayLike<number>, index: Int32Array, similarity: Float32Array, k: number, numClasses: number): Float32Array {
  const n = y.length;
  const out = new Float32Array(n * numClasses);
  const prior = 1 / numClasses;
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (let t = 0; t < k; t++) {
      const j = index[i * k + t];
      if (j < 0) continue;
      const w = Math.max(0, similarity[i * k + t]);
      out[i * numClasses + y[j]] += w;
      total += w;
    }
    // One pseudo-vote spread over the classes keeps a row without neighbours at the uniform prior.
    for (let c = 0; c < numClasses; c++) out[i * numClasses + c] = (out[i * numClasses + c] + prior) / (total + 1);
  }
  return out;
}

/** The element-wise mean of two n × classes probability matrices. */
export function meanProbs(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] + b[i]) / 2;
  return out;
}

/** Per-class thresholds t_j: the mean out-of-sample probability of class j over the rows labelled j. */
export function classThresholds(probs: Float32Array, y: ArrayLike<number>, numClasses: number): Float64Array {
  const sums = new Float64Array(numClasses);
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < y.length; i++) {
    sums[y[i]] += probs[i * numClasses + y[i]];
    counts[y[i]]++;
  }
  return sums.map((s, c) => (counts[c] > 0 ? s / counts[c] : 1));
}

/** The rows the confident joint puts off its diagonal or whose most probable class is another, most likely mislabelled first. */
export function confidentLabelIssues(probs: Float32Array, y: ArrayLike<number>, numClasses: number): RankedLabelIssue[] {
  const t = classThresholds(probs, y, numClasses);
  const issues: RankedLabelIssue[] = [];
  for (let i = 0; i < y.length; i++) {
    const row = probs.subarray(i * numClasses, (i + 1) * numClasses);
    let confident = -1;
    let best = 0;
    for (let c = 0; c < numClasses; c++) {
      if (row[c] >= t[c] && (confident < 0 || row[c] > row[confident])) confident = c;
      if (row[c] > row[best]) best = c;
    }
    const suggested = confident >= 0 && confident !== y[i] ? confident : best;
    if (suggested === y[i]) continue;
    issues.push({ row: i, suggested, score: 1 - row[y[i]] });
  }
  return issues.sort((a, b) => b.score - a.score || a.row - b.row);
}
