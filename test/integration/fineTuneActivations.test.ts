// Fine-tuning through the CLI bundle (dist/training.js) on a copy of the sample: the activations at
// the cut (of each image and its mirror image) are computed by onnxruntime and cached, a second run computes none, and a damaged
// activation entry (with its pack) is recomputed with a log line; the steps run on onnxruntime.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Evaluation } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson } from '../support/trainingBundle';

const exec = promisify(execFile);
const PER_CLASS = 6;
const IMAGES = 4 * PER_CLASS;

let data: string;
let cache: string;

/** Trains with fine-tuning from block_14_expand (30 layers) through the CLI; the run log and the evaluation. */
async function train(extra: string[] = []): Promise<{ log: string; stderr: string; evaluation: Evaluation }> {
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
  };
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
  const again = await train(['--fine-tune-learning-rate', '1e-4']);
  assert.match(again.log, new RegExp(`Cut activations at block_13_project_BN .*: ${IMAGES} cache hits, 0 misses, 0 computed\\n`));
  assert.deepEqual(again.evaluation.predictions, first.evaluation.predictions, 'cached activations train the same model');
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
