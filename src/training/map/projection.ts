// 2-D projection of feature vectors: a randomized PCA (Halko et al. 2011: a seeded Gaussian sketch,
// one power iteration, the SVD of the small projected matrix) to `pca` components, then UMAP
// (umap-js) on those, seeded. PCA first makes UMAP's neighbour search cheap and removes noise.
import { UMAP } from 'umap-js';
import type { FeatureMapMethod } from '../../shared/featureMap';
import { seededRandom } from '../util/random';

export const DEFAULT_MAP_METHOD: Omit<FeatureMapMethod, 'seed'> = { pca: 32, nNeighbors: 15, minDist: 0.1, nEpochs: 200 };

/** A standard normal draw from `random` (Box–Muller). */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** Orthonormalizes the `l` columns of the n×l row-major `m` in place (modified Gram–Schmidt); a column that vanishes stays zero. */
function orthonormalize(m: Float64Array, n: number, l: number): void {
  for (let j = 0; j < l; j++) {
    for (let k = 0; k < j; k++) {
      let dot = 0;
      for (let i = 0; i < n; i++) dot += m[i * l + j] * m[i * l + k];
      for (let i = 0; i < n; i++) m[i * l + j] -= dot * m[i * l + k];
    }
    let norm = 0;
    for (let i = 0; i < n; i++) norm += m[i * l + j] ** 2;
    norm = Math.sqrt(norm);
    for (let i = 0; i < n; i++) m[i * l + j] = norm > 1e-12 ? m[i * l + j] / norm : 0;
  }
}

/** out (n×l) = X (n×d, centred by `mean`) · W (d×l). */
function timesRight(x: Float32Array, mean: Float64Array, n: number, d: number, w: Float64Array, l: number): Float64Array {
  const out = new Float64Array(n * l);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < d; c++) row[c] = x[i * d + c] - mean[c];
    const o = i * l;
    for (let c = 0; c < d; c++) {
      const v = row[c];
      if (v === 0) continue;
      const wc = c * l;
      for (let j = 0; j < l; j++) out[o + j] += v * w[wc + j];
    }
  }
  return out;
}

/** out (d×l) = X (n×d, centred)ᵀ · Q (n×l). */
function timesLeft(x: Float32Array, mean: Float64Array, n: number, d: number, q: Float64Array, l: number): Float64Array {
  const out = new Float64Array(d * l);
  for (let i = 0; i < n; i++) {
    const qi = i * l;
    for (let c = 0; c < d; c++) {
      const v = x[i * d + c] - mean[c];
      const oc = c * l;
      for (let j = 0; j < l; j++) out[oc + j] += v * q[qi + j];
    }
  }
  return out;
}

/** Eigenvectors (columns of the l×l result) and eigenvalues of the symmetric l×l `a`, by cyclic Jacobi rotations; sorted by eigenvalue, largest first. */
function symmetricEigen(a: Float64Array, l: number): { values: Float64Array; vectors: Float64Array } {
  const v = new Float64Array(l * l);
  for (let i = 0; i < l; i++) v[i * l + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let p = 0; p < l; p++) for (let q = p + 1; q < l; q++) off += a[p * l + q] ** 2;
    if (off < 1e-18) break;
    for (let p = 0; p < l; p++) {
      for (let q = p + 1; q < l; q++) {
        const apq = a[p * l + q];
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * l + q] - a[p * l + p]) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < l; k++) {
          const akp = a[k * l + p];
          const akq = a[k * l + q];
          a[k * l + p] = c * akp - s * akq;
          a[k * l + q] = s * akp + c * akq;
        }
        for (let k = 0; k < l; k++) {
          const apk = a[p * l + k];
          const aqk = a[q * l + k];
          a[p * l + k] = c * apk - s * aqk;
          a[q * l + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < l; k++) {
          const vkp = v[k * l + p];
          const vkq = v[k * l + q];
          v[k * l + p] = c * vkp - s * vkq;
          v[k * l + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: l }, (_, i) => i).sort((i, j) => a[j * l + j] - a[i * l + i]);
  const values = Float64Array.from(order, (i) => a[i * l + i]);
  const vectors = new Float64Array(l * l);
  for (let k = 0; k < l; k++) for (let j = 0; j < l; j++) vectors[k * l + j] = v[k * l + order[j]];
  return { values, vectors };
}

/** The first `k` principal-component scores (n×k, row-major) of the n×d rows of `x`, seeded. */
export function pcaScores(x: Float32Array, n: number, d: number, k: number, seed: number): Float64Array {
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let c = 0; c < d; c++) mean[c] += x[i * d + c];
  for (let c = 0; c < d; c++) mean[c] /= Math.max(1, n);
  const l = Math.min(k + 8, d, n);
  const random = seededRandom(seed ^ 0x5eed);
  const omega = Float64Array.from({ length: d * l }, () => gaussian(random));
  let q = timesRight(x, mean, n, d, omega, l);
  orthonormalize(q, n, l);
  // One power iteration sharpens the sketch towards the leading components.
  const back = timesLeft(x, mean, n, d, q, l);
  orthonormalize(back, d, l);
  q = timesRight(x, mean, n, d, back, l);
  orthonormalize(q, n, l);
  // B = Qᵀ X (l×d); B Bᵀ = U S² Uᵀ; the scores X V = Q U S.
  const bt = timesLeft(x, mean, n, d, q, l);
  const bbt = new Float64Array(l * l);
  for (let c = 0; c < d; c++) for (let i = 0; i < l; i++) for (let j = 0; j < l; j++) bbt[i * l + j] += bt[c * l + i] * bt[c * l + j];
  const { values, vectors } = symmetricEigen(bbt, l);
  const kk = Math.min(k, l);
  const scores = new Float64Array(n * kk);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < kk; j++) {
      let s = 0;
      for (let t = 0; t < l; t++) s += q[i * l + t] * vectors[t * l + j];
      scores[i * kk + j] = s * Math.sqrt(Math.max(0, values[j]));
    }
  return scores;
}

/**
 * The `k` nearest neighbours of each of the n rows of `points` (`dims` values each), the row
 * itself first, by exact Euclidean distance: on PCA scores this is a fraction of a second for
 * thousands of images, and cheaper and steadier than umap-js's approximate search.
 */
export function exactNeighbours(points: Float64Array, n: number, dims: number, k: number): { indices: number[][]; distances: number[][] } {
  const squares = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let c = 0; c < dims; c++) s += points[i * dims + c]! ** 2;
    squares[i] = s;
  }
  const indices: number[][] = [];
  const distances: number[][] = [];
  const bestI = new Int32Array(k);
  const bestD = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    bestD.fill(Infinity);
    bestI.fill(-1);
    const oi = i * dims;
    for (let j = 0; j < n; j++) {
      let dot = 0;
      const oj = j * dims;
      for (let c = 0; c < dims; c++) dot += points[oi + c]! * points[oj + c]!;
      const d = i === j ? -1 : Math.max(0, squares[i]! + squares[j]! - 2 * dot);
      if (d >= bestD[k - 1]!) continue;
      // Insert into the sorted list of the k best so far.
      let at = k - 1;
      while (at > 0 && bestD[at - 1]! > d) {
        bestD[at] = bestD[at - 1]!;
        bestI[at] = bestI[at - 1]!;
        at--;
      }
      bestD[at] = d;
      bestI[at] = j;
    }
    indices.push(Array.from(bestI));
    distances.push(Array.from(bestD, (d) => Math.sqrt(Math.max(0, d))));
  }
  return { indices, distances };
}

/** Scales each coordinate into [0, 1] (a constant one to 0.5), rounded to 5 decimals. */
function normalize(values: number[]): number[] {
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const span = max - min;
  return values.map((v) => (span > 0 ? Math.round(((v - min) / span) * 1e5) / 1e5 : 0.5));
}

/** The 2-D map of the n×d rows of `x`: PCA, then UMAP, seeded; positions in [0, 1]². Stops between epochs when `signal` aborts. */
export async function projectFeatures(
  x: Float32Array,
  n: number,
  d: number,
  method: FeatureMapMethod,
  signal?: AbortSignal,
): Promise<{ x: number[]; y: number[]; ms: { pca: number; umap: number } }> {
  const t0 = performance.now();
  const k = Math.min(method.pca, d);
  const scores = pcaScores(x, n, d, k, method.seed);
  const kk = scores.length / Math.max(1, n);
  const rows = Array.from({ length: n }, (_, i) => Array.from(scores.subarray(i * kk, (i + 1) * kk)));
  const t1 = performance.now();
  let coords: number[][];
  if (n < 4) {
    // Too few points for a neighbour graph: the first two components are the map.
    coords = rows.map((r) => [r[0] ?? 0, r[1] ?? 0]);
  } else {
    const nNeighbors = Math.max(2, Math.min(method.nNeighbors, n - 1));
    const umap = new UMAP({
      nComponents: 2,
      nNeighbors,
      minDist: method.minDist,
      nEpochs: method.nEpochs,
      random: seededRandom(method.seed),
    });
    const knn = exactNeighbours(scores, n, kk, nNeighbors);
    umap.setPrecomputedKNN(knn.indices, knn.distances);
    const epochs = umap.initializeFit(rows);
    for (let e = 0; e < epochs; e++) {
      umap.step();
      if (e % 20 === 19) {
        // Lets a cancel through (the signal is set by an IPC message).
        await new Promise((resolve) => setImmediate(resolve));
        signal?.throwIfAborted();
      }
    }
    coords = umap.getEmbedding();
  }
  const t2 = performance.now();
  return {
    x: normalize(coords.map((c) => c[0] ?? 0)),
    y: normalize(coords.map((c) => c[1] ?? 0)),
    ms: { pca: Math.round(t1 - t0), umap: Math.round(t2 - t1) },
  };
}

/** Mean share of each point's `k` nearest neighbours (Euclidean, rows of `dims` values) that have its label. */
export function knnAgreement(points: ArrayLike<number>, dims: number, labels: ArrayLike<number>, k: number): number {
  const n = labels.length;
  let total = 0;
  const dist = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < dims; c++) s += (points[i * dims + c] - points[j * dims + c]) ** 2;
      dist[j] = j === i ? Infinity : s;
    }
    const nearest = Array.from({ length: n }, (_, j) => j)
      .sort((a, b) => dist[a] - dist[b])
      .slice(0, k);
    total += nearest.filter((j) => labels[j] === labels[i]).length / k;
  }
  return n === 0 ? 0 : total / n;
}
