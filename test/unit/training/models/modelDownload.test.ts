import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { ensureModel, formatDownloadProgress, ModelDownloadError } from '../../../../src/training/models/modelDownload';
import type { DownloadProgress } from '../../../../src/training/models/modelDownload';
import { DEFAULT_MODEL_ID, findModel } from '../../../../src/training/models/modelRegistry';
import type { ModelEntry } from '../../../../src/training/models/modelRegistry';
import { loadLayersModelFromFolder, startModelFileServer } from '../../../support/modelFileServer';
import type { ModelFileServer } from '../../../support/modelFileServer';

const repoRoot = path.resolve(__dirname, '../../../..');
const embeddedDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
const sharedV1Dir = path.resolve(repoRoot, '../shared/models/mobilenet_v1_0.25_224_imagenet');
const embedded = findModel(DEFAULT_MODEL_ID)!;
const modelJsonBytes = fs.statSync(path.join(embeddedDir, 'model.json')).size;
const weightsBytes = fs.statSync(path.join(embeddedDir, 'weights.bin')).size;

let server: ModelFileServer;
let tmpRoot: string;
let shortWeightsDir: string;

before(async () => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'model-download-'));
  // A model whose weight file is 4 bytes short of what model.json describes, served consistently.
  shortWeightsDir = path.join(tmpRoot, 'short-weights');
  fs.mkdirSync(shortWeightsDir);
  fs.copyFileSync(path.join(embeddedDir, 'model.json'), path.join(shortWeightsDir, 'model.json'));
  fs.writeFileSync(path.join(shortWeightsDir, 'weights.bin'), fs.readFileSync(path.join(embeddedDir, 'weights.bin')).subarray(4));
  server = await startModelFileServer({ v2: embeddedDir, short: shortWeightsDir, v1: sharedV1Dir });
  await tf.setBackend('wasm');
});

after(async () => {
  await server.close();
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

function freshCache(): string {
  return fs.mkdtempSync(path.join(tmpRoot, 'cache-'));
}

/** The embedded model's files as a hosted model, under `name` as the user sees it. */
function hostedEntry(url: string, over: Partial<ModelEntry> = {}): ModelEntry {
  return {
    ...embedded,
    id: 'mobilenet_v2_0.35_hosted',
    name: 'MobileNetV2 0.35 hosted (224 px, ImageNet)',
    source: { kind: 'url', url },
    ...over,
  };
}

function cacheListing(cacheDir: string): string[] {
  return fs.readdirSync(path.join(cacheDir, 'models'));
}

async function rejection(p: Promise<unknown>): Promise<ModelDownloadError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ModelDownloadError, `expected a ModelDownloadError, got ${String(err)}`);
    return err;
  }
  assert.fail('the download was expected to fail');
}

test('a hosted model downloads with progress, is verified, and loads into tfjs giving 1280 features for a real leaf photo', async () => {
  const cacheDir = freshCache();
  const events: DownloadProgress[] = [];
  // How long the download takes is a speed target of `npm run bench`, not a test.
  const dir = await ensureModel(hostedEntry(server.url('v2')), cacheDir, { onProgress: (p) => events.push(p), timeoutMs: 5000 });

  assert.equal(dir, path.join(cacheDir, 'models', 'mobilenet_v2_0.35_hosted'));
  assert.deepEqual(cacheListing(cacheDir), ['mobilenet_v2_0.35_hosted']);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['model.json', 'weights.bin']);
  const sha = createHash('sha256')
    .update(fs.readFileSync(path.join(dir, 'weights.bin')))
    .digest('hex');
  assert.equal(sha, embedded.files![0].sha256);

  assert.ok(events.length >= 2, `${events.length} progress events`);
  assert.equal(events[0].file, 'model.json');
  assert.equal(events[0].percent, undefined, 'no percent before model.json tells the total');
  const last = events[events.length - 1];
  assert.equal(last.bytes, modelJsonBytes + weightsBytes);
  assert.equal(last.total, modelJsonBytes + weightsBytes);
  assert.equal(last.percent, 100);
  const withPercent = events.filter((e) => e.percent !== undefined).map((e) => e.percent!);
  assert.deepEqual(
    withPercent,
    [...withPercent].sort((a, b) => a - b),
    'percent never goes back',
  );

  const model = await loadLayersModelFromFolder(tf, dir);
  try {
    const pixels = await sharp(path.join(repoRoot, 'samples/leaves/healthy/healthy_01.jpg'))
      .resize(224, 224, { fit: 'fill' })
      .removeAlpha()
      .raw()
      .toBuffer();
    const features = tf.tidy(() => {
      const x = tf
        .tensor4d(new Float32Array(pixels), [1, 224, 224, 3])
        .mul(embedded.preprocessing.scale)
        .add(embedded.preprocessing.offset);
      return model.predict(x) as tf.Tensor;
    });
    assert.deepEqual(features.shape, [1, 1280]);
    const values = await features.data();
    features.dispose();
    assert.ok(values.every(Number.isFinite));
    assert.ok(
      values.some((v) => v > 0.01),
      'real weights give non-trivial activations',
    );
  } finally {
    model.dispose();
  }
});

test('a model split into many shards (real MobileNetV1 0.25, 55 files) downloads whole and gives 256 features at conv_pw_13_relu', async () => {
  const cacheDir = freshCache();
  const entry = findModel('mobilenet_v1_0.25')!;
  const modelJson = JSON.parse(fs.readFileSync(path.join(sharedV1Dir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
  const shards = modelJson.weightsManifest.flatMap((g) => g.paths);
  assert.equal(shards.length, 55);
  const files: string[] = [];
  const dir = await ensureModel({ ...entry, source: { kind: 'url', url: server.url('v1') } }, cacheDir, {
    onProgress: (p) => files.push(p.file),
  });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['model.json', ...shards].sort());
  assert.deepEqual([...new Set(files)], ['model.json', ...shards]);
  const model = await loadLayersModelFromFolder(tf, dir);
  const trunk = tf.model({ inputs: model.inputs, outputs: model.getLayer(entry.featureLayer).output as tf.SymbolicTensor });
  try {
    const out = tf.tidy(() => trunk.predict(tf.zeros([1, 224, 224, 3])) as tf.Tensor);
    assert.deepEqual(out.shape, [1, 7, 7, entry.featureSize]);
    out.dispose();
  } finally {
    model.dispose();
  }
});

test('a finished download is reused without touching the network', async () => {
  const cacheDir = freshCache();
  const entry = hostedEntry(server.url('v2'));
  const first = await ensureModel(entry, cacheDir);
  const offlineFetch: typeof fetch = async () => {
    throw new Error('network used');
  };
  const second = await ensureModel(entry, cacheDir, { fetchImpl: offlineFetch });
  assert.equal(second, first);
});

test('two concurrent requests for the same model share one download', async () => {
  const cacheDir = freshCache();
  const entry = hostedEntry(server.url('v2'));
  const before = server.requests.length;
  const [a, b] = await Promise.all([ensureModel(entry, cacheDir), ensureModel(entry, cacheDir)]);
  assert.equal(a, b);
  assert.deepEqual(server.requests.slice(before), ['/v2/model.json', '/v2/weights.bin']);
});

test('a 404 for a weight shard names the file, suggests the embedded model, and leaves no folder behind', async () => {
  const cacheDir = freshCache();
  const v100 = findModel('mobilenet_v2_1.00')!;
  server.setFault('v2', 'weights.bin', { kind: 'status', status: 404 });
  try {
    const err = await rejection(ensureModel({ ...v100, source: { kind: 'url', url: server.url('v2') } }, cacheDir));
    assert.equal(err.reason, 'http');
    assert.equal(err.kind, 'model-download', 'the host offers Retry for a failed download');
    assert.match(
      err.message,
      /^Could not download MobileNetV2 1\.00: the server answered 404 Not Found for http:\/\/127\.0\.0\.1:\d+\/v2\/weights\.bin\. The run can continue with the embedded MobileNetV2 0\.35\.$/,
    );
    assert.deepEqual(cacheListing(cacheDir), []);
  } finally {
    server.setFault('v2', 'weights.bin', undefined);
  }
});

test('a server error for model.json is reported with its status', async () => {
  const cacheDir = freshCache();
  server.setFault('v2', 'model.json', { kind: 'status', status: 500 });
  try {
    const err = await rejection(ensureModel(hostedEntry(server.url('v2')), cacheDir));
    assert.equal(err.reason, 'http');
    assert.match(err.message, /answered 500 Internal Server Error for .*\/v2\/model\.json/);
    assert.deepEqual(cacheListing(cacheDir), []);
  } finally {
    server.setFault('v2', 'model.json', undefined);
  }
});

test('a body cut short is detected and nothing half-written stays in the cache', async () => {
  const cacheDir = freshCache();
  server.setFault('v2', 'weights.bin', { kind: 'truncate' });
  try {
    const err = await rejection(ensureModel(hostedEntry(server.url('v2')), cacheDir, { timeoutMs: 5000 }));
    assert.equal(err.reason, 'truncated');
    assert.match(err.message, /Could not download MobileNetV2 0\.35 hosted: .*\d+ of 1640832 bytes of .*weights\.bin/);
    assert.deepEqual(cacheListing(cacheDir), []);
  } finally {
    server.setFault('v2', 'weights.bin', undefined);
  }
});

test('a weight file with one changed byte fails its pinned sha256', async () => {
  const cacheDir = freshCache();
  server.setFault('v2', 'weights.bin', { kind: 'corrupt' });
  try {
    const err = await rejection(ensureModel(hostedEntry(server.url('v2')), cacheDir));
    assert.equal(err.reason, 'checksum');
    assert.match(err.message, /weights\.bin does not match its known checksum \(sha256 [0-9a-f]{64}, expected e159deb3/);
    assert.deepEqual(cacheListing(cacheDir), []);
  } finally {
    server.setFault('v2', 'weights.bin', undefined);
  }
});

test('weight files that do not add up to the manifest sizes are rejected even without a pinned checksum', async () => {
  const cacheDir = freshCache();
  const err = await rejection(ensureModel(hostedEntry(server.url('short'), { files: undefined }), cacheDir));
  assert.equal(err.reason, 'size');
  assert.match(err.message, /hold 1640828 bytes but model\.json describes 1640832/);
  assert.deepEqual(cacheListing(cacheDir), []);
});

test('a server that stops answering mid-body times out with a clear message', async () => {
  const cacheDir = freshCache();
  server.setFault('v2', 'weights.bin', { kind: 'stall' });
  const started = Date.now();
  try {
    const err = await rejection(ensureModel(hostedEntry(server.url('v2')), cacheDir, { timeoutMs: 300 }));
    const elapsed = Date.now() - started;
    assert.equal(err.reason, 'timeout');
    assert.match(err.message, /the server stopped answering for 300 ms while sending .*weights\.bin/);
    assert.ok(
      elapsed < 3000,
      `gave up after ${elapsed} ms: the 300 ms stall timeout must end the download instead of waiting on a silent server`,
    );
    assert.deepEqual(cacheListing(cacheDir), []);
  } finally {
    server.setFault('v2', 'weights.bin', undefined);
  }
});

test('cancelling in the middle of a shard stops the download and removes the partial folder', async () => {
  const cacheDir = freshCache();
  server.setFault('v2', 'weights.bin', { kind: 'slow', chunkBytes: 16384, delayMs: 20 });
  const controller = new AbortController();
  const seen: DownloadProgress[] = [];
  const started = Date.now();
  try {
    const err = await rejection(
      ensureModel(hostedEntry(server.url('v2')), cacheDir, {
        signal: controller.signal,
        onProgress: (p) => {
          seen.push(p);
          if (p.file === 'weights.bin') controller.abort();
        },
      }),
    );
    const elapsed = Date.now() - started;
    assert.equal(err.reason, 'cancelled');
    assert.match(err.message, /^Download of MobileNetV2 0\.35 hosted was cancelled; nothing was kept\./);
    const last = seen[seen.length - 1];
    assert.ok(last.bytes < modelJsonBytes + weightsBytes, 'stopped before the end');
    assert.ok(
      elapsed < 3000,
      `stopped after ${elapsed} ms: cancel must end the download instead of reading the whole slow body (about 2 s)`,
    );
    assert.deepEqual(cacheListing(cacheDir), []);
  } finally {
    server.setFault('v2', 'weights.bin', undefined);
  }
});

test('cancelling at the very first progress event also leaves nothing behind', async () => {
  const cacheDir = freshCache();
  const controller = new AbortController();
  let events = 0;
  const err = await rejection(
    ensureModel(hostedEntry(server.url('v2')), cacheDir, {
      signal: controller.signal,
      onProgress: () => {
        events++;
        controller.abort();
      },
    }),
  );
  assert.equal(err.reason, 'cancelled');
  assert.equal(err.kind, 'cancelled', 'a cancelled download is a cancel, not a failure');
  assert.equal(events, 1);
  assert.deepEqual(cacheListing(cacheDir), []);
});

test('an unreachable host is reported as offline', async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((r) => closed.close(() => r()));
  const cacheDir = freshCache();
  const err = await rejection(ensureModel(hostedEntry(`http://127.0.0.1:${port}/v2/model.json`), cacheDir));
  assert.equal(err.reason, 'offline');
  assert.match(err.message, /127\.0\.0\.1:\d+ could not be reached \(ECONNREFUSED\); this machine seems to be offline/);
  assert.deepEqual(cacheListing(cacheDir), []);
});

test('a host name that does not resolve is reported as offline', async () => {
  const cacheDir = freshCache();
  // `.invalid` never resolves (RFC 6761), so this needs no network.
  const err = await rejection(ensureModel(hostedEntry('http://image-trainer.invalid/v2/model.json'), cacheDir, { timeoutMs: 10_000 }));
  assert.equal(err.reason, 'offline');
  assert.match(err.message, /image-trainer\.invalid could not be found \((ENOTFOUND|EAI_AGAIN)\)/);
  assert.deepEqual(cacheListing(cacheDir), []);
});

test('a stale partial folder of a dead process is cleaned on the next call, a live one is left alone', async () => {
  const cacheDir = freshCache();
  const models = path.join(cacheDir, 'models');
  const dead = path.join(models, 'mobilenet_v2_0.35_hosted.partial-999999999-dead');
  const live = path.join(models, `mobilenet_v2_0.35_hosted.partial-${process.ppid}-live`);
  for (const d of [dead, live]) {
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, 'weights.bin'), 'half');
  }
  await ensureModel(hostedEntry(server.url('v2')), cacheDir);
  assert.deepEqual(cacheListing(cacheDir).sort(), ['mobilenet_v2_0.35_hosted', path.basename(live)]);
});

test('embedded and folder entries resolve to their folders without downloading', async () => {
  const cacheDir = freshCache();
  assert.equal(await ensureModel(embedded, cacheDir, { extensionRoot: repoRoot }), embeddedDir);
  const err = await rejection(ensureModel(embedded, cacheDir));
  assert.equal(err.reason, 'invalid');
  assert.equal(await ensureModel({ ...embedded, source: { kind: 'folder', path: '/some/where' } }, cacheDir), '/some/where');
});

test('the terminal progress line shows a bar, percent, megabytes and the file', () => {
  assert.equal(
    formatDownloadProgress({ bytes: 7_000_000, total: 14_000_000, percent: 50, file: 'group1-shard2of4.bin' }, 10),
    '█████░░░░░  50%  7.0/14.0 MB  group1-shard2of4.bin',
  );
  assert.equal(formatDownloadProgress({ bytes: 90_725, file: 'model.json' }), '0.1 MB  model.json');
});
