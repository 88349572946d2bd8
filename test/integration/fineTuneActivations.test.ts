// Fine-tuning through the CLI bundle (dist/training.js) on a copy of the sample: the activations at
// the cut (of each image and its mirror image) are computed by onnxruntime and cached, a second run computes none, and a damaged
// activation entry (with its pack) is recomputed with a log line; the steps run on onnxruntime.
// A rerun with nothing changed reads fine-tuning's result from the cache; a damaged one is trained again.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { EpochMetrics, Evaluation } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson } from '../support/trainingBundle';

const exec = promisify(execFile);
const PER_CLASS = 6;
const IMAGES = 4 * PER_CLASS;

let data: string;
let cache: string;

/** Trains with fine-tuning from block_14_expand (30 layers) through the CLI; the run log and the evaluation. */
async function train(extra: string[] = []): Promise<{ log: string; stderr: string; evaluation: Evaluation; metrics: EpochMetrics[] }> {
  const runs = tempDir('it-ft-runs-');
  const args = [
    bundle,
    'train',
    data,
    '--out',
    runs,
    '--cache',
    cache,
    '--epochs',
    '4',
    '--fine-tune-layers',
    '30',
    '--fine-tune-epochs',
    '2',
    ...extra,
  ];
  const { stderr } = await exec(process.execPath, args, { cwd: runs });
  const runDir = onlyRun(runs);
  return {
    log: fs.readFileSync(path.join(runDir, 'train.log'), 'utf8'),
    stderr,
    evaluation: readJson<Evaluation>(path.join(runDir, 'evaluation.json')),
    metrics: fs
      .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as EpochMetrics),
  };
}

/** The fine-tuning epochs' figures, without their durations. */
function fineTuneEpochs(metrics: EpochMetrics[]): Omit<EpochMetrics, 'durationMs'>[] {
  return metrics.filter((m) => m.stage === 'fine-tune').map(({ durationMs: _, ...rest }) => rest);
}

/** The activation cache's folder: the one whose key names the cut. */
function activationRoot(): string {
  const roots = fs
    .readdirSync(cache)
    .filter((n) => /^[0-9a-f]{24}$/.test(n))
    .filter((n) => fs.readFileSync(path.join(cache, n, 'key.txt'), 'utf8').includes('cut@block_13_project_BN'));
  assert.equal(roots.length, 1, `one activation-cache folder in ${cache}`);
  return path.join(cache, roots[0]);
}

function filesIn(dir: string, suffix: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix))
    .sort()
    .map((f) => path.join(dir, f));
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  data = path.join(tempDir('it-ft-data-'), 'leaves');
  copySample(data, PER_CLASS);
  cache = path.join(tempDir('it-ft-cache-'), 'cache');
});

test('fine-tuning trains on activations that onnxruntime computed and cached; a second run computes none and trains the same model', async () => {
  const first = await train(['--fine-tune-learning-rate', '1e-4']);
  assert.match(first.log, /Fine-tuning cut at block_14_expand: 10 layers with weights unfrozen \(asked for about 30 layers\)/);
  assert.match(
    first.log,
    new RegExp(
      `Cut activations at block_13_project_BN \\(2 views × 7×7×56 float32, 21\\.4 KB an image, [\\d.]+ MiB in all\\): 0 cache hits, ${IMAGES} misses, ${IMAGES} computed, [\\d.]+ images/s on onnxruntime`,
    ),
  );
  assert.match(
    first.log,
    /Fine-tuning on onnxruntime \(10 tensors of the base and the head, .*one of 2 views of each image per epoch\); learning rate 0\.0001/,
  );
  assert.match(first.stderr, /fine-tune epoch 5:.*lr 1\.0e-4/);
  assert.equal(filesIn(activationRoot(), '.f32').length, IMAGES);
  assert.doesNotMatch(first.log, /read from the cache/);
  const again = await train(['--fine-tune-learning-rate', '1e-4']);
  assert.match(again.log, new RegExp(`Cut activations at block_13_project_BN .*: ${IMAGES} cache hits, 0 misses, 0 computed\\n`));
  assert.match(again.log, /Fine-tuning: 2 epochs, best epoch \d+ \(read from the cache, an earlier run's identical training; /);
  assert.doesNotMatch(again.log, /Fine-tuning on onnxruntime/, 'nothing is trained again');
  assert.deepEqual(again.evaluation.predictions, first.evaluation.predictions, 'the cached result is the same model');
  assert.deepEqual(fineTuneEpochs(again.metrics), fineTuneEpochs(first.metrics), 'and the same epochs in metrics.jsonl');
  // Another learning rate is another training.
  const other = await train(['--fine-tune-learning-rate', '5e-5']);
  assert.match(other.log, /Fine-tuning on onnxruntime .*learning rate 0\.00005/);
});

test('a damaged fine-tuning result is reported, removed and trained again to the same model', async () => {
  const before = await train(['--fine-tune-learning-rate', '1e-4']);
  assert.match(before.log, /read from the cache/);
  const results = filesIn(path.join(cache, 'fine-tune'), '.bin');
  assert.equal(results.length, 2, 'one result per learning rate tried');
  for (const f of results) {
    const bytes = fs.readFileSync(f);
    bytes[bytes.length - 5] ^= 0x01; // a bit of a stored feature
    fs.writeFileSync(f, bytes);
  }
  const rerun = await train(['--fine-tune-learning-rate', '1e-4']);
  assert.match(rerun.log, /\[warn\] fine-tuning result .*\.bin failed its checksum: discarded, the top of the base is trained again/);
  assert.match(rerun.log, /Fine-tuning on onnxruntime/);
  assert.deepEqual(rerun.evaluation.predictions, before.evaluation.predictions);
  const healed = await train(['--fine-tune-learning-rate', '1e-4']);
  assert.match(healed.log, /read from the cache/);
});

test('a damaged activation entry is discarded with a log line and recomputed, as is a damaged activation pack', async () => {
  const root = activationRoot();
  const [pack] = filesIn(path.join(root, 'packs'), '.pack');
  const entry = filesIn(root, '.f32')[5];
  for (const file of [pack, entry]) {
    const bytes = fs.readFileSync(file);
    bytes[Math.floor(bytes.length / 2)] ^= 0x10;
    fs.writeFileSync(file, bytes);
  }
  const rerun = await train();
  assert.match(rerun.log, /\[warn\] feature pack of .*\(activations at block_13_project_BN\) failed its checksum: discarded/);
  assert.match(
    rerun.log,
    new RegExp(
      `\\[warn\\] feature entry ${entry.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} failed its checksum: discarded, vector recomputed`,
    ),
  );
  assert.match(rerun.log, new RegExp(`Cut activations at block_13_project_BN .*: ${IMAGES - 1} cache hits, 1 misses, 1 computed`));
  const healed = await train();
  assert.match(healed.log, /: 24 cache hits, 0 misses, 0 computed/);
});

test('--fine-tune-learning-rate outside (0, 0.1] is refused before anything runs', async () => {
  const runs = tempDir('it-ft-bad-');
  await assert.rejects(
    exec(process.execPath, [bundle, 'train', data, '--out', runs, '--cache', cache, '--fine-tune-learning-rate', '2']),
    (error: { stderr: string }) => /fine-tune-learning-rate/.test(error.stderr),
  );
  assert.deepEqual(fs.readdirSync(runs), []);
});
