import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FeatureSet } from '../../../../src/training/fit/head';
import { fitNovelty, gramJs, noveltyScores, quantile } from '../../../../src/training/fit/novelty';
import { seededRandom } from '../../../../src/training/util/random';

/** Gaussian-ish clusters (sum of uniforms) around `centres`, more dimensions than images per class. */
function clusters(centres: number[][], perClass: number, seed: number, spread = 1): FeatureSet {
  const rand = seededRandom(seed);
  const f = centres[0].length;
  const n = centres.length * perClass;
  const x = new Float32Array(n * f);
  const y = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    y[r] = r % centres.length;
    for (let j = 0; j < f; j++) x[r * f + j] = centres[y[r]][j] + spread * (rand() + rand() + rand() - 1.5);
  }
  return { x, y, n, featureSize: f };
}

const f = 40;
const centre = (c: number) => Array.from({ length: f }, (_, j) => (j % 4 === c ? 6 : 0));

describe('unknown detection', () => {
  const train = clusters([centre(0), centre(1)], 15, 1);
  const val = clusters([centre(0), centre(1)], 50, 2);
  const stats = fitNovelty(train, val, 2);

  it('sets the threshold at the 99th percentile of the validation scores', () => {
    assert.equal(stats.fit.percentile, 99);
    assert.equal(stats.fit.valFlagged, 1);
    assert.equal(stats.fit.valImages, 100);
    assert.ok(stats.fit.shrinkage > 0 && stats.fit.shrinkage < 1, `shrinkage ${stats.fit.shrinkage}`);
  });

  it('scores images from a class it never saw above the threshold', () => {
    const other = clusters([centre(2)], 50, 3);
    const scores = noveltyScores(stats, other.x, other.n);
    const flagged = scores.filter((s) => s > stats.fit.threshold).length;
    assert.ok(flagged >= 48, `${flagged}/50 flagged`);
  });

  it('gives the Mahalanobis distance to the nearest class mean (identity covariance when shrunk fully)', () => {
    const identity = { featureSize: 2, classes: 2, whitening: new Float32Array([1, 0, 0, 1]), means: new Float32Array([0, 0, 10, 0]) };
    assert.deepEqual(Array.from(noveltyScores(identity, [3, 4, 9, 0], 2)), [5, 1]);
  });

  it("fits the same detector with a float32 matrix product (a backend's) as with the float64 loop", () => {
    const viaFloat32 = fitNovelty(train, val, 2, (x, n, d) => Float32Array.from(gramJs(x, n, d)));
    assert.ok(Math.abs(viaFloat32.fit.threshold - stats.fit.threshold) < 1e-3 * stats.fit.threshold);
    assert.equal(viaFloat32.fit.valFlagged, stats.fit.valFlagged);
  });

  it("scores the validation images through a backend's matrix product as the float64 loop does", async () => {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const times = (x: Float32Array, n: number, w: Float32Array, d: number) =>
      tf.tidy(() => tf.matMul(tf.tensor2d(x, [n, d]), tf.tensor2d(w, [d, d])).dataSync() as Float32Array);
    const viaBackend = fitNovelty(train, val, 2, gramJs, times);
    const worst = Math.max(...Array.from(viaBackend.valScores, (s, i) => Math.abs(s - stats.valScores[i]) / stats.valScores[i]));
    assert.ok(worst < 1e-5, `largest relative difference ${worst}`);
    assert.equal(viaBackend.fit.valFlagged, stats.fit.valFlagged);
  });

  it('interpolates quantiles between order statistics', () => {
    assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
    assert.equal(quantile([1, 2, 3], 1), 3);
  });
});
