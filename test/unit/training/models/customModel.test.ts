import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { CUSTOM_MODEL_DESCRIPTOR_FILE, CustomModelError, readCustomModel } from '../../../../src/training/models/customModel';
import type { CustomModelDescriptor } from '../../../../src/training/models/customModel';
import { ensureModel } from '../../../../src/training/models/modelDownload';
import { loadLayersModelFromFolder, saveLayersModelToFolder, startModelFileServer } from '../../../support/modelFileServer';

const repoRoot = path.resolve(__dirname, '../../../..');
let tmpRoot: string;
let modelDir: string;

const descriptor: CustomModelDescriptor = {
  name: 'Tiny Leaf Net',
  inputSize: 96,
  preprocessing: '0-1',
  featureLayer: 'features',
  fineTuneCutPoints: ['top_conv'],
};

/** A deliberately different network from MobileNet: three plain convolutions, 96 px input, 24 features. */
function buildTinyNet(): tf.LayersModel {
  const input = tf.input({ shape: [96, 96, 3], name: 'pixels' });
  let x = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, activation: 'relu', name: 'stem_conv' })
    .apply(input) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 16, kernelSize: 3, strides: 2, activation: 'relu', name: 'mid_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.conv2d({ filters: 24, kernelSize: 3, strides: 2, activation: 'relu', name: 'top_conv' }).apply(x) as tf.SymbolicTensor;
  x = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: x, name: 'tiny_leaf_net' });
}

function writeDescriptor(dir: string, d: unknown): void {
  fs.writeFileSync(path.join(dir, CUSTOM_MODEL_DESCRIPTOR_FILE), JSON.stringify(d));
}

/** A copy of the saved model folder to break in one way. */
function copyModel(name: string): string {
  const dir = path.join(tmpRoot, name);
  fs.cpSync(modelDir, dir, { recursive: true });
  return dir;
}

async function problemsOf(folder: string): Promise<string> {
  try {
    await readCustomModel(folder);
  } catch (err) {
    assert.ok(err instanceof CustomModelError, `expected a CustomModelError, got ${String(err)}`);
    assert.equal(err.kind, 'model');
    return err.message;
  }
  assert.fail('the model folder was expected to be rejected');
}

async function leafPixels(size: number): Promise<Float32Array> {
  const raw = await sharp(path.join(repoRoot, 'samples/leaves/scab/scab_01.jpg'))
    .resize(size, size, { fit: 'fill' })
    .removeAlpha()
    .raw()
    .toBuffer();
  return new Float32Array(raw);
}

async function features(
  model: tf.LayersModel,
  pixels: Float32Array,
  size: number,
  scale: number,
  offset: number,
): Promise<{ shape: number[]; values: Float32Array }> {
  const out = tf.tidy(() => model.predict(tf.tensor4d(pixels, [1, size, size, 3]).mul(scale).add(offset)) as tf.Tensor);
  const values = (await out.data()) as Float32Array;
  const shape = out.shape;
  out.dispose();
  return { shape, values };
}

before(async () => {
  await tf.setBackend('wasm');
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'custom-model-'));
  modelDir = path.join(tmpRoot, 'tiny-leaf-net');
  const model = buildTinyNet();
  await saveLayersModelToFolder(tf, model, modelDir);
  model.dispose();
  writeDescriptor(modelDir, descriptor);
});

after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

test('a saved LayersModel with a descriptor reads back as a registry entry with its own input size and feature size', async () => {
  const entry = await readCustomModel(modelDir);
  assert.match(entry.id, /^custom_tiny_leaf_net_[0-9a-f]{12}$/);
  assert.equal(entry.name, 'Tiny Leaf Net');
  assert.equal(entry.family, 'custom');
  assert.deepEqual(entry.source, { kind: 'folder', path: modelDir });
  assert.equal(entry.inputSize, 96);
  assert.deepEqual(entry.preprocessing, { scale: 1 / 255, offset: 0 });
  assert.equal(entry.featureLayer, 'features');
  assert.equal(entry.featureSize, 24);
  assert.deepEqual(entry.fineTuneCutPoints, ['top_conv']);
  const weightsBytes = fs.statSync(path.join(modelDir, 'weights.bin')).size;
  // 3x3 convs 3→8, 8→16, 16→24 with biases, float32.
  assert.equal(weightsBytes, 4 * (3 * 3 * 3 * 8 + 8 + 3 * 3 * 8 * 16 + 16 + 3 * 3 * 16 * 24 + 24));
  assert.equal(entry.files?.length, 1);
  assert.equal(entry.files?.[0].path, 'weights.bin');
  assert.equal(entry.files?.[0].bytes, weightsBytes);
  assert.match(entry.files?.[0].sha256 ?? '', /^[0-9a-f]{64}$/);
});

test('the id changes when the weights change, so cached features of the old weights are not reused', async () => {
  const dir = copyModel('retrained');
  const bytes = fs.readFileSync(path.join(dir, 'weights.bin'));
  bytes[0] ^= 0x01;
  fs.writeFileSync(path.join(dir, 'weights.bin'), bytes);
  const [a, b] = await Promise.all([readCustomModel(modelDir), readCustomModel(dir)]);
  assert.notEqual(a.id, b.id);
});

test('the named preprocessings and an explicit scale and offset are understood', async () => {
  const dir = copyModel('preprocessing');
  writeDescriptor(dir, { ...descriptor, preprocessing: 'mobilenet' });
  assert.deepEqual((await readCustomModel(dir)).preprocessing, { scale: 1 / 127.5, offset: -1 });
  writeDescriptor(dir, { ...descriptor, preprocessing: { scale: 0.5, offset: -3 } });
  assert.deepEqual((await readCustomModel(dir)).preprocessing, { scale: 0.5, offset: -3 });
});

test('a folder without model.json or without the descriptor says which file is missing', async () => {
  const empty = path.join(tmpRoot, 'empty');
  fs.mkdirSync(empty);
  const both = await problemsOf(empty);
  assert.match(both, /There is no model\.json in the folder/);
  assert.match(both, /There is no image-trainer-model\.json in the folder/);

  const noDescriptor = copyModel('no-descriptor');
  fs.rmSync(path.join(noDescriptor, CUSTOM_MODEL_DESCRIPTOR_FILE));
  const message = await problemsOf(noDescriptor);
  assert.match(message, /There is no image-trainer-model\.json/);
  assert.doesNotMatch(message, /model\.json in the folder \(a TF\.js/);
});

test('a bad input size, unknown preprocessing and a size that differs from the model are each explained', async () => {
  const dir = copyModel('bad-fields');
  writeDescriptor(dir, { ...descriptor, inputSize: '96', preprocessing: 'imagenet' });
  const message = await problemsOf(dir);
  assert.match(message, /"inputSize" must be a whole number of pixels between 16 and 2048 \(got "96"\)/);
  assert.match(
    message,
    /"preprocessing" must be "mobilenet" \(\[-1, 1\]\), "0-1", or \{"scale": number, "offset": number\} \(got "imagenet"\)/,
  );

  writeDescriptor(dir, { ...descriptor, inputSize: 224 });
  assert.match(await problemsOf(dir), /The descriptor says inputSize 224, but the model takes 96×96 images\./);
});

test('a feature layer or cut point that is not in the topology lists the close layer names', async () => {
  const dir = copyModel('bad-layer');
  writeDescriptor(dir, { ...descriptor, featureLayer: 'feature', fineTuneCutPoints: ['top_conv2d'] });
  const message = await problemsOf(dir);
  assert.match(message, /The feature layer "feature" is not in the model; close names: features\./);
  assert.match(message, /The fine-tuning cut point "top_conv2d" is not in the model; close names: top_conv/);

  writeDescriptor(dir, { ...descriptor, featureLayer: 'global_average_pooling2d' });
  assert.match(
    await problemsOf(dir),
    /"global_average_pooling2d" is not in the model; its last layers are: pixels, stem_conv, mid_conv, top_conv, features\./,
  );
});

test('a missing weight file or a weight file of the wrong size is named', async () => {
  const missing = copyModel('missing-weights');
  fs.rmSync(path.join(missing, 'weights.bin'));
  assert.match(await problemsOf(missing), /The weight file weights\.bin named in model\.json is missing\./);

  const short = copyModel('short-weights');
  fs.truncateSync(path.join(short, 'weights.bin'), 100);
  assert.match(await problemsOf(short), /The weight files hold 100 bytes but model\.json describes 19488/);
});

test('a Sequential model is read too, with its layer names', async () => {
  const seq = tf.sequential({
    name: 'tiny_seq',
    layers: [
      tf.layers.conv2d({ inputShape: [64, 64, 3], filters: 4, kernelSize: 3, name: 'c1' }),
      tf.layers.globalMaxPooling2d({ name: 'pool' }),
    ],
  });
  const dir = path.join(tmpRoot, 'sequential');
  await saveLayersModelToFolder(tf, seq, dir);
  seq.dispose();
  writeDescriptor(dir, { name: 'Seq', inputSize: 64, preprocessing: 'mobilenet', featureLayer: 'pool' });
  const entry = await readCustomModel(dir);
  assert.equal(entry.featureSize, 4);
  assert.deepEqual(entry.fineTuneCutPoints, []);
});

test('the downloader fetches a second, different model from a URL and it gives the same features as the original folder', async () => {
  const local = await readCustomModel(modelDir);
  const server = await startModelFileServer({ tiny: modelDir });
  const cacheDir = fs.mkdtempSync(path.join(tmpRoot, 'cache-'));
  try {
    const hosted = { ...local, source: { kind: 'url' as const, url: server.url('tiny') } };
    const dir = await ensureModel(hosted, cacheDir, { timeoutMs: 5000 });
    assert.equal(dir, path.join(cacheDir, 'models', local.id));
    assert.deepEqual(server.requests, ['/tiny/model.json', '/tiny/weights.bin']);

    const pixels = await leafPixels(96);
    const [downloaded, original] = await Promise.all([loadLayersModelFromFolder(tf, dir), loadLayersModelFromFolder(tf, modelDir)]);
    try {
      const a = await features(downloaded, pixels, 96, local.preprocessing.scale, local.preprocessing.offset);
      const b = await features(original, pixels, 96, local.preprocessing.scale, local.preprocessing.offset);
      assert.deepEqual(a.shape, [1, 24]);
      assert.deepEqual(Array.from(a.values), Array.from(b.values));
      assert.ok(
        a.values.some((v) => v > 0),
        'the features are not all zero',
      );
    } finally {
      downloaded.dispose();
      original.dispose();
    }
  } finally {
    await server.close();
  }
});
