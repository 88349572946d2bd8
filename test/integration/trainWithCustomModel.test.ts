// A user's own base model folder (model.json + weights + image-trainer-model.json) trained end to
// end through the built bundle: by the CLI's --model, and by the child process the extension
// forks with the `imageTrainer.model` setting in `options.model`. The folder is read only once the
// backend runs, which is what reading it needs.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RunConfig, RunStatus } from '../../src/shared/runFolder';
import { CUSTOM_MODEL_DESCRIPTOR_FILE } from '../../src/training/models/customModel';
import { MODEL_REGISTRY } from '../../src/training/models/modelRegistry';
import { saveLayersModelToFolder } from '../support/modelFileServer';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson, repo, startChild } from '../support/trainingBundle';

/** Runs the CLI to its end: exit code, stdout and stderr (a failing run does not throw here). */
function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { cwd, timeout: 180_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** A copy of the embedded MobileNetV2 0.35 with the descriptor a user would write for it. */
function embeddedModelCopy(dest: string): string {
  const source = MODEL_REGISTRY[0].source;
  assert.equal(source.kind, 'embedded');
  fs.cpSync(path.join(repo, source.kind === 'embedded' ? source.folder : ''), dest, { recursive: true });
  fs.writeFileSync(
    path.join(dest, CUSTOM_MODEL_DESCRIPTOR_FILE),
    JSON.stringify({ name: 'My MobileNet copy', inputSize: 224, preprocessing: 'mobilenet', featureLayer: 'global_average_pooling2d' }),
  );
  return dest;
}

/** A tiny Keras Sequential network (no InputLayer among its layers) saved by tfjs, with its descriptor. */
async function sequentialModel(dest: string): Promise<string> {
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [64, 64, 3], filters: 8, kernelSize: 3, strides: 2, activation: 'relu', name: 'c1' }),
      tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', name: 'c2' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
    ],
  });
  await saveLayersModelToFolder(tf, model, dest);
  model.dispose();
  fs.writeFileSync(
    path.join(dest, CUSTOM_MODEL_DESCRIPTOR_FILE),
    JSON.stringify({ name: 'Tiny Sequential', inputSize: 64, preprocessing: '0-1', featureLayer: 'gap' }),
  );
  return dest;
}

/** Trains `model` on a small copy of the leaves through the CLI and returns the run folder. */
async function trainThroughCli(work: string, model: string): Promise<{ runDir: string }> {
  const data = path.join(work, 'leaves');
  copySample(data, 4, ['healthy', 'cedar_rust']);
  const runs = path.join(work, 'runs');
  const args = ['train', data, '--model', model, '--epochs', '2', '--out', runs, '--cache', path.join(work, 'cache'), '--quiet'];
  const out = await cli(args, work);
  assert.equal(out.code, 0, `the CLI failed:\n${out.stderr}`);
  const runDir = onlyRun(runs);
  assert.equal(readJson<RunStatus>(path.join(runDir, 'status.json')).state, 'finished');
  assert.ok(fs.existsSync(path.join(runDir, 'model/model.json')));
  assert.match(out.stdout, /^Validation accuracy: /m);
  return { runDir };
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
});

test('the CLI trains with --model set to a folder holding a copy of the embedded model and its descriptor', async () => {
  const work = tempDir('it-custom-cli-');
  const model = embeddedModelCopy(path.join(work, 'my-model'));
  const { runDir } = await trainThroughCli(work, model);
  const config = readJson<RunConfig>(path.join(runDir, 'config.json'));
  assert.equal(config.model.name, 'My MobileNet copy');
  assert.match(config.model.id, /^custom_my_mobilenet_copy_[0-9a-f]{12}$/);
  assert.equal(config.model.featureSize, 1280);
  assert.equal(config.options.model, model);
});

test('the CLI trains with a Keras Sequential model of the user, whose input layer is not listed among its layers', async () => {
  const work = tempDir('it-custom-seq-');
  const model = await sequentialModel(path.join(work, 'tiny-seq'));
  const { runDir } = await trainThroughCli(work, model);
  const config = readJson<RunConfig>(path.join(runDir, 'config.json'));
  assert.equal(config.model.name, 'Tiny Sequential');
  assert.equal(config.model.inputSize, 64);
  assert.equal(config.model.featureSize, 16);
});

test('the child process the extension forks trains with options.model set to the folder, as the imageTrainer.model setting gives it', async () => {
  const work = tempDir('it-custom-child-');
  const model = embeddedModelCopy(path.join(work, 'my-model'));
  const data = path.join(work, 'leaves');
  copySample(data, 4, ['healthy', 'cedar_rust']);
  const run = startChild(data, work, { model, epochs: 2 });
  try {
    const end = await run.next((n) => n.type === 'finished' || n.type === 'failed', 180_000);
    assert.equal(end.type, 'finished', JSON.stringify(end));
    const started = run.messages.find((n) => n.type === 'started');
    assert.ok(started && started.type === 'started');
    assert.equal(started.model.name, 'My MobileNet copy');
    assert.equal(started.model.featureSize, 1280);
  } finally {
    run.child.kill();
  }
});
