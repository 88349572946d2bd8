// The doctor's scores on small inputs whose answer is known: confident learning, the k-NN vote,
// near-duplicate grouping, outliers, weak images from real decoded photos, shortcuts, and the
// similarity pass on onnxruntime against the plain loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImageFile } from '../../../../src/training/dataset/imageDecoder';
import { THUMB_SIDE, thumbVector } from '../../../../src/training/dataset/pixelStats';
import { centredUnitRows, neighbourhood } from '../../../../src/training/doctor/featureSimilarity';
import { classThresholds, confidentLabelIssues, knnProbs } from '../../../../src/training/doctor/labelIssues';
import { groupPairs, isNearDuplicate, smallestSimilarity } from '../../../../src/training/doctor/nearDuplicates';
import { outlierRows, outlierScores } from '../../../../src/training/doctor/outliers';
import { findShortcuts, propertyAccuracy } from '../../../../src/training/doctor/shortcuts';
import { weakImages } from '../../../../src/training/doctor/weakImages';
import { stratifiedFolds } from '../../../../src/training/fit/crossValidation';
import { tempDir } from '../../../support/tempDirs';

const PHOTOS = path.resolve(__dirname, '../../../../../shared/photos');

test('confident learning flags the row confidently in another class, with per-class thresholds, ranked by self-confidence', () => {
  // 3 classes; rows 0–3 class 0, 4–7 class 1, 8–9 class 2. Row 2 looks like class 1; row 9 like class 0 but less surely.
  const y = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2];
  const p = [
    [0.9, 0.05, 0.05],
    [0.8, 0.1, 0.1],
    [0.1, 0.85, 0.05],
    [0.7, 0.2, 0.1],
    [0.1, 0.8, 0.1],
    [0.2, 0.7, 0.1],
    [0.1, 0.9, 0.0],
    [0.3, 0.6, 0.1],
    [0.1, 0.1, 0.8],
    [0.55, 0.05, 0.4],
  ];
  const probs = Float32Array.from(p.flat());
  const t = classThresholds(probs, y, 3);
  assert.ok(Math.abs(t[0] - (0.9 + 0.8 + 0.1 + 0.7) / 4) < 1e-6);
  const issues = confidentLabelIssues(probs, y, 3);
  assert.deepEqual(
    issues.map((i) => [i.row, i.suggested]),
    [
      [2, 1],
      [9, 0],
    ],
  );
  assert.ok(Math.abs(issues[0].score - 0.9) < 1e-6);
  assert.ok(issues[0].score > issues[1].score);
});

test('the k-NN vote weighs neighbours by similarity and falls back to the uniform prior without neighbours', () => {
  const y = [0, 1, 1];
  const index = Int32Array.from([1, 2, 0, 2, -1, -1]);
  const similarity = Float32Array.from([0.9, 0.5, 0.8, 0.2, -Infinity, -Infinity]);
  const p = knnProbs(y, index, similarity, 2, 2);
  // Row 0: both neighbours are class 1.
  assert.ok(p[1] > 0.75 && Math.abs(p[0] + p[1] - 1) < 1e-6);
  // Row 2: no neighbours.
  assert.deepEqual(Array.from(p.subarray(4, 6)), [0.5, 0.5]);
});

test('near-duplicate pairs are linked into groups, and a group reports its least similar pair', () => {
  const { groupOf, groups } = groupPairs(6, [
    { i: 0, j: 3 },
    { i: 3, j: 5 },
    { i: 1, j: 2 },
  ]);
  assert.deepEqual(groups, [
    [0, 3, 5],
    [1, 2],
  ]);
  assert.equal(groupOf[5], 0);
  assert.equal(groupOf[4], 4);
  const unit = Float32Array.from([1, 0, 0.8, 0.6, 0, 1]);
  assert.ok(Math.abs(smallestSimilarity(unit, 2, [0, 1, 2]) - 0) < 1e-6);
  assert.ok(Math.abs(smallestSimilarity(unit, 2, [0, 1]) - 0.8) < 1e-6);
});

test('the similarity pass finds the same neighbours and pairs on onnxruntime as in plain JavaScript', async () => {
  const n = 300;
  const f = 64;
  let s = 7;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const x = Float32Array.from({ length: n * f }, rnd);
  // Row 10 is a slightly changed copy of row 20.
  for (let j = 0; j < f; j++) x[10 * f + j] = x[20 * f + j] * (1 + 0.01 * rnd());
  const onnx = await neighbourhood(x, n, f, 5, 0.9);
  const js = await neighbourhood(x, n, f, 5, 0.9, { useOnnx: false });
  assert.deepEqual(Array.from(onnx.index), Array.from(js.index));
  assert.deepEqual(
    onnx.pairs.map((p) => [p.i, p.j]),
    [[10, 20]],
  );
  assert.deepEqual(
    js.pairs.map((p) => [p.i, p.j]),
    [[10, 20]],
  );
  // A near-duplicate is not a neighbour.
  assert.ok(!Array.from(js.index.subarray(10 * 5, 11 * 5)).includes(20));
  const unit = centredUnitRows(x, n, f);
  assert.ok(Math.abs(js.similarity[0] - unit.subarray(0, f).reduce((a, v, j) => a + v * unit[js.index[0] * f + j], 0)) < 1e-4);
});

test('the row far from all the others is the top outlier, far ahead of the rest', async () => {
  const n = 60;
  const f = 16;
  let s = 3;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  // Photos share a common part; row 7 is something else entirely.
  const x = Float32Array.from({ length: n * f }, (_, i) => (i % f < 8 ? 1 : 0) + 0.3 * rnd());
  for (let j = 0; j < f; j++) x[7 * f + j] = j < 8 ? 0 : 1 + 0.3 * rnd();
  const nb = await neighbourhood(x, n, f, 10, 0.9999, { useOnnx: false });
  const unit = Float32Array.from(x);
  for (let r = 0; r < n; r++) {
    const norm = Math.hypot(...unit.subarray(r * f, (r + 1) * f));
    for (let j = 0; j < f; j++) unit[r * f + j] /= norm;
  }
  const scores = outlierScores(unit, f, nb);
  assert.equal(outlierRows(scores)[0], 7);
  const others = Math.max(...Array.from(scores).filter((_, r) => r !== 7));
  assert.ok(scores[7] > 3 * others, `${scores[7]} against at most ${others}`);
});

test('a blurred and a darkened copy of a real photo are weak; the photo itself is not', async () => {
  const dir = tempDir('weak-');
  const photo = path.join(PHOTOS, 'horses.jpg');
  await sharp(photo).blur(6).toFile(path.join(dir, 'blurred.jpg'));
  await sharp(photo).linear(0.1, 0).toFile(path.join(dir, 'dark.jpg'));
  await sharp(photo).linear(0.1, 120).toFile(path.join(dir, 'flat.jpg'));
  const inputs = [];
  for (const [name, file] of [
    ['photo', photo],
    ['eagle', path.join(PHOTOS, 'eagle.jpg')],
    ['dog', path.join(PHOTOS, 'dog.jpg')],
    ['blurred', path.join(dir, 'blurred.jpg')],
    ['dark', path.join(dir, 'dark.jpg')],
    ['flat', path.join(dir, 'flat.jpg')],
  ]) {
    const { stats } = await decodeImageFile(file, 224, 1e8);
    inputs.push({ path: name, stats, width: 500, height: 400 });
  }
  inputs.push({ ...inputs[1], path: 'tiny', width: 40, height: 30 });
  const weak = weakImages(inputs, 224);
  const problems = (p: string) => weak.filter((w) => w.path === p).map((w) => w.problem);
  assert.deepEqual(problems('photo'), []);
  assert.ok(problems('blurred').includes('blurred'), JSON.stringify(weak));
  assert.ok(problems('dark').includes('dark'), JSON.stringify(weak));
  assert.ok(problems('flat').includes('low-contrast'), JSON.stringify(weak));
  assert.deepEqual(problems('tiny'), ['upscaled']);
  assert.ok(weak.find((w) => w.path === 'dark')!.value < 30);
});

test('a property that separates the classes is a shortcut; noise is not', () => {
  const n = 200;
  const y = Int32Array.from({ length: n }, (_, i) => i % 2);
  const folds = stratifiedFolds(y, 5, 1);
  let s = 11;
  const rnd = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const brightness = Float64Array.from(y, (c) => (c ? 180 : 60) + 20 * rnd());
  const width = Float64Array.from(y, () => 200 + 100 * rnd());
  assert.ok(propertyAccuracy(brightness, y, folds, 2) >= 0.98);
  const found = findShortcuts(
    [
      { name: 'brightness', values: brightness },
      { name: 'width', values: width },
    ],
    y,
    folds,
    2,
  );
  assert.deepEqual(
    found.map((f) => f.property),
    ['brightness'],
  );
  assert.equal(found[0].baseline, 0.5);
  assert.match(found[0].detail, /brightness of an image alone predicts its class (99|100)% of the time/);
});

test('two images are the same photo by their features, or by features and layout together', () => {
  assert.equal(isNearDuplicate(0.97, 0.1), true, 'features alone when certain (a crop, a flip)');
  assert.equal(isNearDuplicate(0.88, 0.8), true);
  assert.equal(isNearDuplicate(0.88, 0.2), false, 'two tulip fields: alike in content, not in layout');
  assert.equal(isNearDuplicate(0.7, 0.99), true, 'a copy shrunk so far that its features drift');
  assert.equal(isNearDuplicate(0.5, 0.99), false, 'two leaves on one background: alike in layout only');
  assert.equal(isNearDuplicate(0.88, undefined), true, 'without thumbnails, features decide');
  assert.equal(isNearDuplicate(0.8, undefined), false);
});

test('a resized and a recompressed copy of a real photo have its layout; another photo does not', async () => {
  const dir = tempDir('layout-');
  const photo = path.join(PHOTOS, 'horses.jpg');
  await sharp(photo).resize(160).png().toFile(path.join(dir, 'small.png'));
  await sharp(photo).jpeg({ quality: 60 }).toFile(path.join(dir, 'q60.jpg'));
  const layout = async (file: string) => thumbVector((await decodeImageFile(file, 224, 1e8)).stats);
  const original = await layout(photo);
  const corr = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);
  assert.equal(original.length, THUMB_SIDE * THUMB_SIDE);
  assert.ok(Math.abs(corr(original, original) - 1) < 1e-5);
  assert.ok(corr(original, await layout(path.join(dir, 'small.png'))) > 0.97);
  assert.ok(corr(original, await layout(path.join(dir, 'q60.jpg'))) > 0.97);
  assert.ok(corr(original, await layout(path.join(PHOTOS, 'eagle.jpg'))) < 0.5);
});
