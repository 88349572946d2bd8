import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import { buildClassifier, classifierMetadata, saveModelDir } from '../../../../src/training/models/classifierModel';
import { buildHead } from '../../../../src/training/fit/head';
import { decodeImage } from '../../../../src/training/dataset/imageDecoder';
import { findModel } from '../../../../src/training/models/modelRegistry';
import { exportClassifierToOnnx, exportToOnnx } from '../../../../src/training/onnx/onnxExport';
import { loadLayersModelFromDir as loadModelDir } from '../../../../src/training/models/baseModel';

const repoRoot = path.resolve(__dirname, '../../../..');
const photosDir = path.join(repoRoot, 'test/fixtures/photos');
const baseDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
const v1Dir = path.resolve(repoRoot, '../shared/models/mobilenet_v1_0.25_224_imagenet');
const SIZE = 224;
const MINUS_ONE_TO_ONE = { scale: 1 / 127.5, offset: -1 };

let photos: { names: string[]; pixels: Uint8Array };
let tmp: string;

async function decodePhotos(): Promise<{ names: string[]; pixels: Uint8Array }> {
  const names = fs
    .readdirSync(photosDir)
    .filter((f) => /\.jpe?g$/i.test(f))
    .sort();
  const pixels = new Uint8Array(names.length * SIZE * SIZE * 3);
  for (let i = 0; i < names.length; i++) pixels.set(await decodeImage(path.join(photosDir, names[i]), SIZE, 50e6), i * SIZE * SIZE * 3);
  return { names, pixels };
}

/** TF.js predictions of `model` on NHWC float pixels, optionally preprocessed to [-1, 1] first. */
function tfPredict(model: tf.LayersModel, pixels: Uint8Array, n: number, preprocess: boolean): Float32Array {
  return tf.tidy(() => {
    let x: tf.Tensor = tf.tensor4d(Float32Array.from(pixels), [n, SIZE, SIZE, 3]);
    if (preprocess) x = x.mul(MINUS_ONE_TO_ONE.scale).add(MINUS_ONE_TO_ONE.offset);
    return (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  });
}

async function ortRun(bytes: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(bytes as Uint8Array, { intraOpNumThreads: 2 });
  try {
    const out = await session.run(feeds);
    return out[session.outputNames[0]];
  } finally {
    await session.release();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function argmaxRows(x: ArrayLike<number>, cols: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / cols; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (x[r * cols + c] > x[r * cols + best]) best = c;
    out.push(best);
  }
  return out;
}

describe('ONNX export', () => {
  before(async () => {
    await tf.setBackend('wasm');
    photos = await decodePhotos();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'onnx-export-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('gives the same MobileNetV2 features as TF.js within 1e-4 on real photos, from uint8 pixels with preprocessing inside', async () => {
    const base = await loadModelDir(tf, baseDir);
    try {
      const n = photos.names.length;
      assert.ok(n >= 4, 'the photo fixtures are present');
      const bytes = exportToOnnx(base, {
        inputSize: SIZE,
        preprocessing: MINUS_ONE_TO_ONE,
        includePreprocessing: true,
        inputType: 'uint8',
      });
      const out = await ortRun(bytes, { input: new ort.Tensor('uint8', photos.pixels, [n, SIZE, SIZE, 3]) });
      assert.deepEqual(out.dims, [n, 1280]);
      const expected = tfPredict(base, photos.pixels, n, true);
      const diff = maxAbsDiff(out.data as Float32Array, expected);
      assert.ok(diff < 1e-4, `max abs difference ${diff}`);
      // Features that are all alike would make the comparison meaningless.
      assert.ok(maxAbsDiff(expected.subarray(0, 1280), expected.subarray(1280, 2560)) > 0.5);
    } finally {
      base.dispose();
    }
  });

  it("exports a trained classifier's run model folder whose probabilities match the TF.js predictions", async () => {
    const entry = findModel('mobilenet_v2_0.35');
    assert.ok(entry);
    const base = await loadModelDir(tf, baseDir);
    const head = buildHead(tf, entry.featureSize, 4, { ...DEFAULT_TRAIN_OPTIONS, hiddenUnits: 128, seed: 7 });
    const classifier = buildClassifier(tf, base, head, entry);
    const modelDir = path.join(tmp, 'run', 'model');
    await saveModelDir(classifier, modelDir, classifierMetadata(['black_rot', 'cedar_rust', 'healthy', 'scab'], entry), tf);
    classifier.dispose();

    const onnxFile = path.join(tmp, 'classifier.onnx');
    const meta = await exportClassifierToOnnx(modelDir, onnxFile, tf);
    assert.deepEqual(meta.labels, ['black_rot', 'cedar_rust', 'healthy', 'scab']);

    const n = photos.names.length;
    const out = await ortRun(onnxFile, { pixels: new ort.Tensor('float32', Float32Array.from(photos.pixels), [n, SIZE, SIZE, 3]) });
    assert.deepEqual(out.dims, [n, 4]);
    const reloaded = await loadModelDir(tf, modelDir);
    try {
      const expected = tfPredict(reloaded, photos.pixels, n, false);
      const diff = maxAbsDiff(out.data as Float32Array, expected);
      assert.ok(diff < 1e-5, `max abs difference ${diff}`);
      assert.deepEqual(argmaxRows(out.data as Float32Array, 4), argmaxRows(expected, 4));
      const rowSum = Array.from((out.data as Float32Array).subarray(0, 4)).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(rowSum - 1) < 1e-5);
    } finally {
      reloaded.dispose();
    }
  });

  it('keeps the pretrained MobileNetV1 ImageNet classifier (same-padding stride 2, biased convs, Reshape, 4-D softmax) on its TF.js outputs', async () => {
    const v1 = await loadModelDir(tf, v1Dir);
    try {
      const n = photos.names.length;
      const bytes = exportToOnnx(v1, { inputSize: SIZE, preprocessing: MINUS_ONE_TO_ONE, includePreprocessing: true });
      const out = await ortRun(bytes, { input: new ort.Tensor('float32', Float32Array.from(photos.pixels), [n, SIZE, SIZE, 3]) });
      assert.deepEqual(out.dims, [n, 1000]);
      const expected = tfPredict(v1, photos.pixels, n, true);
      assert.ok(maxAbsDiff(out.data as Float32Array, expected) < 1e-4);
      const top = argmaxRows(out.data as Float32Array, 1000);
      assert.deepEqual(top, argmaxRows(expected, 1000));
      // Keras class order: 281 tabby, 285 Egyptian cat.
      assert.ok([281, 282, 285].includes(top[photos.names.indexOf('chelsea.jpg')]), `chelsea.jpg classified as ${top[0]}`);

      // Features from an inner layer (the registry's V1 feature layer), averaged over space as the tfjs feature route does.
      const features = exportToOnnx(v1, {
        inputSize: SIZE,
        preprocessing: MINUS_ONE_TO_ONE,
        includePreprocessing: true,
        outputLayer: 'conv_pw_13_relu',
      });
      const f = await ortRun(features, { input: new ort.Tensor('float32', Float32Array.from(photos.pixels), [n, SIZE, SIZE, 3]) });
      assert.deepEqual(f.dims, [n, 256]);
      const inner = tf.model({ inputs: v1.inputs, outputs: v1.getLayer('conv_pw_13_relu').output as tf.SymbolicTensor });
      const expectedFeatures = tf.tidy(() =>
        tf.mean(tf.tensor4d(Float32Array.from(tfPredict(inner, photos.pixels, n, true)), [n, 7, 7, 256]), [1, 2]).dataSync(),
      );
      assert.ok(maxAbsDiff(f.data as Float32Array, expectedFeatures) < 1e-4);
    } finally {
      v1.dispose();
    }
  });

  it('converts every supported layer kind, including unfoldable BatchNorm, a padding used twice, pooling, concatenation and reshapes', async () => {
    const x0 = tf.input({ shape: [SIZE, SIZE, 3] });
    const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]): tf.SymbolicTensor =>
      layer.apply(x) as tf.SymbolicTensor;
    let x = apply(tf.layers.rescaling({ scale: 1 / 255 }), x0);
    x = apply(tf.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: true }), x);
    x = apply(tf.layers.batchNormalization({}), x);
    x = apply(tf.layers.leakyReLU({ alpha: 0.1 }), x);
    x = apply(tf.layers.depthwiseConv2d({ kernelSize: 5, strides: 2, depthMultiplier: 2, padding: 'same', activation: 'relu' }), x);
    x = apply(tf.layers.batchNormalization({}), x); // after an activation: cannot be folded
    const mp = apply(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x);
    const ap = apply(tf.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: 'same' }), x);
    x = apply(tf.layers.concatenate(), [mp, ap]);
    const padded = apply(
      tf.layers.zeroPadding2d({
        padding: [
          [1, 2],
          [0, 1],
        ],
      }),
      x,
    );
    x = apply(tf.layers.multiply(), [padded, padded]); // the padding has two consumers: a real Pad node
    const skip = apply(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'valid', activation: 'relu6' }), x);
    x = apply(tf.layers.add(), [skip, apply(tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'valid' }), x)]);
    x = apply(tf.layers.activation({ activation: 'relu6' }), x);
    const gap = apply(tf.layers.globalMaxPooling2d({}), x);
    x = apply(tf.layers.flatten(), x);
    x = apply(tf.layers.concatenate(), [x, gap]);
    x = apply(tf.layers.dense({ units: 10, activation: 'tanh' }), x);
    x = apply(tf.layers.batchNormalization({}), x);
    x = apply(tf.layers.dropout({ rate: 0.5 }), x);
    x = apply(tf.layers.reshape({ targetShape: [1, 2, 5] }), x);
    x = apply(tf.layers.softmax({ axis: -1 }), x);
    x = apply(tf.layers.reshape({ targetShape: [-1] }), x);
    const model = tf.model({ inputs: x0, outputs: x });
    try {
      // Non-trivial BatchNorm statistics, so that a wrong fold shows.
      for (const l of model.layers) {
        if (l.getClassName() === 'BatchNormalization') {
          const fresh = l.getWeights().map((w, i) => tf.randomUniform(w.shape, i === 3 ? 0.5 : -1, 2, 'float32', 11 + i));
          l.setWeights(fresh);
          tf.dispose(fresh);
        }
      }
      const n = photos.names.length;
      const bytes = exportToOnnx(model, { inputSize: SIZE, preprocessing: MINUS_ONE_TO_ONE, includePreprocessing: false });
      const out = await ortRun(bytes, { input: new ort.Tensor('float32', Float32Array.from(photos.pixels), [n, SIZE, SIZE, 3]) });
      assert.deepEqual(out.dims, [n, 10]);
      const diff = maxAbsDiff(out.data as Float32Array, tfPredict(model, photos.pixels, n, false));
      assert.ok(diff < 1e-5, `max abs difference ${diff}`);
    } finally {
      model.dispose();
    }
  });

  it('names an unsupported layer class in its error', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const up = tf.layers.upSampling2d({ size: [2, 2], name: 'grow' }).apply(input) as tf.SymbolicTensor;
    const model = tf.model({ inputs: input, outputs: up });
    try {
      assert.throws(
        () => exportToOnnx(model, { inputSize: 8, preprocessing: MINUS_ONE_TO_ONE, includePreprocessing: false }),
        /does not support layer class 'UpSampling2D' \(layer 'grow'/,
      );
    } finally {
      model.dispose();
    }
  });

  it('exports a Keras ReLU with a negative slope as a leaky ReLU, and names the ReLU settings ONNX has no op for', async () => {
    /** A 4×4 RGB model whose one ReLU layer serializes with `extra` (settings Keras writes and tfjs's ReLU does not). */
    const reluModel = (extra: Record<string, unknown>): tf.LayersModel => {
      const input = tf.input({ shape: [4, 4, 3] });
      const relu = tf.layers.reLU({ name: 'act' });
      const own = relu.getConfig.bind(relu);
      relu.getConfig = () => ({ ...own(), ...extra }) as tf.serialization.ConfigDict;
      const out = tf.layers.flatten().apply(relu.apply(input)) as tf.SymbolicTensor;
      return tf.model({ inputs: input, outputs: out });
    };
    const opts = { inputSize: 4, preprocessing: MINUS_ONE_TO_ONE, includePreprocessing: false };
    const leaky = reluModel({ negativeSlope: 0.2 });
    try {
      const pixels = Float32Array.from({ length: 4 * 4 * 3 }, (_, i) => Math.sin(i));
      const out = await ortRun(exportToOnnx(leaky, opts), { input: new ort.Tensor('float32', pixels, [1, 4, 4, 3]) });
      const expected = Float32Array.from(pixels, (v) => (v < 0 ? 0.2 * v : v));
      assert.ok(maxAbsDiff(out.data as Float32Array, expected) < 1e-6);
    } finally {
      leaky.dispose();
    }
    for (const [extra, why] of [
      [{ threshold: 0.5 }, /does not support ReLU with a threshold \(layer 'act'/],
      [{ negativeSlope: 0.2, maxValue: 6 }, /does not support ReLU with both max_value and negative_slope \(layer 'act'/],
    ] as const) {
      const model = reluModel(extra);
      try {
        assert.throws(() => exportToOnnx(model, opts), why);
      } finally {
        model.dispose();
      }
    }
  });

  it('refuses an input size that contradicts the model', async () => {
    const base = await loadModelDir(tf, baseDir);
    try {
      assert.throws(
        () => exportToOnnx(base, { inputSize: 192, preprocessing: MINUS_ONE_TO_ONE, includePreprocessing: true }),
        /input is 224 px, inputSize says 192/,
      );
    } finally {
      base.dispose();
    }
  });
});
