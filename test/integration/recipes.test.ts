// Views, test-time augmentation and `--recipe`, through the built bundle as the CLI runs it, on a
// copy of the sample dataset: every view's features are cached and verified (a second run decodes
// and embeds nothing; a damaged view entry is reported and recomputed), `auto` records the
// candidates it compared, and `predict`, the saved TF.js model (run on the views metadata.json
// lists) and the ONNX export (views inside the graph) give the same answers.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { ModelMetadata } from '../../src/shared/runFolder';
import type { Evaluation, RunSummary } from '../../src/shared/types';
import { VIEW_NAMES } from '../../src/shared/views';
import { exportAgreement } from '../support/exportAgreement';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson } from '../support/trainingBundle';

const exec = promisify(execFile);

let data: string;
let cache: string;
let dihedralRun: string;

/** Trains through the CLI; returns the run folder, its log and its summary line's figures. */
async function train(args: string[], cacheDir: string): Promise<{ runDir: string; log: string; summary: RunSummary }> {
  const runs = tempDir('it-recipe-runs-');
  await exec(process.execPath, [bundle, 'train', data, '--out', runs, '--cache', cacheDir, '--epochs', '8', '--quiet', ...args], {
    timeout: 300_000,
  });
  const runDir = onlyRun(runs);
  const status = readJson<{ summary: RunSummary }>(path.join(runDir, 'status.json'));
  return { runDir, log: fs.readFileSync(path.join(runDir, 'train.log'), 'utf8'), summary: status.summary };
}

/** Every file of a folder with its size and modification time: what "not written" means. */
function listing(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((f) => {
      const s = fs.statSync(path.join(dir, f));
      return `${f} ${s.size} ${s.mtimeMs}`;
    });
}

before(async () => {
  data = path.join(tempDir('it-recipe-data-'), 'leaves');
  copySample(data, 30);
  cache = path.join(tempDir('it-recipe-cache-'), 'cache');
  dihedralRun = (await train(['--recipe', 'dihedral'], cache)).runDir;
});

test('--recipe dihedral trains on the 8 views, caches each, and a second run decodes and embeds nothing', async () => {
  const evaluation = readJson<Evaluation>(path.join(dihedralRun, 'evaluation.json'));
  assert.equal(evaluation.recipe?.chosen, 'dihedral');
  assert.equal(evaluation.recipe?.requested, 'dihedral');
  assert.deepEqual(readJson<ModelMetadata>(path.join(dihedralRun, 'model', 'metadata.json')).views, VIEW_NAMES);
  const keys = fs
    .readdirSync(cache)
    .filter((d) => fs.existsSync(path.join(cache, d, 'key.txt')))
    .map((d) => fs.readFileSync(path.join(cache, d, 'key.txt'), 'utf8').trim());
  assert.equal(keys.length, 8);
  assert.equal(keys.filter((k) => k.includes(';view=')).length, 7);

  const before = listing(data);
  const second = await train(['--recipe', 'dihedral'], cache);
  assert.match(second.log, /Features: 120 images \(120 distinct\) × 8 views, 960 cache hits, 0 misses, 0 embedded/);
  assert.deepEqual(second.summary.cache, { hits: 960, misses: 0 });
  assert.deepEqual(listing(data), before, 'the dataset folder was written');
  const again = readJson<Evaluation>(path.join(second.runDir, 'evaluation.json'));
  assert.equal(again.accuracy, readJson<Evaluation>(path.join(dihedralRun, 'evaluation.json')).accuracy);
});

test('a damaged entry of a view is reported, recomputed and gives the same answers', async () => {
  const damaged = path.join(tempDir('it-recipe-damage-'), 'cache');
  fs.cpSync(cache, damaged, { recursive: true });
  const root = fs
    .readdirSync(damaged)
    .find(
      (d) =>
        fs.existsSync(path.join(damaged, d, 'key.txt')) &&
        fs.readFileSync(path.join(damaged, d, 'key.txt'), 'utf8').includes(';view=rot90'),
    );
  assert.ok(root);
  // The packs would serve every vector: remove them so the entries are read, then damage one.
  fs.rmSync(path.join(damaged, root, 'packs'), { recursive: true, force: true });
  const entry = fs
    .readdirSync(path.join(damaged, root), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.f32'))
    .sort()[0];
  const file = path.join(damaged, root, entry);
  const bytes = fs.readFileSync(file);
  bytes[17] ^= 0x10;
  fs.writeFileSync(file, bytes);
  const rerun = await train(['--recipe', 'dihedral'], damaged);
  assert.match(rerun.log, /\[warn\] .*feature entry .*failed its checksum: discarded, vector recomputed/);
  assert.match(rerun.log, / 1 embedded,/);
  const clean = readJson<Evaluation>(path.join(dihedralRun, 'evaluation.json'));
  const redone = readJson<Evaluation>(path.join(rerun.runDir, 'evaluation.json'));
  assert.deepEqual(
    redone.predictions.map((p) => p.predicted),
    clean.predictions.map((p) => p.predicted),
  );
});

test('--recipe auto cross-validates plain, flip and dihedral on training images only, records why it chose, and caches the result verified', async () => {
  const autoCache = path.join(tempDir('it-recipe-auto-'), 'cache');
  const { runDir, log } = await train([], autoCache);
  const { recipe } = readJson<Evaluation>(path.join(runDir, 'evaluation.json'));
  assert.ok(recipe);
  assert.equal(recipe.requested, 'auto');
  assert.deepEqual(
    recipe.candidates.map((c) => [c.recipe, c.views]),
    [
      ['plain', 1],
      ['flip', 2],
      ['dihedral', 8],
    ],
  );
  for (const c of recipe.candidates) assert.ok(c.accuracy > 0.5 && c.accuracy <= 1, `${c.recipe} ${c.accuracy}`);
  // Cross-validated on the training part: 96 of the 120 images (24 are validation images).
  assert.equal(recipe.images, 96);
  assert.ok(recipe.candidates.some((c) => c.recipe === recipe.chosen));
  assert.match(recipe.reason, /chose over plain|plain kept/);
  const report = fs.readFileSync(path.join(runDir, 'report.md'), 'utf8');
  assert.ok(report.includes(recipe.reason), 'report.md gives the reason');
  for (const c of recipe.candidates) assert.ok(report.includes(`${(100 * c.accuracy).toFixed(1)}%`), `report.md lists ${c.recipe}`);
  assert.match(log, /Recipe: .*4-fold cross-validation on 96 training images/);
  console.log(
    `sample, auto: ${recipe.reason} (${recipe.candidates.map((c) => `${c.recipe} ${(100 * c.accuracy).toFixed(1)}%`).join(', ')})`,
  );
});

test('--refit trains the kept head again on training + validation images for the kept epoch count and reports the figures measured before', async () => {
  const { runDir, log } = await train(['--recipe', 'dihedral', '--refit'], cache);
  const evaluation = readJson<Evaluation>(path.join(runDir, 'evaluation.json'));
  const before = readJson<Evaluation>(path.join(dihedralRun, 'evaluation.json'));
  assert.deepEqual(evaluation.recipe?.refit, { epochs: before.bestEpoch, images: 120 });
  assert.equal(evaluation.accuracy, before.accuracy, 'the reported accuracy is the held-out one, measured before the refit');
  assert.match(log, /Refit: the final head trained on all 120 labelled images/);
  assert.match(fs.readFileSync(path.join(runDir, 'report.md'), 'utf8'), /Refit: the kept model was trained on all 120 labelled images/);
  const weights = (dir: string) =>
    fs
      .readdirSync(path.join(dir, 'model'))
      .filter((f) => f.endsWith('.bin'))
      .map((f) => fs.readFileSync(path.join(dir, 'model', f)));
  assert.notDeepEqual(weights(runDir), weights(dihedralRun), 'the saved model holds the refit weights');
});

test('predict, the TF.js model run on the views metadata.json lists and the ONNX export agree within 1e-4 for 20 images', async () => {
  const images = tempDir('it-recipe-images-');
  for (const c of fs.readdirSync(data).sort())
    for (const f of fs.readdirSync(path.join(data, c)).sort().slice(0, 5))
      fs.copyFileSync(path.join(data, c, f), path.join(images, `${c}__${f}`));
  const { maxDiff, images: n, views } = await exportAgreement(dihedralRun, images);
  assert.equal(n, 20);
  assert.equal(views, 8);
  console.log(`sample, 8 views: largest probability difference between predict, TF.js and ONNX ${maxDiff.toExponential(2)}`);
  assert.ok(maxDiff < 1e-4, `probabilities differ by ${maxDiff}`);
});
