import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  calibrate,
  expectedCalibrationError,
  fitTemperature,
  guardedTemperature,
  logitsOf,
  MIN_CALIBRATION_IMAGES,
  nllAt,
  scaledProbs,
  stratifiedHalves,
} from '../../../../src/training/fit/calibration';
import { seededRandom } from '../../../../src/training/util/random';

const k = 3;

/** Predictions of a model that is right 70% of the time but says 0.98: logits three times too large. */
function overconfident(n: number, seed: number): { probs: Float32Array; y: Int32Array } {
  const rand = seededRandom(seed);
  const probs = new Float32Array(n * k);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % k;
    const predicted = rand() < 0.7 ? y[i] : (y[i] + 1) % k;
    const logits = [0, 0, 0].map((_, c) => (c === predicted ? 1.5 : 0) * 3 + rand() * 0.3);
    const row = scaledProbs(logits, k, 1);
    probs.set(row, i * k);
  }
  return { probs, y };
}

describe('temperature scaling', () => {
  it('softens an overconfident model and lowers its calibration error on images it was not fitted on', () => {
    const { probs, y } = overconfident(600, 7);
    const c = calibrate(probs, y, k);
    assert.ok(c.temperature > 2 && c.temperature < 4.5, `temperature ${c.temperature}`);
    assert.ok(c.eceAfter < c.eceBefore / 2, `ECE ${c.eceBefore} → ${c.eceAfter}`);
    assert.equal(c.heldOut, 300);
    assert.equal(c.bins, 15);
    assert.equal(c.fallback, undefined);
    // The diagram behind the figure: its bins hold every held-out image and give back the same ECE.
    for (const [bins, ece] of [
      [c.reliability!.before, c.eceBefore],
      [c.reliability!.after, c.eceAfter],
    ] as const) {
      assert.equal(bins.length, 15);
      assert.equal(
        bins.reduce((s, b) => s + b.count, 0),
        300,
      );
      assert.ok(Math.abs(bins.reduce((s, b) => s + (b.count * Math.abs(b.accuracy - b.confidence)) / 300, 0) - ece) < 1e-12);
    }
  });

  it('keeps temperature 1 when no temperature lowers the negative log-likelihood', () => {
    // Each confidence is exactly as often right as it says: any T ≠ 1 makes the NLL worse or equal.
    const probs = new Float32Array([0.5, 0.5, 0.5, 0.5]);
    const y = [0, 1, 0, 1];
    assert.equal(fitTemperature(logitsOf(probs), y, 2, [0, 1, 2, 3]), 1);
  });

  it('finds the temperature that minimises the NLL within the search range', () => {
    const { probs, y } = overconfident(300, 3);
    const logits = logitsOf(probs);
    const rows = Array.from({ length: 300 }, (_, i) => i);
    const t = fitTemperature(logits, y, k, rows);
    for (const other of [t * 0.9, t * 1.1, 1]) assert.ok(nllAt(logits, y, k, t, rows) <= nllAt(logits, y, k, other, rows) + 1e-9);
  });

  it('does not change which class is predicted', () => {
    const { probs } = overconfident(50, 1);
    const scaled = scaledProbs(logitsOf(probs), k, 2.7);
    for (let r = 0; r < 50; r++) {
      const argmax = (a: ArrayLike<number>) => [0, 1, 2].reduce((b, c) => (a[r * k + c] > a[r * k + b] ? c : b), 0);
      assert.equal(argmax(scaled), argmax(probs));
    }
  });
});

/** `n` predictions that are all right, at confidences spread between 0.55 and 0.95: a perfectly separated validation set. */
function separated(n: number): { probs: Float32Array; y: Int32Array } {
  const probs = new Float32Array(n * 2);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    const p = 0.55 + (0.4 * i) / n;
    probs[i * 2 + y[i]] = p;
    probs[i * 2 + 1 - y[i]] = 1 - p;
  }
  return { probs, y };
}

describe('the calibration guard', () => {
  it('keeps temperature 1 on a perfectly separated validation set, where the bare fit runs to its floor', () => {
    const { probs, y } = separated(40);
    const rows = Array.from({ length: 40 }, (_, i) => i);
    // Without the guard: every confidence would be pushed to ~100% (T at the 0.05 floor).
    assert.ok(fitTemperature(logitsOf(probs), y, 2, rows) < 0.06);
    const c = calibrate(probs, y, 2);
    assert.equal(c.temperature, 1);
    assert.match(c.fallback ?? '', /none of the 40 validation images is misclassified/);
    // The held-out figure uses the same guard: nothing was scaled, so nothing changed.
    assert.equal(c.eceAfter, c.eceBefore);
  });

  it('keeps temperature 1 on a validation set too small to fit one on one half and check it on the other', () => {
    // 36 images, 12 per class: 18 to fit on, 18 to check, short of the minimum, although all 36 would pass it.
    const n = 2 * MIN_CALIBRATION_IMAGES - 4;
    const { probs, y } = overconfident(n, 5);
    assert.equal(
      guardedTemperature(
        logitsOf(probs),
        y,
        k,
        Array.from({ length: n }, (_, i) => i),
      ).fallback,
      undefined,
    );
    const c = calibrate(probs, y, k);
    assert.equal(c.temperature, 1);
    assert.match(c.fallback ?? '', new RegExp(`^only ${n} validation images: .* each half needs at least ${MIN_CALIBRATION_IMAGES}$`));
    assert.equal(c.eceAfter, c.eceBefore);
    assert.deepEqual(c.reliability!.after, c.reliability!.before);
    // A tiny set is refused by the guard itself as well.
    assert.match(
      guardedTemperature(logitsOf(probs), y, k, [0, 1, 2]).fallback ?? '',
      /^only 3 validation images: at least 20 are needed to fit a temperature$/,
    );
  });

  it('refuses a fit that ends on the edge of its range instead of at a minimum', () => {
    // Confident and no better than chance: the NLL keeps falling as T grows, up to the 20 ceiling.
    const n = 60;
    const probs = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = i % 2;
      const predicted = Math.floor(i / 2) % 2;
      probs[i * 2 + predicted] = 0.9;
      probs[i * 2 + 1 - predicted] = 0.1;
    }
    const rows = Array.from({ length: n }, (_, i) => i);
    assert.ok(fitTemperature(logitsOf(probs), y, 2, rows) > 19);
    const guarded = guardedTemperature(logitsOf(probs), y, 2, rows);
    assert.equal(guarded.temperature, 1);
    assert.match(guarded.fallback ?? '', /hit the end of its range/);
  });

  it('trusts a fit with mistakes, enough images and a minimum inside the range', () => {
    const { probs, y } = overconfident(200, 11);
    const guarded = guardedTemperature(
      logitsOf(probs),
      y,
      k,
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.equal(guarded.fallback, undefined);
    assert.ok(guarded.temperature > 1.5, String(guarded.temperature));
  });
});

describe('expected calibration error', () => {
  it('is the share-weighted gap between accuracy and confidence per bin', () => {
    // Bin (0.8, 0.8667]: two images at 0.85, one right → |0.5 − 0.85| × 2/4; bin of 1.0: two right at 1.0 → 0.
    const probs = [0.85, 0.15, 0.85, 0.15, 1, 0, 0, 1];
    const ece = expectedCalibrationError(probs, [0, 1, 0, 1], 2, [0, 1, 2, 3]);
    assert.ok(Math.abs(ece - 0.175) < 1e-9, String(ece));
  });

  it('measures on halves that each keep the class mix', () => {
    // Class 0 is rows 0, 1, 5 and class 1 rows 2, 3, 4: each class alternates between the halves.
    const [a, b] = stratifiedHalves([0, 0, 1, 1, 1, 0]);
    assert.deepEqual(a, [0, 2, 4, 5]);
    assert.deepEqual(b, [1, 3]);
  });
});
