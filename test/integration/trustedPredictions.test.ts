// Calibrated confidence, "unknown" detection and the exports that carry them, on the real datasets
// in ../shared through the real CLI: runs on flowers, hymenoptera and plantvillage-apple (the
// slow part, once for the whole file), then predictions on images of other datasets, and the same
// images through predict, the TF.js model as saved and the ONNX export.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Tensor } from '@tensorflow/tfjs';
import type { ModelMetadata } from '../../src/shared/runFolder';
import type { Evaluation } from '../../src/shared/types';
import { VIEW_SPECS } from '../../src/shared/views';
import { decodeImage } from '../../src/training/dataset/imageDecoder';
import { loadLayersModelFromDir } from '../../src/training/models/baseModel';
import { seededRandom } from '../../src/training/util/random';
import { tempDir } from '../support/tempDirs';
import { bundle, onlyRun, readJson, repo } from '../support/trainingBundle';

const run = promisify(execFile);
const datasets = path.resolve(repo, '../shared/datasets');
const photos = path.resolve(repo, '../shared/photos');
const runs: Record<string, string> = {};

interface PredictLine {
  path: string;
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  novelty: number;
  unknown: boolean;
}

async function train(name: string, extra: string[] = []): Promise<string> {
  const work = tempDir(`it-trust-${name}-`);
  await run(
    process.execPath,
    [
      bundle,
      'train',
      path.join(datasets, name),
      '--out',
      path.join(work, 'runs'),
      '--cache',
      path.join(work, 'cache'),
      '--quiet',
      ...extra,
    ],
    {
      timeout: 300_000,
      maxBuffer: 1 << 26,
    },
  );
  return onlyRun(path.join(work, 'runs'));
}

async function predict(runDir: string, target: string): Promise<PredictLine[]> {
  const { stdout } = await run(process.execPath, [bundle, 'predict', runDir, target, '--json'], { timeout: 300_000, maxBuffer: 1 << 26 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as PredictLine);
}

/** A seeded sample of `n` images of a dataset, copied flat into a fresh folder (names made unique by their class). */
function sampleOf(name: string, n: number, seed: number): string {
  const root = path.join(datasets, name);
  const files = fs
    .readdirSync(root)
    .sort()
    .flatMap((c) =>
      fs.statSync(path.join(root, c)).isDirectory()
        ? fs
            .readdirSync(path.join(root, c))
            .sort()
            .map((f) => path.join(c, f))
        : [],
    );
  const rand = seededRandom(seed);
  for (let i = files.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [files[i], files[j]] = [files[j], files[i]];
  }
  const dir = tempDir(`it-trust-sample-${name}-`);
  for (const rel of files.slice(0, n)) fs.copyFileSync(path.join(root, rel), path.join(dir, rel.replace(/[/\\]/g, '__')));
  return dir;
}

function flaggedShare(lines: PredictLine[]): number {
  return lines.filter((l) => l.unknown).length / lines.length;
}

before(async () => {
  // Hymenoptera with the 8 views, so the agreement test below covers test-time augmentation.
  runs.hymenoptera = await train('hymenoptera', ['--recipe', 'dihedral']);
  for (const name of ['plantvillage-apple', 'flowers']) runs[name] = await train(name, ['--recipe', 'plain']);
});

for (const name of ['flowers', 'hymenoptera']) {
  test(`temperature scaling lowers the calibration error of ${name} on validation images it was not fitted on`, () => {
    const { calibration } = readJson<Evaluation>(path.join(runs[name], 'evaluation.json'));
    assert.ok(calibration);
    console.log(
      `${name}: T ${calibration.temperature.toFixed(3)}, ECE (15 bins, ${calibration.heldOut} held-out) ${calibration.eceBefore.toFixed(4)} → ${calibration.eceAfter.toFixed(4)}`,
    );
    assert.ok(calibration.eceAfter < calibration.eceBefore);
    const meta = readJson<{ temperature: number }>(path.join(runs[name], 'model', 'metadata.json'));
    assert.equal(meta.temperature, calibration.temperature);
    assert.match(fs.readFileSync(path.join(runs[name], 'report.md'), 'utf8'), /calibration error/i);
  });
}

test('a plant-disease model calls flowers and everyday photos unknown and almost none of its own validation images', async () => {
  const runDir = runs['plantvillage-apple'];
  const { novelty } = readJson<Evaluation>(path.join(runDir, 'evaluation.json'));
  assert.ok(novelty);
  const own = novelty.valFlagged / novelty.valImages;
  const flowers = flaggedShare(await predict(runDir, sampleOf('flowers', 200, 13)));
  const everyday = flaggedShare(await predict(runDir, photos));
  console.log(
    `plantvillage-apple model: unknown ${(100 * flowers).toFixed(1)}% of 200 flowers, ${(100 * everyday).toFixed(1)}% of photos, ${(100 * own).toFixed(1)}% of its ${novelty.valImages} validation images`,
  );
  assert.ok(flowers >= 0.9);
  assert.ok(everyday >= 0.9);
  assert.ok(own <= 0.05);
});

test('a flower model calls apple leaves unknown and almost none of its own validation images', async () => {
  const runDir = runs.flowers;
  const { novelty } = readJson<Evaluation>(path.join(runDir, 'evaluation.json'));
  assert.ok(novelty);
  const own = novelty.valFlagged / novelty.valImages;
  const leaves = flaggedShare(await predict(runDir, sampleOf('plantvillage-apple', 200, 13)));
  console.log(
    `flowers model: unknown ${(100 * leaves).toFixed(1)}% of 200 apple leaves, ${(100 * own).toFixed(1)}% of its ${novelty.valImages} validation images`,
  );
  assert.ok(leaves >= 0.9);
  assert.ok(own <= 0.05);
});

test('predict, the saved TF.js model on the views metadata.json lists and the ONNX export give the same labels, calibrated probabilities and novelty for 20 images', async () => {
  const runDir = runs.hymenoptera;
  const images = sampleOf('hymenoptera', 20, 5);
  const predicted = await predict(runDir, images);
  assert.equal(predicted.length, 20);
  const onnxFile = path.join(tempDir('it-trust-onnx-'), 'model.onnx');
  await run(process.execPath, [bundle, 'export-onnx', runDir, '--out', onnxFile], { timeout: 300_000 });
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: 2 });
  assert.deepEqual(session.outputNames, ['probabilities', 'novelty']);
  const tf = await import('@tensorflow/tfjs');
  const model = await loadLayersModelFromDir(tf, path.join(runDir, 'model'));
  const labels = readJson<string[]>(path.join(runDir, 'labels.json'));
  const meta = readJson<ModelMetadata>(path.join(runDir, 'model', 'metadata.json'));
  assert.equal(meta.views?.length, 8);
  let maxDiff = 0;
  for (const line of predicted) {
    const pixels = Float32Array.from(await decodeImage(line.path, 224, 1e8));
    // What metadata.json says to do with the TF.js model: run it on each view (built here with tfjs
    // ops), average the log-probabilities, renormalise.
    const tfjsProbs = tf.tidy(() => {
      const x = tf.tensor4d(pixels, [1, 224, 224, 3]);
      const logs = meta.views!.map((name) => {
        const { v, h, t } = VIEW_SPECS[name];
        let view: Tensor = x;
        const axes = [...(v ? [1] : []), ...(h ? [2] : [])];
        if (axes.length) view = tf.reverse(view, axes);
        if (t) view = tf.transpose(view, [0, 2, 1, 3]);
        return tf.log(tf.maximum(model.predict(view) as Tensor, 1e-30));
      });
      return Array.from(tf.softmax(tf.addN(logs).div(logs.length)).dataSync());
    });
    const result = await session.run({ pixels: new ort.Tensor('float32', pixels, [1, 224, 224, 3]) });
    const onnxProbs = Array.from(result.probabilities.data as Float32Array);
    const onnxNovelty = (result.novelty.data as Float32Array)[0];
    const byLabel = new Map(line.top.map((t) => [t.label, t.confidence]));
    labels.forEach((label, c) => {
      const p = byLabel.get(label);
      if (p === undefined) return;
      maxDiff = Math.max(maxDiff, Math.abs(p - tfjsProbs[c]), Math.abs(p - onnxProbs[c]));
    });
    for (const probs of [tfjsProbs, onnxProbs]) assert.equal(labels[probs.indexOf(Math.max(...probs))], line.label);
    assert.ok(Math.abs(onnxNovelty - line.novelty) <= 1e-3 * line.novelty, `novelty ${onnxNovelty} vs ${line.novelty}`);
    assert.equal(onnxNovelty > meta.unknownThreshold!, line.unknown);
  }
  console.log(
    `hymenoptera, 8 views, 20 images: largest probability difference between predict, TF.js and ONNX ${maxDiff.toExponential(2)}`,
  );
  assert.ok(maxDiff < 1e-4, `probabilities differ by ${maxDiff}`);
  model.dispose();
});
