// Shortcuts: a trivial property of the files that predicts the class on its own, so a model could
// score well by learning it instead of the subject (every photo of one class taken on one
// background, at one size, or in one light). For each property a tiny classifier — the property cut
// into quantile bins, each bin predicting its most frequent class — is cross-validated on the
// doctor's folds and compared with always guessing the largest class.
import type { Shortcut } from '../../shared/doctor';

/** Reported when the property beats the largest-class guess by at least this much accuracy. */
export const SHORTCUT_MARGIN = 0.15;
const BINS = 8;

export interface ShortcutProperty {
  /** Its name for the user, e.g. "brightness". */
  name: string;
  values: Float64Array;
}

/** Cross-validated accuracy of the binned classifier on one property. */
export function propertyAccuracy(values: Float64Array, y: ArrayLike<number>, folds: Int32Array, numClasses: number): number {
  const k = folds.reduce((m, f) => Math.max(m, f + 1), 0);
  let hits = 0;
  for (let f = 0; f < k; f++) {
    const train: number[] = [];
    for (let i = 0; i < y.length; i++) if (folds[i] !== f) train.push(i);
    if (train.length === 0) continue;
    const sorted = Float64Array.from(train, (i) => values[i]).sort();
    const edges = Array.from({ length: BINS - 1 }, (_, b) => sorted[Math.floor(((b + 1) * sorted.length) / BINS)]);
    const bin = (v: number): number => {
      let b = 0;
      while (b < edges.length && v >= edges[b]) b++;
      return b;
    };
    const counts = Array.from({ length: BINS }, () => new Float64Array(numClasses));
    const overall = new Float64Array(numClasses);
    for (const i of train) {
      counts[bin(values[i])][y[i]]++;
      overall[y[i]]++;
    }
    const argmax = (c: Float64Array): number => c.reduce((best, v, j) => (v > c[best] ? j : best), 0);
    const fallback = argmax(overall);
    for (let i = 0; i < y.length; i++) {
      if (folds[i] !== f) continue;
      const c = counts[bin(values[i])];
      const guess = c.some((v) => v > 0) ? argmax(c) : fallback;
      if (guess === y[i]) hits++;
    }
  }
  return y.length ? hits / y.length : 0;
}

/** The properties that predict the class well beyond the largest-class baseline, strongest first. */
export function findShortcuts(
  properties: readonly ShortcutProperty[],
  y: ArrayLike<number>,
  folds: Int32Array,
  numClasses: number,
): Shortcut[] {
  const counts = new Float64Array(numClasses);
  for (let i = 0; i < y.length; i++) counts[y[i]]++;
  const baseline = y.length ? Math.max(...counts) / y.length : 0;
  const found: Shortcut[] = [];
  for (const { name, values } of properties) {
    const accuracy = propertyAccuracy(values, y, folds, numClasses);
    if (accuracy - baseline < SHORTCUT_MARGIN) continue;
    const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
    found.push({
      property: name,
      accuracy: Math.round(accuracy * 1000) / 1000,
      baseline: Math.round(baseline * 1000) / 1000,
      detail: `The ${name} of an image alone predicts its class ${pct(accuracy)} of the time (always guessing the largest class: ${pct(baseline)}): a model may learn it instead of the subject.`,
    });
  }
  return found.sort((a, b) => b.accuracy - b.baseline - (a.accuracy - a.baseline));
}
