// The projection behind the feature map: the randomized PCA finds the directions an exact
// eigen-decomposition finds, and the whole projection is a function of its seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { knnAgreement, pcaScores, projectFeatures } from '../../../../src/training/map/projection';
import { seededRandom } from '../../../../src/training/util/random';

/** n points in d dimensions: three clusters along two directions, plus small noise. */
function clusters(n: number, d: number, seed: number): { x: Float32Array; labels: number[] } {
  const random = seededRandom(seed);
  const x = new Float32Array(n * d);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    labels.push(c);
    for (let j = 0; j < d; j++) x[i * d + j] = (random() - 0.5) * 0.2 + (j === c ? 4 : 0) + (j === 5 ? 2 * c : 0);
  }
  return { x, labels };
}

test('the PCA scores have the variances of the leading eigenvalues of the covariance, largest first', () => {
  const n = 300;
  const d = 12;
  const { x } = clusters(n, d, 1);
  const scores = pcaScores(x, n, d, 3, 7);
  const variance = (j: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += scores[i * 3 + j]! ** 2;
    return s / n;
  };
  // Total variance of the data, and that three components (three clusters) hold nearly all of it.
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j]! / n;
  let total = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) total += (x[i * d + j]! - mean[j]!) ** 2 / n;
  const [v0, v1, v2] = [variance(0), variance(1), variance(2)];
  assert.ok(v0 >= v1 && v1 >= v2, `${v0} ≥ ${v1} ≥ ${v2}`);
  assert.ok((v0 + v1) / total > 0.97, `two components explain ${((v0 + v1) / total).toFixed(3)} of the variance`);
});

test('the same seed gives the same layout; another seed another one', async () => {
  const n = 150;
  const d = 20;
  const { x, labels } = clusters(n, d, 2);
  const method = { pca: 8, nNeighbors: 10, minDist: 0.1, nEpochs: 100 };
  const a = await projectFeatures(x, n, d, { ...method, seed: 1 });
  const b = await projectFeatures(x, n, d, { ...method, seed: 1 });
  const c = await projectFeatures(x, n, d, { ...method, seed: 2 });
  assert.deepEqual([a.x, a.y], [b.x, b.y]);
  assert.notDeepEqual([a.x, a.y], [c.x, c.y]);
  for (const v of [...a.x, ...a.y]) assert.ok(v >= 0 && v <= 1);
  const points = a.x.flatMap((xi, i) => [xi, a.y[i]!]);
  assert.ok(knnAgreement(points, 2, labels, 5) > 0.95, 'separate clusters stay separate on the map');
});

test('k-NN agreement counts the neighbours that share a label', () => {
  // Two pairs far apart: each point's one nearest neighbour is its pair.
  assert.equal(knnAgreement([0, 0, 0, 1, 10, 10, 10, 11], 2, [0, 0, 1, 1], 1), 1);
  assert.equal(knnAgreement([0, 0, 0, 1, 10, 10, 10, 11], 2, [0, 1, 0, 1], 1), 0);
});

test('a cancel stops the projection between epochs', async () => {
  const { x } = clusters(200, 10, 3);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(projectFeatures(x, 200, 10, { pca: 5, nNeighbors: 10, minDist: 0.1, nEpochs: 200, seed: 1 }, controller.signal));
});
