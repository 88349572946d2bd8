// buildFoldedGraph on its own, without loadBaseModel's check-and-fall-back around it: the real
// embedded MobileNetV2 0.35 folded and compared with its layers model on real photos, the layer
// patterns it rewrites (BatchNorm folded into a convolution, ReLU6 fused, explicit ZeroPadding
// turned into 'same' or kept, a standalone BatchNorm, residual Add, Dropout skipped) each checked
// against tfjs's own layers, and the reason it gives for what it does not handle.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type * as tfType from '@tensorflow/tfjs';
import { initBackend } from '../../../../src/training/backend/backend';
import { loadLayersModelFromDir } from '../../../../src/training/models/baseModel';
import { buildFoldedGraph, type FoldedGraph } from '../../../../src/training/models/foldedGraph';
import { MODEL_REGISTRY } from '../../../../src/training/models/modelRegistry';
import type { Tf } from '../../../../src/training/util/tf';

const repoRoot = path.resolve(__dirname, '../../../..');
const photosDir = path.join(repoRoot, 'test/fixtures/photos');
const PHOTOS = ['chelsea', 'coffee', 'motorcycle_left', 'motorcycle_right'];
const EMBEDDED = MODEL_REGISTRY[0];
const SIZE = EMBEDDED.inputSize;

let tf: Tf;
let mobilenet: tfType.LayersModel;
let photos: tfType.Tensor4D;

/** The fixture photos as a preprocessed [4, 224, 224, 3] batch, the way the base model takes them. */
async function loadPhotos(): Promise<tfType.Tensor4D> {
  const raw = new Uint8Array(PHOTOS.length * SIZE * SIZE * 3);
  for (let i = 0; i < PHOTOS.length; i++) {
    const rgb = await sharp(path.join(photosDir, `${PHOTOS[i]}.jpg`))
      .resize(SIZE, SIZE, { fit: 'cover' })
      .removeAlpha()
      .raw()
      .toBuffer();
    raw.set(rgb, i * SIZE * SIZE * 3);
  }
  const { scale, offset } = EMBEDDED.preprocessing;
  return tf.tensor4d(
    Float32Array.from(raw, (v) => v * scale + offset),
    [PHOTOS.length, SIZE, SIZE, 3],
  );
}

/** The reference: `featureLayer`'s output as tfjs's layers compute it, averaged over space if 4-D. */
function layersFeatures(model: tfType.LayersModel, featureLayer: string, x: tfType.Tensor4D): Float32Array {
  return tf.tidy(() => {
    const trunk = tf.model({ inputs: model.inputs, outputs: model.getLayer(featureLayer).output as tfType.SymbolicTensor });
    const out = trunk.predict(x) as tfType.Tensor;
    return (out.rank === 4 ? tf.mean(out, [1, 2]) : out).dataSync() as Float32Array;
  });
}

function foldedFeatures(graph: FoldedGraph, x: tfType.Tensor4D): Float32Array {
  const out = graph.run(x);
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function mustBuild(model: tfType.LayersModel, featureLayer: string): FoldedGraph {
  const built = buildFoldedGraph(tf, model, featureLayer);
  if ('unsupported' in built) assert.fail(`expected a folded graph, got: ${built.unsupported}`);
  return built;
}

/** Gives every BatchNormalization layer of `model` non-trivial statistics, so folding them changes the numbers. */
function randomiseBatchNorms(model: tfType.LayersModel, seed: number): void {
  for (const layer of model.layers) {
    if (layer.getClassName() !== 'BatchNormalization') continue;
    const shapes = layer.getWeights().map((w) => w.shape);
    layer.setWeights(
      shapes.map((shape, k) => {
        const values = tf.randomUniform(shape, k === 3 ? 0.2 : -0.5, k === 3 ? 2 : 0.5, 'float32', seed + k);
        return k === 0 ? tf.add(values, 1) : values;
      }),
    );
    seed += 10;
  }
}

/** A small input batch with a fixed seed. */
function input(size: number, channels = 3, batch = 2): tfType.Tensor4D {
  return tf.randomUniform([batch, size, size, channels], -1, 1, 'float32', 7) as tfType.Tensor4D;
}

before(async () => {
  ({ tf } = await initBackend({ preference: 'wasm', wasmThreads: 1 }));
  const source = EMBEDDED.source;
  assert.equal(source.kind, 'embedded');
  mobilenet = await loadLayersModelFromDir(tf, path.join(repoRoot, source.kind === 'embedded' ? source.folder : ''));
  photos = await loadPhotos();
});

after(() => {
  photos?.dispose();
  mobilenet?.dispose();
});

describe('the folded graph of the embedded MobileNetV2 0.35', () => {
  it('gives the same 1280 features as the layers model within 1e-4 on the real photos', () => {
    const graph = mustBuild(mobilenet, EMBEDDED.featureLayer);
    try {
      const folded = foldedFeatures(graph, photos);
      const reference = layersFeatures(mobilenet, EMBEDDED.featureLayer, photos);
      assert.equal(folded.length, PHOTOS.length * 1280);
      const diff = maxAbsDiff(folded, reference);
      assert.ok(diff < 1e-4, `max abs difference ${diff}`);
      assert.ok(Math.max(...reference) > 1, 'the features are not trivially small');
    } finally {
      graph.dispose();
    }
  });

  it('computes far fewer ops than the model has layers, because BatchNorm and ReLU6 are folded into the convolutions', () => {
    const graph = mustBuild(mobilenet, EMBEDDED.featureLayer);
    try {
      const convs = mobilenet.layers.filter((l) => ['Conv2D', 'DepthwiseConv2D'].includes(l.getClassName())).length;
      const norms = mobilenet.layers.filter((l) => l.getClassName() === 'BatchNormalization').length;
      assert.ok(norms > 40, `${norms} BatchNorm layers`);
      assert.ok(graph.opCount < mobilenet.layers.length / 2, `${graph.opCount} ops for ${mobilenet.layers.length} layers`);
      assert.ok(graph.opCount >= convs, `${graph.opCount} ops, ${convs} convolutions`);
    } finally {
      graph.dispose();
    }
  });

  it('stops at an inner feature layer, pooling a 4-D output to a vector per image', () => {
    const inner = 'block_3_project_BN';
    const graph = mustBuild(mobilenet, inner);
    try {
      const folded = foldedFeatures(graph, photos);
      const reference = layersFeatures(mobilenet, inner, photos);
      assert.equal(folded.length, PHOTOS.length * (mobilenet.getLayer(inner).outputShape as number[])[3]);
      assert.ok(maxAbsDiff(folded, reference) < 1e-4);
    } finally {
      graph.dispose();
    }
  });

  it('leaves only its result behind when it runs, and frees its folded weights when disposed', () => {
    const before = tf.memory().numTensors;
    const graph = mustBuild(mobilenet, EMBEDDED.featureLayer);
    const withWeights = tf.memory().numTensors;
    assert.ok(withWeights > before, 'the folded weights are tensors of their own');
    const out = graph.run(photos);
    assert.equal(tf.memory().numTensors, withWeights + 1, 'only the result is left');
    out.dispose();
    graph.dispose();
    assert.equal(tf.memory().numTensors, before);
    const conv = mobilenet.layers.find((l) => l.getClassName() === 'Conv2D')!;
    assert.equal(conv.getWeights()[0].isDisposed, false, 'the layers model keeps its own weights');
  });
});

describe('layer patterns the folder rewrites', () => {
  it('a ZeroPadding before a valid convolution becomes explicit padding where it is not "same", for conv and depthwise conv', () => {
    // Asymmetric (0, 2) padding of a 9×9 input with stride 2 is not what 'same' would do.
    const x = tf.input({ shape: [9, 9, 3] });
    let y = tf.layers
      .zeroPadding2d({
        padding: [
          [0, 2],
          [1, 0],
        ],
        name: 'pad1',
      })
      .apply(x) as tfType.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'valid', name: 'conv1' }).apply(y) as tfType.SymbolicTensor;
    y = tf.layers
      .zeroPadding2d({
        padding: [
          [2, 0],
          [0, 1],
        ],
        name: 'pad2',
      })
      .apply(y) as tfType.SymbolicTensor;
    y = tf.layers.depthwiseConv2d({ kernelSize: 3, padding: 'valid', name: 'dw' }).apply(y) as tfType.SymbolicTensor;
    // A 'same'-equivalent padding (1, 1) before a 3×3 stride-1 convolution.
    y = tf.layers
      .zeroPadding2d({
        padding: [
          [1, 1],
          [1, 1],
        ],
        name: 'pad3',
      })
      .apply(y) as tfType.SymbolicTensor;
    y = tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'valid', name: 'conv2' }).apply(y) as tfType.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: y });
    const xs = input(9);
    const graph = mustBuild(model, 'conv2');
    try {
      assert.equal(graph.opCount, 3, 'every padding folded into its convolution');
      assert.ok(maxAbsDiff(foldedFeatures(graph, xs), layersFeatures(model, 'conv2', xs)) < 1e-4);
    } finally {
      graph.dispose();
      xs.dispose();
      model.dispose();
    }
  });

  it('a padding not followed by a valid convolution, a standalone BatchNorm, a residual Add, Dropout and ReLU layers all match tfjs', () => {
    const x = tf.input({ shape: [8, 8, 3] });
    const a = tf.layers.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false, name: 'a' }).apply(x) as tfType.SymbolicTensor;
    const aBn = tf.layers.batchNormalization({ name: 'a_bn' }).apply(a) as tfType.SymbolicTensor;
    const aRelu = tf.layers.reLU({ maxValue: 6, name: 'a_relu6' }).apply(aBn) as tfType.SymbolicTensor;
    const b = tf.layers.conv2d({ filters: 6, kernelSize: 1, activation: 'relu', name: 'b' }).apply(aRelu) as tfType.SymbolicTensor;
    const sum = tf.layers.add({ name: 'sum' }).apply([aRelu, b]) as tfType.SymbolicTensor;
    const dropped = tf.layers.dropout({ rate: 0.5, name: 'drop' }).apply(sum) as tfType.SymbolicTensor;
    const bn = tf.layers.batchNormalization({ name: 'standalone_bn' }).apply(dropped) as tfType.SymbolicTensor;
    const padded = tf.layers
      .zeroPadding2d({
        padding: [
          [1, 1],
          [1, 1],
        ],
        name: 'pad',
      })
      .apply(bn) as tfType.SymbolicTensor;
    const relu = tf.layers.activation({ activation: 'relu', name: 'relu' }).apply(padded) as tfType.SymbolicTensor;
    const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(relu) as tfType.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: pooled });
    randomiseBatchNorms(model, 3);
    const xs = input(8);
    const graph = mustBuild(model, 'gap');
    try {
      // a (+a_bn +a_relu6), b, sum, standalone_bn, pad, relu, gap: Dropout is skipped at inference.
      assert.equal(graph.opCount, 7);
      const reference = layersFeatures(model, 'gap', xs);
      assert.equal(reference.length, 2 * 6);
      assert.ok(maxAbsDiff(foldedFeatures(graph, xs), reference) < 1e-4);
    } finally {
      graph.dispose();
      xs.dispose();
      model.dispose();
    }
  });
  it('a Sequential model, which does not list its input layer, folds and runs and matches tfjs', () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 4, kernelSize: 3, strides: 2, padding: 'same', activation: 'relu', name: 'c1' }),
        tf.layers.conv2d({ filters: 5, kernelSize: 1, activation: 'relu', name: 'c2' }),
        tf.layers.globalAveragePooling2d({ name: 'gap' }),
      ],
    });
    // The input the first layer reads is named after it and is not among the model's layers.
    assert.deepEqual(
      model.layers.map((l) => l.name),
      ['c1', 'c2', 'gap'],
    );
    const xs = input(8);
    const graph = mustBuild(model, 'gap');
    try {
      assert.equal(graph.opCount, 3);
      assert.ok(maxAbsDiff(foldedFeatures(graph, xs), layersFeatures(model, 'gap', xs)) < 1e-5);
    } finally {
      graph.dispose();
      xs.dispose();
      model.dispose();
    }
  });
});

describe('what the folder refuses, with its reason', () => {
  /** Builds a sequential model from `layers` and returns the folder's reason for refusing it. */
  function refusal(layers: tfType.layers.Layer[], featureLayer: string): string {
    const model = tf.sequential({ layers });
    const before = tf.memory().numTensors;
    try {
      const built = buildFoldedGraph(tf, model, featureLayer);
      assert.ok('unsupported' in built, `expected a refusal for ${featureLayer}`);
      assert.equal(tf.memory().numTensors, before, 'weights folded before the refusal are freed');
      return built.unsupported;
    } finally {
      model.dispose();
    }
  }

  it('a feature layer that is not in the model', () => {
    assert.equal(
      refusal([tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, name: 'c' })], 'missing'),
      "feature layer 'missing' is not in the model",
    );
  });

  it('a layer kind it does not handle, named with its class', () => {
    assert.equal(
      refusal(
        [
          tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, name: 'c1' }),
          tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
          tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c2' }),
        ],
        'c2',
      ),
      "layer 'pool' is a MaxPooling2D, which the fused route does not handle",
    );
  });

  it('a convolution with an activation the fused kernels do not have', () => {
    assert.equal(
      refusal([tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, activation: 'sigmoid', name: 'c' })], 'c'),
      "layer 'c' uses activation 'sigmoid'",
    );
  });

  it('a dilated convolution', () => {
    assert.equal(
      refusal(
        [
          tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, name: 'c1' }),
          tf.layers.conv2d({ filters: 2, kernelSize: 3, dilationRate: 2, name: 'c2' }),
        ],
        'c2',
      ),
      "layer 'c2' is dilated",
    );
  });

  it('a ReLU capped at another value than 6', () => {
    assert.equal(
      refusal(
        [
          tf.layers.conv2d({ inputShape: [8, 8, 3], filters: 2, kernelSize: 3, name: 'c' }),
          tf.layers.reLU({ maxValue: 4, name: 'relu4' }),
          tf.layers.conv2d({ filters: 2, kernelSize: 1, name: 'c2' }),
        ],
        'c2',
      ),
      "layer 'relu4' (ReLU) has an unsupported activation",
    );
  });

  it('only the layers the feature layer depends on matter: an unsupported head above it is no reason to refuse', () => {
    const x = tf.input({ shape: [8, 8, 3] });
    const c = tf.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', name: 'c' }).apply(x) as tfType.SymbolicTensor;
    const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(c) as tfType.SymbolicTensor;
    const top = tf.layers.dense({ units: 2, activation: 'softmax', name: 'top' }).apply(gap) as tfType.SymbolicTensor;
    const model = tf.model({ inputs: x, outputs: top });
    const xs = input(8);
    const graph = mustBuild(model, 'gap');
    try {
      assert.ok(maxAbsDiff(foldedFeatures(graph, xs), layersFeatures(model, 'gap', xs)) < 1e-5);
    } finally {
      graph.dispose();
      xs.dispose();
      model.dispose();
    }
  });
});
