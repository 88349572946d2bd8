// How unlike every class an image is: the Mahalanobis distance from its feature vector (the pooled
// features the head reads) to the nearest class mean, under one covariance shared by all classes.
// The covariance of a few hundred images in 1000+ dimensions is singular, so it is shrunk towards
// a multiple of the identity by the Ledoit–Wolf formula, which picks the amount from the data
// instead of a ridge constant that would fit one feature scale and not another.
// What is stored is a whitening matrix W (the transposed inverse of the covariance's Cholesky
// factor) and the whitened class means: then the score is a matrix product and a nearest-mean
// distance, which the TF.js model and an ONNX graph compute alike.
import type { NoveltyFit } from '../../shared/types';
import type { FeatureSet } from './head';

/** The novelty statistics of a model, as stored next to it. */
export interface NoveltyStats {
  featureSize: number;
  /** Row-major featureSize × featureSize whitening matrix: z = x · W. */
  whitening: Float32Array;
  /** Row-major classes × featureSize class means, whitened. */
  means: Float32Array;
  classes: number;
  fit: NoveltyFit;
  /** The validation images' scores, in the validation set's order (what the threshold was set on). */
  valScores: Float64Array;
}

/** Per-class means of a feature set (float64, row-major classes × featureSize). */
function classMeans(set: FeatureSet, k: number): Float64Array {
  const f = set.featureSize;
  const sums = new Float64Array(k * f);
  const counts = new Array<number>(k).fill(0);
  for (let r = 0; r < set.n; r++) {
    const c = set.y[r];
    counts[c]++;
    for (let j = 0; j < f; j++) sums[c * f + j] += set.x[r * f + j];
  }
  for (let c = 0; c < k; c++) for (let j = 0; j < f; j++) sums[c * f + j] /= Math.max(1, counts[c]);
  return sums;
}

/** X · W of an n × f and an f × f row-major matrix (a backend's matrix product). */
export type Times = (x: Float32Array, n: number, w: Float32Array, f: number) => Float32Array | Float64Array;

/** Xᵀ·X of an n × f row-major matrix, row-major f × f (a backend's matrix product is much faster than this loop). */
export type Gram = (x: Float32Array, n: number, f: number) => Float64Array | Float32Array;

/** Xᵀ·X in plain JavaScript, for callers without a tensor backend. */
export function gramJs(x: Float32Array, n: number, f: number): Float64Array {
  const out = new Float64Array(f * f);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < f; i++) {
      const ri = x[r * f + i];
      if (ri === 0) continue;
      for (let j = i; j < f; j++) out[i * f + j] += ri * x[r * f + j];
    }
  }
  for (let i = 0; i < f; i++) for (let j = 0; j < i; j++) out[i * f + j] = out[j * f + i];
  return out;
}

/** Pooled within-class covariance, shrunk by Ledoit–Wolf; returns it with the shrinkage used. */
function shrunkCovariance(set: FeatureSet, means: Float64Array, gram: Gram): { cov: Float64Array; shrinkage: number } {
  const f = set.featureSize;
  const n = set.n;
  const centred = new Float32Array(n * f);
  let sum4 = 0;
  for (let r = 0; r < n; r++) {
    const c = set.y[r];
    let sq = 0;
    for (let j = 0; j < f; j++) {
      const v = set.x[r * f + j] - means[c * f + j];
      centred[r * f + j] = v;
      sq += v * v;
    }
    sum4 += sq * sq;
  }
  const cov = Float64Array.from(gram(centred, n, f));
  let trace = 0;
  let frob = 0;
  for (let i = 0; i < f; i++) {
    for (let j = i; j < f; j++) {
      // Symmetrised: a float32 product need not be exactly symmetric.
      const v = (cov[i * f + j] + cov[j * f + i]) / (2 * n);
      cov[i * f + j] = v;
      cov[j * f + i] = v;
      frob += i === j ? v * v : 2 * v * v;
    }
    trace += cov[i * f + i];
  }
  const mu = trace / f;
  const d2 = frob - f * mu * mu;
  const b2 = Math.min(d2, Math.max(0, (sum4 / n - frob) / n));
  const shrinkage = d2 > 0 ? b2 / d2 : 1;
  for (let i = 0; i < f; i++) {
    for (let j = 0; j < f; j++) cov[i * f + j] *= 1 - shrinkage;
    cov[i * f + i] += shrinkage * mu;
  }
  return { cov, shrinkage };
}

/** The lower Cholesky factor of a symmetric positive-definite matrix, in place of its lower triangle. */
function cholesky(a: Float64Array, f: number): Float64Array {
  const l = new Float64Array(f * f);
  for (let i = 0; i < f; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * f + j];
      for (let k = 0; k < j; k++) s -= l[i * f + k] * l[j * f + k];
      l[i * f + j] = j === i ? Math.sqrt(Math.max(s, 1e-12)) : s / l[j * f + j];
    }
  }
  return l;
}

/** W = (L⁻¹)ᵀ for lower-triangular L, so that x · W = L⁻¹ x and |x · W|² = xᵀ Σ⁻¹ x. */
function whiteningOf(l: Float64Array, f: number): Float64Array {
  // w[j*f + i] holds L⁻¹[i][j]: the inner sums run along contiguous memory.
  const w = new Float64Array(f * f);
  for (let j = 0; j < f; j++) {
    w[j * f + j] = 1 / l[j * f + j];
    for (let i = j + 1; i < f; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[i * f + k] * w[j * f + k];
      w[j * f + i] = -s / l[i * f + i];
    }
  }
  return w;
}

/** Whitened rows: x · W for each row of `x` (n × f). */
export function whiten(x: ArrayLike<number>, n: number, w: ArrayLike<number>, f: number): Float64Array {
  const out = new Float64Array(n * f);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < f; j++) {
      const v = x[r * f + j];
      if (v === 0) continue;
      const base = j * f;
      for (let i = j; i < f; i++) out[r * f + i] += v * w[base + i];
    }
  }
  return out;
}

/** The novelty score of each row: distance from its whitened features to the nearest whitened class mean. */
export function noveltyScores(
  stats: Pick<NoveltyStats, 'featureSize' | 'whitening' | 'means' | 'classes'>,
  x: Float32Array | ArrayLike<number>,
  n: number,
  times?: Times,
): Float64Array {
  const f = stats.featureSize;
  // The validation set's 865 × 1280 × 1280 product (flowers) took ~1 s in this loop, ~0.05 s on a backend.
  const z = times && x instanceof Float32Array ? times(x, n, stats.whitening, f) : whiten(x, n, stats.whitening, f);
  const out = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    let best = Infinity;
    for (let c = 0; c < stats.classes; c++) {
      let d = 0;
      for (let j = 0; j < f; j++) {
        const t = z[r * f + j] - stats.means[c * f + j];
        d += t * t;
      }
      best = Math.min(best, d);
    }
    out[r] = Math.sqrt(best);
  }
  return out;
}

/** The `q`-quantile of `values` (linear interpolation between order statistics). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return Infinity;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export const NOVELTY_PERCENTILE = 99;

/**
 * Fits the class means and shared covariance on the training features and sets the threshold at
 * the 99th percentile of the validation images' scores: 1% of images like the training data are
 * called unknown, which is the price of flagging the ones unlike it.
 */
export function fitNovelty(train: FeatureSet, val: FeatureSet, k: number, gram: Gram = gramJs, times?: Times): NoveltyStats {
  const f = train.featureSize;
  const means = classMeans(train, k);
  const { cov, shrinkage } = shrunkCovariance(train, means, gram);
  const w = whiteningOf(cholesky(cov, f), f);
  const whitening = Float32Array.from(w);
  const stats = { featureSize: f, whitening, means: Float32Array.from(whiten(means, k, w, f)), classes: k };
  const valScores = noveltyScores(stats, val.x, val.n, times);
  const threshold = val.n > 0 ? quantile(valScores, NOVELTY_PERCENTILE / 100) : quantile(noveltyScores(stats, train.x, train.n), 0.99);
  const valFlagged = valScores.filter((s) => s > threshold).length;
  return {
    ...stats,
    valScores,
    fit: {
      method: 'mahalanobis-nearest-mean',
      shrinkage,
      threshold,
      percentile: NOVELTY_PERCENTILE,
      trainImages: train.n,
      valImages: val.n,
      valFlagged,
    },
  };
}
