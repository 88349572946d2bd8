// Temperature scaling: one number T that divides the logits so that the model's confidence matches
// how often it is right. Fitted on validation predictions by minimising the negative log-likelihood;
// the argmax (and so the accuracy) does not change. The head's output is a softmax, so the log of a
// probability is a logit up to a per-row constant, which softmax ignores: no logits are needed.
import type { Calibration, ReliabilityBin } from '../../shared/types';

export const ECE_BINS = 15;
const LOG_T_MIN = Math.log(0.05);
const LOG_T_MAX = Math.log(20);
/** Fewer validation images than this give a temperature that says more about them than about the model. */
export const MIN_CALIBRATION_IMAGES = 20;
// A fitted temperature this close (in log T) to an end of the search range ran into it: not a minimum.
const BOUND_MARGIN = 0.05;
// Probabilities of exactly 0 (float32 underflow) would give -Infinity logits.
export const MIN_PROB = 1e-30;

/** Logits (log-probabilities, floored) of probability rows. */
export function logitsOf(probs: Float32Array): Float64Array {
  return Float64Array.from(probs, (p) => Math.log(Math.max(p, MIN_PROB)));
}

/** softmax(logits / T), row by row. */
export function scaledProbs(logits: ArrayLike<number>, k: number, t: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r * k < logits.length; r++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[r * k + c] / t);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += out[r * k + c] = Math.exp(logits[r * k + c] / t - max);
    for (let c = 0; c < k; c++) out[r * k + c] /= sum;
  }
  return out;
}

/** Mean negative log-likelihood of `rows` under softmax(logits / T). */
export function nllAt(logits: ArrayLike<number>, y: ArrayLike<number>, k: number, t: number, rows: readonly number[]): number {
  let total = 0;
  for (const r of rows) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, logits[r * k + c] / t);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(logits[r * k + c] / t - max);
    total += Math.log(sum) + max - logits[r * k + y[r]] / t;
  }
  return rows.length ? total / rows.length : 0;
}

/**
 * The temperature that minimises the NLL of `rows` (golden-section search on log T in [0.05, 20]),
 * or 1 when it does not lower the NLL: a temperature that gains nothing is not worth a change.
 */
export function fitTemperature(logits: ArrayLike<number>, y: ArrayLike<number>, k: number, rows: readonly number[]): number {
  if (rows.length === 0) return 1;
  const f = (u: number) => nllAt(logits, y, k, Math.exp(u), rows);
  const phi = (Math.sqrt(5) - 1) / 2;
  let a = LOG_T_MIN;
  let b = LOG_T_MAX;
  let c = b - phi * (b - a);
  let d = a + phi * (b - a);
  let fc = f(c);
  let fd = f(d);
  for (let i = 0; i < 80 && b - a > 1e-6; i++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - phi * (b - a);
      fc = f(c);
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + phi * (b - a);
      fd = f(d);
    }
  }
  const t = Math.exp((a + b) / 2);
  return f(Math.log(t)) < f(0) - 1e-9 ? t : 1;
}

/** Per equal-width confidence bin: how many of `rows` fall in it, their mean confidence and their accuracy. */
export function reliabilityBins(
  probs: ArrayLike<number>,
  y: ArrayLike<number>,
  k: number,
  rows: readonly number[],
  bins = ECE_BINS,
): ReliabilityBin[] {
  const out = Array.from({ length: bins }, () => ({ count: 0, confidence: 0, accuracy: 0 }));
  for (const r of rows) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[r * k + c] > probs[r * k + best]) best = c;
    const p = probs[r * k + best];
    const bin = out[Math.min(bins - 1, Math.max(0, Math.ceil(p * bins) - 1))];
    bin.count++;
    bin.confidence += p;
    if (best === y[r]) bin.accuracy++;
  }
  for (const b of out) {
    if (b.count === 0) continue;
    b.confidence /= b.count;
    b.accuracy /= b.count;
  }
  return out;
}

/** Expected calibration error of `rows`: |accuracy − confidence| per equal-width confidence bin, weighted by the bin's share. */
export function expectedCalibrationError(
  probs: ArrayLike<number>,
  y: ArrayLike<number>,
  k: number,
  rows: readonly number[],
  bins = ECE_BINS,
): number {
  return eceOf(reliabilityBins(probs, y, k, rows, bins), rows.length);
}

function eceOf(bins: ReliabilityBin[], n: number): number {
  return n > 0 ? bins.reduce((s, b) => s + (b.count * Math.abs(b.accuracy - b.confidence)) / n, 0) : 0;
}

/** Splits row indices into two halves, alternating within each class so both halves keep the class mix. */
export function stratifiedHalves(y: ArrayLike<number>): [number[], number[]] {
  const seen = new Map<number, number>();
  const halves: [number[], number[]] = [[], []];
  for (let r = 0; r < y.length; r++) {
    const i = seen.get(y[r]) ?? 0;
    seen.set(y[r], i + 1);
    halves[i % 2].push(r);
  }
  return halves;
}

/** A temperature, and why it is 1 when the fit was not tried or not trusted. */
export interface GuardedTemperature {
  temperature: number;
  fallback?: string;
}

/**
 * The temperature of `rows`, or 1 with the reason when the fit cannot be trusted: too few images;
 * no misclassified image (then the NLL falls all the way to T → 0 and every confidence would read
 * ~100%: the shipped 24-image sample drove T to its floor of 0.05); or a fit that ended on an end
 * of the search range rather than at a minimum.
 */
export function guardedTemperature(
  logits: ArrayLike<number>,
  y: ArrayLike<number>,
  k: number,
  rows: readonly number[],
): GuardedTemperature {
  if (rows.length < MIN_CALIBRATION_IMAGES)
    return {
      temperature: 1,
      fallback: `only ${rows.length} validation images: at least ${MIN_CALIBRATION_IMAGES} are needed to fit a temperature`,
    };
  let errors = 0;
  for (const r of rows) {
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[r * k + c] > logits[r * k + best]) best = c;
    if (best !== y[r]) errors++;
  }
  if (errors === 0)
    return {
      temperature: 1,
      fallback: `none of the ${rows.length} validation images is misclassified: the fit would sharpen every confidence towards 100%`,
    };
  const t = fitTemperature(logits, y, k, rows);
  const u = Math.log(t);
  if (u < LOG_T_MIN + BOUND_MARGIN || u > LOG_T_MAX - BOUND_MARGIN)
    return {
      temperature: 1,
      fallback: `the fitted temperature ${t.toFixed(3)} hit the end of its range [${Math.exp(LOG_T_MIN)}, ${Math.exp(LOG_T_MAX)}] (${errors} of ${rows.length} validation images misclassified)`,
    };
  return { temperature: t };
}

/**
 * Fits the temperature on one half of the validation predictions and measures the ECE before and
 * after on the other half (an honest figure: the temperature never saw those images), then refits
 * on all of them for the temperature the model keeps. Both fits are guarded (`guardedTemperature`):
 * when either cannot be trusted the temperature is 1, "after" equals "before", and `fallback` says why.
 */
export function calibrate(probs: Float32Array, y: ArrayLike<number>, k: number): Calibration {
  const logits = logitsOf(probs);
  const [fitRows, heldOut] = stratifiedHalves(y);
  const all = Array.from({ length: y.length }, (_, i) => i);
  const before = reliabilityBins(probs, y, k, heldOut);
  // The kept temperature is fitted on all the images; the held-out figure needs a trusted fit on one
  // half as well. Without both, a temperature could not be checked, so none is kept ("after" is "before").
  const full = guardedTemperature(logits, y, k, all);
  const tooFew = fitRows.length < MIN_CALIBRATION_IMAGES;
  const half = full.fallback || tooFew ? undefined : guardedTemperature(logits, y, k, fitRows);
  const fallback =
    full.fallback ??
    (tooFew
      ? `only ${y.length} validation images: a temperature is fitted on one half and checked on the other, and each half needs at least ${MIN_CALIBRATION_IMAGES}`
      : half?.fallback && `on the half of the validation images it is fitted on, ${half.fallback}`);
  const kept: GuardedTemperature = fallback ? { temperature: 1, fallback } : full;
  // T = 1 scales nothing: the same bins, without float32 → float64 round-off between them.
  const tHalf = kept.fallback || !half ? 1 : half.temperature;
  const after = tHalf === 1 ? before : reliabilityBins(scaledProbs(logits, k, tHalf), y, k, heldOut);
  return {
    temperature: kept.temperature,
    ...(kept.fallback ? { fallback: kept.fallback } : {}),
    eceBefore: eceOf(before, heldOut.length),
    eceAfter: eceOf(after, heldOut.length),
    heldOut: heldOut.length,
    bins: ECE_BINS,
    reliability: { before, after },
  };
}
