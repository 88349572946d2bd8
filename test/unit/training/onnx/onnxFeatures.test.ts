import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { loadLayersModelFromDir as loadModelDir } from '../../../../src/training/models/baseModel';
import { decodeImage } from '../../../../src/training/dataset/imageDecoder';
import { findModel, type ModelEntry } from '../../../../src/training/models/modelRegistry';
import {
  loadOnnxBaseModel,
  onnxGraphHash,
  onnxGraphPath,
  probeOnnxRuntime,
  sealGraph,
  unsealGraph,
} from '../../../../src/training/onnx/onnxFeatures';

const repoRoot = path.resolve(__dirname, '../../../..');
const photosDir = path.join(repoRoot, 'test/fixtures/photos');
const baseDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
const SIZE = 224;

let entry: ModelEntry;
let pixels: Uint8Array;
let n: number;
let cacheDir: string;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function graphFiles(): string[] {
  const dir = path.join(cacheDir, 'onnx');
  return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.graph')) : [];
}

describe('ONNX feature runtime', () => {
  before(async () => {
    await tf.setBackend('wasm');
    const found = findModel('mobilenet_v2_0.35');
    assert.ok(found);
    entry = found;
    const names = fs
      .readdirSync(photosDir)
      .filter((f) => /\.jpe?g$/i.test(f))
      .sort();
    n = names.length;
    pixels = new Uint8Array(n * SIZE * SIZE * 3);
    for (let i = 0; i < n; i++) pixels.set(await decodeImage(path.join(photosDir, names[i]), SIZE, 50e6), i * SIZE * SIZE * 3);
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-features-'));
  });
  after(() => fs.rmSync(cacheDir, { recursive: true, force: true }));

  it('loads onnxruntime-node from the npm package without downloads', async () => {
    const probe = await probeOnnxRuntime();
    assert.ok(probe.ok, probe.ok ? '' : probe.reason);
    assert.match(probe.version, /^\d+\.\d+\.\d+/);
  });

  it('extracts the same features as the TF.js base on real photos, and caches the exported graph in the cache folder', async () => {
    const logs: string[] = [];
    const reasons: string[] = [];
    const base = await loadOnnxBaseModel(await loadModelDir(tf, baseDir), entry, cacheDir, {
      log: (m) => logs.push(m),
      onUnavailable: (r) => reasons.push(r),
    });
    assert.ok(base, reasons.join('; '));
    try {
      assert.equal(base.featureSize, 1280);
      assert.equal(base.inputSize, SIZE);
      assert.match(base.routeNote, /^onnxruntime-node \d+\.\d+\.\d+ \(CPU, \d+ threads?, BatchNorm folded\)$/);
      assert.equal(graphFiles().length, 1);
      assert.match(logs.join('\n'), /exported to/);
      const features = await base.extract(pixels, n);
      assert.equal(features.length, n * 1280);
      const expected = tf.tidy(() => {
        const x = tf.tensor4d(Float32Array.from(pixels), [n, SIZE, SIZE, 3]).mul(entry.preprocessing.scale).add(entry.preprocessing.offset);
        return (base.layersModel.predict(x) as tf.Tensor).dataSync();
      });
      const diff = maxAbsDiff(features, expected);
      assert.ok(diff < 1e-4, `max abs difference ${diff}`);
      // A batch smaller than the buffer, as the last batch of a run is.
      const firstTwo = await base.extract(pixels, 2);
      assert.ok(maxAbsDiff(firstTwo, features.subarray(0, 2 * 1280)) < 1e-5);
      await assert.rejects(base.extract(pixels.subarray(0, 100), 1), /need 150528 bytes/);
    } finally {
      base.dispose();
      base.layersModel.dispose();
    }

    const again: string[] = [];
    const second = await loadOnnxBaseModel(await loadModelDir(tf, baseDir), entry, cacheDir, { log: (m) => again.push(m) });
    assert.ok(second);
    try {
      assert.equal(second.cacheKey, base.cacheKey);
      assert.deepEqual(again, [], 'a cached graph is opened only when an image needs features (a warm rerun never does)');
      const features = await second.extract(pixels, 1);
      assert.equal(features.length, 1280);
      assert.match(again.join('\n'), /reused from the cache/);
    } finally {
      second.dispose();
      // The caller owns the layers model: it still runs after the ONNX base is disposed.
      tf.tidy(() => second.layersModel.predict(tf.zeros([1, SIZE, SIZE, 3])));
      second.layersModel.dispose();
    }
  });

  it('exports the graph again when the cached file fails its checksum (a flipped bit, garbage) or does not load, and says so', async () => {
    const lm = await loadModelDir(tf, baseDir);
    const file = onnxGraphPath(cacheDir, entry, onnxGraphHash(lm, entry));
    const reference = await loadOnnxBaseModel(lm, entry, undefined);
    assert.ok(reference);
    const expected = await reference.extract(pixels, n);
    reference.dispose();
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const good = sealGraph(unsealGraph(fs.readFileSync(file)) ?? fs.readFileSync(file));
    assert.ok(unsealGraph(good), 'the cached graph of the first test passes its check');
    const flipped = Buffer.from(good);
    // A bit of a weight: the graph still loads, and would give wrong features.
    flipped[good.length - 5000] ^= 0x10;
    const garbage = Buffer.from(good.map((_, i) => (i * 31) & 0xff));
    const unloadable = sealGraph(Buffer.from('not a model'));
    for (const [what, bytes, said] of [
      ['a flipped bit', flipped, /failed its checksum: discarded, exported again/],
      ['garbage of the same size', garbage, /failed its checksum: discarded, exported again/],
      ['a sealed graph that does not load', unloadable, /does not load .*exporting it again/s],
    ] as const) {
      fs.writeFileSync(file, bytes);
      const logs: string[] = [];
      const damaged: string[] = [];
      const issues = { writable: true, damaged: (m: string) => damaged.push(m), writeFailed: assert.fail };
      const base = await loadOnnxBaseModel(lm, entry, cacheDir, { log: (m) => logs.push(m), issues });
      assert.ok(base);
      try {
        const features = await base.extract(pixels, n);
        assert.ok(maxAbsDiff(features, expected) < 1e-5, `${what}: the features are those of a fresh export`);
        assert.match([...damaged, ...logs].join('\n'), said, what);
        assert.ok(unsealGraph(fs.readFileSync(file)), `${what}: the graph is cached again, whole`);
      } finally {
        base.dispose();
      }
    }
    lm.dispose();
  });

  it('runs without a cache folder, writing nothing', async () => {
    const lm = await loadModelDir(tf, baseDir);
    const before = graphFiles();
    const base = await loadOnnxBaseModel(lm, entry, undefined);
    assert.ok(base);
    try {
      assert.equal((await base.extract(pixels, 1)).length, 1280);
      assert.deepEqual(graphFiles(), before);
    } finally {
      base.dispose();
      lm.dispose();
    }
  });

  it('refuses a pixel buffer too short for the images asked for, and any extraction once disposed', async () => {
    const lm = await loadModelDir(tf, baseDir);
    const base = await loadOnnxBaseModel(lm, entry, cacheDir);
    assert.ok(base);
    try {
      await assert.rejects(base.extract(pixels.subarray(0, SIZE * SIZE * 3), 2), RangeError);
      assert.equal((await base.extract(pixels, 1)).length, 1280);
      base.dispose();
      await assert.rejects(base.extract(pixels, 1), /was disposed/);
    } finally {
      base.dispose();
      lm.dispose();
    }
  });

  it('keys the cached graph by the weights, so changed weights get a new graph', async () => {
    const lm = await loadModelDir(tf, baseDir);
    try {
      const before = onnxGraphHash(lm, entry);
      const layer = lm.getLayer('Conv_1');
      const weights = layer.getWeights();
      const changed = weights.map((w, i) => (i === 0 ? w.mul(1.01) : w.clone()));
      layer.setWeights(changed);
      tf.dispose(changed);
      assert.notEqual(onnxGraphHash(lm, entry), before);
    } finally {
      lm.dispose();
    }
  });

  it('says why it cannot run a model the exporter does not support, instead of throwing', async () => {
    const input = tf.input({ shape: [SIZE, SIZE, 3] });
    const output = tf.layers.upSampling2d({ size: [2, 2], name: 'grow' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: output });
    const reasons: string[] = [];
    const base = await loadOnnxBaseModel(model, { ...entry, id: 'custom_upsampling', featureLayer: 'grow' }, cacheDir, {
      onUnavailable: (r) => reasons.push(r),
    });
    model.dispose();
    assert.equal(base, undefined);
    assert.match(reasons.join('\n'), /cannot be exported to ONNX: .*UpSampling2D/);
  });
});
