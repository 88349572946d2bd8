// Training end to end with base models fetched from a local HTTP server (issue: base models and
// backends): the embedded MobileNetV2 files served as if hosted, and a deliberately different
// small network built and saved by the test.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { TrainingNotification } from '../../src/shared/protocol/training';
import type { RunConfig } from '../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS } from '../../src/shared/types';
import { findModel, type ModelEntry } from '../../src/training/models/modelRegistry';
import { initBackend } from '../../src/training/backend/backend';
import { predictImages } from '../../src/training/models/predict';
import { runTraining } from '../../src/training/run/runTraining';
import { saveLayersModelToFolder, startModelFileServer, type ModelFileServer } from '../support/modelFileServer';

const repo = path.resolve(__dirname, '../..');
const sample = path.join(repo, 'samples/leaves');
let work: string;
let data: string;
let server: ModelFileServer;

/** A network unlike MobileNet: plain convolutions on 96 px input, 24 features. */
function buildTinyNet(): tf.LayersModel {
  const input = tf.input({ shape: [96, 96, 3] });
  let x = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, activation: 'relu', name: 'stem_conv' })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 24, kernelSize: 3, strides: 2, activation: 'relu', name: 'top_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x });
}

before(async () => {
  await initBackend({ preference: 'wasm' });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'it-download-train-'));
  data = path.join(work, 'leaves');
  for (const c of ['healthy', 'cedar_rust']) {
    fs.mkdirSync(path.join(data, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(sample, c)).sort().slice(0, 10))
      fs.copyFileSync(path.join(sample, c, f), path.join(data, c, f));
  }
  const tinyDir = path.join(work, 'tiny-model');
  await saveLayersModelToFolder(tf, buildTinyNet(), tinyDir);
  server = await startModelFileServer({ mnv2: path.join(repo, 'media/models/mobilenet_v2_0.35_224_no_top'), tiny: tinyDir });
});

after(async () => {
  await server?.close();
});

async function trainWith(entry: ModelEntry, name: string): Promise<{ runDir: string; messages: TrainingNotification[] }> {
  const messages: TrainingNotification[] = [];
  const summary = await runTraining(
    {
      datasetRoot: data,
      runsDir: path.join(work, `runs-${name}`),
      cacheDir: path.join(work, 'cache'),
      options: { ...DEFAULT_TRAIN_OPTIONS, epochs: 4, backend: 'wasm' },
      extensionRoot: repo,
      modelEntry: entry,
    },
    (n) => messages.push(n),
    new AbortController().signal,
  );
  assert.equal(summary.cancelled, false);
  return { runDir: summary.runDir, messages };
}

async function predictedLabels(runDir: string): Promise<string[]> {
  const files = fs.readdirSync(path.join(data, 'healthy')).map((f) => path.join(data, 'healthy', f));
  const labels: string[] = [];
  for await (const p of predictImages(tf, runDir, files)) {
    assert.ok(!('error' in p), JSON.stringify(p));
    if (!('error' in p)) labels.push(p.label);
  }
  return labels;
}

test('MobileNetV2 served as if hosted is downloaded into the cache, trains, and its classifier predicts', async () => {
  const entry: ModelEntry = {
    ...findModel('mobilenet_v2_0.35')!,
    id: 'served_mobilenet_v2',
    source: { kind: 'url', url: server.url('mnv2', 'model.json') },
  };
  const { runDir, messages } = await trainWith(entry, 'mnv2');
  assert.ok(fs.existsSync(path.join(work, 'cache/models/served_mobilenet_v2/model.json')));
  assert.ok(
    messages.some((m) => m.type === 'progress' && m.progress.stage === 'download'),
    'no download progress',
  );
  assert.ok(server.requests.some((r) => r.endsWith('/mnv2/weights.bin')));
  const config = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')) as RunConfig;
  assert.equal(config.model.id, 'served_mobilenet_v2');
  const labels = await predictedLabels(runDir);
  assert.equal(labels.length, 10);
  assert.ok(labels.filter((l) => l === 'healthy').length >= 8, labels.join(','));
});

test('a different network (96 px, 24 features) served from the same server trains end to end', async () => {
  const entry: ModelEntry = {
    id: 'served_tiny',
    name: 'Tiny test net',
    family: 'custom',
    source: { kind: 'url', url: server.url('tiny', 'model.json') },
    inputSize: 96,
    preprocessing: { scale: 1 / 255, offset: 0 },
    featureLayer: 'features',
    featureSize: 24,
    fineTuneCutPoints: [],
  };
  const { runDir, messages } = await trainWith(entry, 'tiny');
  const started = messages.find((m) => m.type === 'started');
  assert.deepEqual(started?.type === 'started' && started.model, {
    id: 'served_tiny',
    name: 'Tiny test net',
    inputSize: 96,
    featureSize: 24,
  });
  const meta = JSON.parse(fs.readFileSync(path.join(runDir, 'model/metadata.json'), 'utf8')) as { inputSize: number };
  assert.equal(meta.inputSize, 96);
  assert.equal((await predictedLabels(runDir)).length, 10);
});

test('a hosted model that answers 404 falls back to the embedded model and says why', async () => {
  const entry: ModelEntry = {
    ...findModel('mobilenet_v2_0.35')!,
    id: 'missing_model',
    name: 'Missing model',
    source: { kind: 'url', url: server.url('nothing', 'model.json') },
  };
  const { runDir, messages } = await trainWith(entry, 'missing');
  const warning = messages.find((m) => m.type === 'log' && m.level === 'warn');
  assert.match(warning?.type === 'log' ? warning.message : '', /404.*Continuing with the embedded MobileNetV2 0\.35/s);
  assert.equal((JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8')) as RunConfig).model.id, 'mobilenet_v2_0.35');
  assert.deepEqual(
    fs.readdirSync(path.join(work, 'cache/models')).filter((d) => d.includes('missing')),
    [],
  );
});

test("a user's own model folder with its descriptor is used when the model option names that folder", async () => {
  const own = path.join(work, 'own-model');
  await saveLayersModelToFolder(tf, buildTinyNet(), own);
  fs.writeFileSync(
    path.join(own, 'image-trainer-model.json'),
    JSON.stringify({ name: 'My net', inputSize: 96, preprocessing: '0-1', featureLayer: 'features' }),
  );
  const summary = await runTraining(
    {
      datasetRoot: data,
      runsDir: path.join(work, 'runs-own'),
      cacheDir: path.join(work, 'cache'),
      options: { ...DEFAULT_TRAIN_OPTIONS, epochs: 2, backend: 'wasm', model: own },
      extensionRoot: repo,
    },
    () => undefined,
    new AbortController().signal,
  );
  const config = JSON.parse(fs.readFileSync(path.join(summary.runDir, 'config.json'), 'utf8')) as RunConfig;
  assert.equal(config.model.name, 'My net');
  assert.equal(config.model.featureSize, 24);
  await assert.rejects(
    runTraining(
      {
        datasetRoot: data,
        runsDir: path.join(work, 'runs-bad'),
        cacheDir: path.join(work, 'cache'),
        options: { ...DEFAULT_TRAIN_OPTIONS, model: 'no_such_model' },
      },
      () => undefined,
      new AbortController().signal,
    ),
    /Unknown base model "no_such_model"; known: mobilenet_v2_0\.35/,
  );
});

test('cancelling a run while its base model downloads stops the download and leaves nothing in the model cache', async () => {
  server.setFault('mnv2', 'weights.bin', { kind: 'slow', chunkBytes: 16_384, delayMs: 50 });
  try {
    const entry: ModelEntry = {
      ...findModel('mobilenet_v2_0.35')!,
      id: 'slow_model',
      name: 'Slow model',
      source: { kind: 'url', url: server.url('mnv2', 'model.json') },
    };
    const cancel = new AbortController();
    const summary = await runTraining(
      {
        datasetRoot: data,
        runsDir: path.join(work, 'runs-slow'),
        cacheDir: path.join(work, 'cache-slow'),
        options: { ...DEFAULT_TRAIN_OPTIONS, backend: 'wasm' },
        extensionRoot: repo,
        modelEntry: entry,
      },
      (n) => {
        if (n.type === 'progress' && n.progress.stage === 'download' && n.progress.done > 0) cancel.abort();
      },
      cancel.signal,
    );
    assert.equal(summary.cancelled, true);
    const status = JSON.parse(fs.readFileSync(path.join(summary.runDir, 'status.json'), 'utf8')) as {
      state: string;
      hasCheckpoint: boolean;
    };
    assert.equal(status.state, 'cancelled');
    assert.equal(status.hasCheckpoint, false);
    assert.deepEqual(fs.existsSync(path.join(work, 'cache-slow/models')) ? fs.readdirSync(path.join(work, 'cache-slow/models')) : [], []);
  } finally {
    server.setFault('mnv2', 'weights.bin', undefined);
  }
});
