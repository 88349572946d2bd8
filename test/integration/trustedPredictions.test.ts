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
import type { Evaluation } from '../../src/shared/types';
import { seededRandom } from '../../src/training/util/random';
import { exportAgreement, predictJson, type PredictLine } from '../support/exportAgreement';
import { tempDir } from '../support/tempDirs';
import { bundle, onlyRun, readJson, repo } from '../support/trainingBundle';

const run = promisify(execFile);
const datasets = path.resolve(repo, '../shared/datasets');
const photos = path.resolve(repo, '../shared/photos');
const runs: Record<string, string> = {};

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

const predict = predictJson;

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
  const { maxDiff, images, views } = await exportAgreement(runs.hymenoptera, sampleOf('hymenoptera', 20, 5));
  assert.equal(images, 20);
  assert.equal(views, 8);
  console.log(
    `hymenoptera, 8 views, 20 images: largest probability difference between predict, TF.js and ONNX ${maxDiff.toExponential(2)}`,
  );
  assert.ok(maxDiff < 1e-4, `probabilities differ by ${maxDiff}`);
});
