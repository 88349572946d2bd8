import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS, type EpochMetrics, type TrainOptions } from '../../../../src/shared/types';
import { chooseCutLayer, fineTune, splitAtLayer, type ActivationSet, type CutModel } from '../../../../src/training/fit/fineTune';
import { buildHead } from '../../../../src/training/fit/head';
import { findModel } from '../../../../src/training/models/modelRegistry';
import { seededRandom } from '../../../../src/training/util/random';
import { wasmGradientStats } from '../../../../src/training/backend/wasmGradients';

const repoRoot = path.resolve(__dirname, '../../../..');
const modelDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
const CLASSES = 3;

async function loadBase(): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(path.join(modelDir, 'model.json'), 'utf8'));
  const weights = await readFile(path.join(modelDir, 'weights.bin'));
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
  return tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData }),
  );
}

/** Random activations at the cut, labels a deterministic function of them so there is something to learn. */
function activations(n: number, rowShape: number[], seed: number): ActivationSet {
  const r = seededRandom(seed);
  const per = rowShape.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n * per }, () => (r() - 0.5) * 4);
  const y = Int32Array.from({ length: n }, (_, i) => i % CLASSES);
  // shift each class's activations so that the classes are separable
  for (let i = 0; i < n; i++) for (let j = 0; j < per; j += CLASSES + 1) x[i * per + j] += y[i] * 2;
  return { x, shape: [n, ...rowShape], y };
}

function copyWeights(layers: tf.layers.Layer[]): Map<string, Float32Array> {
  const m = new Map<string, Float32Array>();
  for (const l of layers) for (const w of l.weights) m.set(w.name, w.read().dataSync().slice() as Float32Array);
  return m;
}

function options(over: Partial<TrainOptions>): TrainOptions {
  return { ...DEFAULT_TRAIN_OPTIONS, batchSize: 4, hiddenUnits: 16, fineTuneEpochs: 2, fineTuneLearningRate: 1e-3, ...over };
}

let base: tf.LayersModel;
let cut: CutModel;

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  base = await loadBase();
  cut = splitAtLayer(tf, base, 'block_16_expand');
});

describe('splitAtLayer on the embedded MobileNetV2 0.35', () => {
  it('cuts at block_16_expand, whose input is block_15_add, and unfreezes its four convolutions', () => {
    assert.equal(cut.cutLayer, 'block_16_expand');
    assert.deepEqual(cut.bottom.outputs[0].shape, [null, 7, 7, 56]);
    assert.equal(cut.bottom.outputs[0].sourceLayer.name, 'block_15_add');
    assert.deepEqual(cut.top.inputs[0].shape, [null, 7, 7, 56]);
    assert.deepEqual(cut.top.outputs[0].shape, [null, 1280]);
    const trainable = cut.top.layers.filter((l) => l.trainableWeights.length > 0).map((l) => l.name);
    assert.deepEqual(trainable, ['block_16_expand', 'block_16_depthwise', 'block_16_project', 'Conv_1']);
    assert.equal(cut.trainableLayerCount, 4);
    const bn = cut.top.layers.filter((l) => l.getClassName() === 'BatchNormalization');
    assert.equal(bn.length, 4);
    assert.ok(
      bn.every((l) => l.trainableWeights.length === 0),
      'BatchNorm gamma/beta stay frozen',
    );
  });

  it('composes bottom and top back into the base: same features for the same input', () => {
    const r = seededRandom(5);
    const input = tf.tensor4d(
      Float32Array.from({ length: 2 * 224 * 224 * 3 }, () => r() * 2 - 1),
      [2, 224, 224, 3],
    );
    const [whole, split] = tf.tidy(() => [
      base.predict(input) as tf.Tensor,
      cut.top.predict(cut.bottom.predict(input) as tf.Tensor) as tf.Tensor,
    ]);
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(whole, split))).dataSync()[0]);
    assert.equal(diff, 0);
    tf.dispose([input, whole, split]);
  });

  it('accepts a cut whose residual Add reads exactly the cut tensor (block_15_expand)', () => {
    const c = splitAtLayer(tf, base, 'block_15_expand');
    assert.equal(c.bottom.outputs[0].sourceLayer.name, 'block_14_add');
    assert.ok(c.top.layers.some((l) => l.name === 'block_15_add'));
    assert.equal(c.trainableLayerCount, 7);
  });

  it('refuses a cut inside a residual block, naming the connection that crosses it', () => {
    assert.throws(() => splitAtLayer(tf, base, 'block_15_depthwise'), /"block_15_add".*reads "block_14_add"/);
    assert.throws(() => splitAtLayer(tf, base, 'no_such_layer'), /no layer of that name/);
  });

  it('chooses the deepest registry cut point that unfreezes enough layers', () => {
    const cuts = findModel('mobilenet_v2_0.35')!.fineTuneCutPoints;
    assert.equal(chooseCutLayer(base, cuts, 5), 'block_16_expand');
    assert.equal(chooseCutLayer(base, cuts, 15), 'block_15_expand');
    assert.equal(chooseCutLayer(base, cuts, 1000), 'block_13_expand');
  });
});

describe('fineTune on cached activations (WebAssembly)', () => {
  it('trains the unfrozen convolutions while every BatchNorm moving mean and variance stays bit-identical', async () => {
    const train = activations(16, [7, 7, 56], 1);
    const val = activations(16, [7, 7, 56], 1); // the same rows: fine-tuning must improve on them
    const o = options({});
    const head = buildHead(tf, 1280, CLASSES, o);
    const bnLayers = base.layers.filter((l) => l.getClassName() === 'BatchNormalization');
    assert.equal(bnLayers.length, 52);
    const bnBefore = copyWeights(bnLayers);
    const convNames = ['block_16_expand', 'block_16_depthwise', 'block_16_project', 'Conv_1'];
    const convBefore = copyWeights(convNames.map((n) => base.getLayer(n)));
    const frozenBefore = copyWeights([base.getLayer('block_15_project')]);
    const stats = { ...wasmGradientStats };
    const tensors = tf.memory().numTensors;
    const epochs: EpochMetrics[] = [];

    const result = await fineTune(tf, cut, head, train, val, CLASSES, o, { callbacks: [{ onEpochEnd: (m) => void epochs.push(m) }] }, 7);

    assert.equal(tf.memory().numTensors, tensors, 'no tensor leaked');
    assert.deepEqual(
      epochs.map((m) => [m.stage, m.epoch]),
      [
        ['fine-tune', 8],
        ['fine-tune', 9],
      ],
    );
    assert.ok(result.bestEpoch > 7, `a fine-tuning epoch improved on the head (best ${result.bestEpoch})`);
    for (const [name, values] of copyWeights(bnLayers)) {
      assert.deepEqual(values, bnBefore.get(name), `${name} unchanged`);
    }
    assert.ok(
      [...bnBefore.keys()].some((k) => k.endsWith('moving_mean')) && [...bnBefore.keys()].some((k) => k.endsWith('moving_variance')),
    );
    for (const [name, values] of copyWeights(convNames.map((n) => base.getLayer(n)))) {
      assert.notDeepEqual(values, convBefore.get(name), `${name} was trained`);
    }
    for (const [name, values] of copyWeights([base.getLayer('block_15_project')])) {
      assert.deepEqual(values, frozenBefore.get(name), `${name} below the cut is frozen`);
    }
    assert.ok(wasmGradientStats.fast - stats.fast >= 3 * 2 * 4, 'the WebAssembly kernels computed the convolution gradients');
    assert.equal(wasmGradientStats.reference, stats.reference, 'no gradient fell back to the pure-JS kernels');

    // The trap this guards against is real: one call in training mode rewrites the moving statistics.
    const probe = tf.tensor(train.x.subarray(0, 4 * 7 * 7 * 56), [4, 7, 7, 56]);
    tf.tidy(() => cut.top.apply(probe, { training: true }) as tf.Tensor);
    probe.dispose();
    const bnAfterProbe = copyWeights([base.getLayer('block_16_expand_BN')]);
    const mean = [...bnAfterProbe.keys()].find((k) => k.endsWith('moving_mean'))!;
    assert.notDeepEqual(bnAfterProbe.get(mean), bnBefore.get(mean), 'training mode would have changed the statistics');
    head.dispose();
  });

  it('keeps the pre-fine-tuning weights when cancelled in its first epoch', async () => {
    const fresh = await loadBase();
    const c = splitAtLayer(tf, fresh, 'block_16_expand');
    const train = activations(12, [7, 7, 56], 2);
    const val = activations(6, [7, 7, 56], 3);
    const o = options({});
    const head = buildHead(tf, 1280, CLASSES, o);
    const before = copyWeights([...c.top.layers, ...head.layers]);
    let batches = 0;
    const cancel = new AbortController();
    const result = await fineTune(
      tf,
      c,
      head,
      train,
      val,
      CLASSES,
      o,
      { signal: cancel.signal, callbacks: [{ onBatchEnd: () => void (++batches >= 2 && cancel.abort()) }] },
      4,
    );
    assert.equal(batches, 2);
    assert.equal(result.stoppedBy, 'cancel');
    assert.equal(result.epochsRun, 0);
    assert.equal(result.bestEpoch, 4, 'the head stage epoch stays the best');
    for (const [name, values] of copyWeights([...c.top.layers, ...head.layers])) {
      assert.deepEqual(values, before.get(name), `${name} restored`);
    }
    head.dispose();
    fresh.dispose();
  });

  it('refuses activations that do not match their shape', async () => {
    const head = buildHead(tf, 1280, CLASSES, options({}));
    const bad = { x: new Float32Array(10), shape: [2, 7, 7, 56], y: new Int32Array(2) };
    await assert.rejects(
      fineTune(tf, cut, head, bad, bad, CLASSES, options({}), {}, 0),
      /10 values and 2 labels for shape \[2, 7, 7, 56\]/,
    );
    head.dispose();
  });
});
