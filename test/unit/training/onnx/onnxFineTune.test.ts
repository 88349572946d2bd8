// The fine-tuning step graph on onnxruntime against tfjs's automatic differentiation of the same
// layers (the embedded MobileNetV2 0.35 cut at block_14_expand, with a head), on activations of
// real photos; and the engine's training loop end to end.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import { registerWasmGradients } from '../../../../src/training/backend/wasmGradients';
import { decodeImage } from '../../../../src/training/dataset/imageDecoder';
import { discriminativeScale, fineTune, splitAtLayer, topFeatures, type CutModel } from '../../../../src/training/fit/fineTune';
import { buildHead } from '../../../../src/training/fit/head';
import { loadLayersModelFromDir } from '../../../../src/training/models/baseModel';
import { fineTuneGraph, planTop, type TopPlan } from '../../../../src/training/onnx/onnxFineTune';
import { encodeOnnxModel } from '../../../../src/training/onnx/onnxProto';

const repo = path.resolve(__dirname, '../../../..');
const sample = path.join(repo, 'samples/leaves');
const CLASSES = ['black_rot', 'cedar_rust', 'healthy', 'scab'];
const PER_CLASS = 3;
const N = CLASSES.length * PER_CLASS;
const options = { ...DEFAULT_TRAIN_OPTIONS, hiddenUnits: 16, batchSize: 4, fineTuneEpochs: 2, fineTuneLearningRate: 1e-3 };

let base: tf.LayersModel;
let cut: CutModel;
let acts: tf.Tensor;
let labels: Int32Array;

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  registerWasmGradients(tf);
  base = await loadLayersModelFromDir(tf, path.join(repo, 'media/models/mobilenet_v2_0.35_224_no_top'));
  cut = splitAtLayer(tf, base, 'block_14_expand');
  const pixels = new Uint8Array(N * 224 * 224 * 3);
  const y: number[] = [];
  for (const [ci, c] of CLASSES.entries()) {
    for (const f of readdirSync(path.join(sample, c)).sort().slice(0, PER_CLASS)) {
      pixels.set(await decodeImage(path.join(sample, c, f), 224, 1e8), y.length * 224 * 224 * 3);
      y.push(ci);
    }
  }
  labels = Int32Array.from(y);
  acts = tf.tidy(() => cut.bottom.predict(tf.tensor4d(pixels, [N, 224, 224, 3], 'float32').div(127.5).sub(1)) as tf.Tensor);
});

function plan(head: tf.LayersModel): TopPlan {
  const p = planTop(base, cut.top, cut.bottom.outputs[0].sourceLayer.name, head, discriminativeScale);
  assert.ok(p, 'the top of MobileNetV2 above block 13 is planned');
  return p;
}

describe('the fine-tuning step graph on onnxruntime', () => {
  it('plans the ten convolutions above the cut and the head, learning rates ×0.1 at the cut rising to ×1', () => {
    const head = buildHead(tf, 1280, CLASSES.length, options);
    const p = plan(head);
    assert.deepEqual(p.rowShape, [7, 7, 56]);
    assert.deepEqual(
      p.params.map((q) => q.variable.name.split('/')[0]),
      [
        ...['14', '15', '16'].flatMap((b) => [`block_${b}_expand`, `block_${b}_depthwise`, `block_${b}_project`]),
        'Conv_1',
        ...['head_hidden', 'head_hidden', 'head_output', 'head_output'],
      ],
    );
    assert.equal(p.params[0].lrScale, 0.1);
    assert.equal(p.params[9].lrScale, 1);
    head.dispose();
  });

  it('gives the probabilities and every gradient tfjs autodiff gives, within 1e-5 relative, on real photos', async () => {
    const head = buildHead(tf, 1280, CLASSES.length, options);
    const p = plan(head);
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES.length).toFloat();
    const { grads } = tf.variableGrads(
      () => {
        const probs = head.apply(cut.top.apply(acts, { training: false }) as tf.Tensor) as tf.Tensor;
        return tf.losses.softmaxCrossEntropy(onehot, tf.log(probs.clipByValue(1e-7, 1 - 1e-7))) as tf.Scalar;
      },
      p.params.map((q) => q.variable),
    );
    const session = await ort.InferenceSession.create(encodeOnnxModel(fineTuneGraph(p, true)));
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor('float32', acts.dataSync() as Float32Array, acts.shape),
      onehot: new ort.Tensor('float32', onehot.dataSync() as Float32Array, onehot.shape),
      row_scale: new ort.Tensor('float32', new Float32Array(N).fill(1 / N), [N, 1]),
      mask: new ort.Tensor('float32', new Float32Array(N * 16).fill(1), [N, 16]),
    };
    p.params.forEach((q, i) => (feeds[`p${i}`] = new ort.Tensor('float32', q.variable.dataSync() as Float32Array, q.dims)));
    const out = await session.run(feeds);
    const expected = (head.predict(cut.top.predict(acts) as tf.Tensor) as tf.Tensor).dataSync();
    const probs = out.probs.data as Float32Array;
    assert.ok(Math.max(...Array.from(expected, (v, i) => Math.abs(v - probs[i]))) < 1e-5);
    p.params.forEach((q, i) => {
      const want = grads[q.variable.name].dataSync() as Float32Array;
      const got = out[`grad_p${i}`].data as Float32Array;
      let num = 0;
      let den = 0;
      for (let k = 0; k < want.length; k++) [num, den] = [num + (want[k] - got[k]) ** 2, den + want[k] ** 2];
      assert.ok(Math.sqrt(num / den) < 1e-5, `${q.variable.name}: relative error ${Math.sqrt(num / den)}`);
    });
    await session.release();
    tf.dispose([onehot, ...Object.values(grads)]);
    head.dispose();
  });

  it('computes the features through the top on onnxruntime as tfjs does (the kept model’s features after fine-tuning)', async () => {
    const head = buildHead(tf, 1280, CLASSES.length, options);
    const set = { x: acts.dataSync() as Float32Array, shape: acts.shape, y: labels };
    const [viaTfjs, viaOnnx] = [await topFeatures(tf, cut, set, 1280), await topFeatures(tf, cut, set, 1280, { ort, head })];
    assert.equal(viaOnnx.n, N);
    const scale = Math.max(...Array.from(viaTfjs.x, Math.abs));
    assert.ok(Math.max(...Array.from(viaOnnx.x, (v, i) => Math.abs(v - viaTfjs.x[i]))) < 1e-5 * scale);
    head.dispose();
  });

  it('trains through fineTune on onnxruntime on two views of each image: the loss falls and the base variables receive the weights', async () => {
    const head = buildHead(tf, 1280, CLASSES.length, options);
    const kernel = base.getLayer('Conv_1').getWeights()[0];
    const before = kernel.dataSync().slice();
    const per = 7 * 7 * 56;
    const one = acts.dataSync() as Float32Array;
    // Two "views" per row: the activations and a copy scaled by 0.9 (any second map will do).
    const two = new Float32Array(N * 2 * per);
    for (let i = 0; i < N; i++) {
      two.set(one.subarray(i * per, (i + 1) * per), 2 * i * per);
      two.set(
        one.subarray(i * per, (i + 1) * per).map((v) => 0.9 * v),
        (2 * i + 1) * per,
      );
    }
    const train = { x: two, shape: [N, 2, 7, 7, 56], y: labels };
    const val = { x: one, shape: acts.shape, y: labels };
    const losses: number[] = [];
    const notes: string[] = [];
    const result = await fineTune(
      tf,
      cut,
      head,
      train,
      val,
      CLASSES.length,
      { ...options, fineTuneEpochs: 4, fineTuneLearningRate: 3e-3 },
      { callbacks: [{ onEpochEnd: (m) => void losses.push(m.valLoss) }] },
      0,
      { kind: 'onnx', ort, threads: 1 },
      (note) => notes.push(note),
    );
    assert.match(notes[0], /^onnxruntime \(10 tensors of the base and the head, .*one of 2 views of each image per epoch\)$/);
    assert.equal(result.epochsRun, 4);
    assert.ok(Math.min(...losses) < losses[0], `validation loss ${losses.join(', ')}`);
    const after = base.getLayer('Conv_1').getWeights()[0].dataSync();
    if (result.bestEpoch > 0)
      assert.ok(
        after.some((v, i) => v !== before[i]),
        'the kept weights are the base’s',
      );
    head.dispose();
  });
});
