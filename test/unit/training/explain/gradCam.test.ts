import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import { decodeImage } from '../../../../src/training/dataset/imageDecoder';
import {
  classActivation,
  classIndexOf,
  gradCamModelOf,
  heatmapOverImage,
  type ClassActivation,
  type GradCamModel,
} from '../../../../src/training/explain/gradCam';
import { buildHead } from '../../../../src/training/fit/head';
import { loadLayersModelFromDir } from '../../../../src/training/models/baseModel';
import { buildClassifier, classifierMetadata } from '../../../../src/training/models/classifierModel';
import { findModel } from '../../../../src/training/models/modelRegistry';
import { errorKindOf } from '../../../../src/training/util/errors';
import { seededRandom } from '../../../../src/training/util/random';

const repoRoot = path.resolve(__dirname, '../../../..');
const baseDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
const photos = path.join(repoRoot, 'test/fixtures/photos');

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

/** A 7×7 activation grid holding `values` (row-major), for the geometry tests. */
function grid(values: number[]): ClassActivation {
  return { probabilities: new Float32Array([1]), classIndex: 0, grid: Float32Array.from(values), gridWidth: 7, gridHeight: 7 };
}

describe('heatmapOverImage', () => {
  it('lays the map over the centre crop of a tall image and leaves what the crop cut away at 0', () => {
    // 100×300: the decoder scales the width to 224 and keeps the middle third of the height.
    const h = heatmapOverImage(grid(new Array(49).fill(1)), 224, 100, 300);
    assert.deepEqual([h.width, h.height], [85, 256]);
    for (let y = 0; y < h.height; y++) {
      const row = Array.from(h.values.subarray(y * h.width, (y + 1) * h.width));
      const seen = y >= 85 && y <= 170;
      assert.ok(
        row.every((v) => v === (seen ? 1 : 0)),
        `row ${y} should be ${seen ? 'seen (1)' : 'cut away (0)'}`,
      );
    }
  });

  it('puts a hot corner cell of the grid in the same corner of a square image', () => {
    const values = new Array(49).fill(0);
    values[6 * 7 + 6] = 1;
    const h = heatmapOverImage(grid(values), 224, 448, 448);
    assert.deepEqual([h.width, h.height], [256, 256]);
    let best = 0;
    for (let i = 1; i < h.values.length; i++) if (h.values[i] > h.values[best]) best = i;
    assert.ok(best % 256 >= 219 && Math.floor(best / 256) >= 219, `maximum at ${best % 256}, ${Math.floor(best / 256)}`);
    assert.equal(h.values[0], 0);
  });

  it('keeps a small image at its own size', () => {
    const h = heatmapOverImage(grid(new Array(49).fill(0.5)), 224, 120, 80);
    assert.deepEqual([h.width, h.height], [120, 80]);
  });
});

describe('Grad-CAM on MobileNetV2 with a head', () => {
  let model: GradCamModel;
  let classifier: tf.LayersModel;
  /** The base's map as the layers model computes it, independent of the folded graph Grad-CAM runs. */
  let layersMap: tf.LayersModel;
  const labels = ['cat', 'coffee', 'motorcycle'];

  before(async () => {
    const entry = findModel('mobilenet_v2_0.35')!;
    const base = await loadLayersModelFromDir(tf, baseDir);
    const head = buildHead(tf, entry.featureSize, labels.length, DEFAULT_TRAIN_OPTIONS);
    // Non-zero biases, so that the class scores are computed with them.
    const rnd = seededRandom(5);
    head.setWeights(
      head.getWeights().map((w, i) =>
        i % 2 === 1
          ? tf.tensor(
              Array.from(w.dataSync(), () => rnd() - 0.5),
              w.shape,
            )
          : w,
      ),
    );
    classifier = buildClassifier(tf, base, head, entry);
    layersMap = tf.model({ inputs: base.inputs, outputs: base.getLayer('out_relu').output as tf.SymbolicTensor });
    model = gradCamModelOf(tf, { runDir: '', meta: classifierMetadata(labels, entry), model: classifier });
  });

  it('finds the un-pooled last feature map of the base (7×7×1280 for a 224-pixel input) and runs it as the folded graph', () => {
    const map = tf.tidy(() => model.featureMap(tf.zeros([1, 224, 224, 3]) as tf.Tensor4D).shape);
    assert.deepEqual(map, [1, 7, 7, 1280]);
    assert.equal(model.route, 'fused');
  });

  it("gives the classifier's own probabilities and the class-weighted map that the head's weights give by hand", async () => {
    const pixels = await decodeImage(path.join(photos, 'chelsea.jpg'), 224, 1e8);
    for (const target of [undefined, 1]) {
      const before = tf.memory().numTensors;
      const a = classActivation(tf, model, pixels, target);
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      const expected = tf.tidy(() => {
        const x = tf.tensor4d(pixels, [1, 224, 224, 3], 'float32');
        const probabilities = (classifier.predict(x) as tf.Tensor).dataSync();
        const map = layersMap.predict(tf.add(tf.mul(x, 1 / 127.5), -1)) as tf.Tensor4D;
        const [w1, b1, w2] = model.head instanceof tf.LayersModel ? model.head.getWeights() : [];
        const pooled = tf.mean(map, [1, 2]);
        const hidden = tf.add(tf.matMul(pooled, w1), b1);
        const c = target ?? probabilities.indexOf(Math.max(...probabilities));
        // d logit_c / d pooled = W1 · (relu'(hidden) ⊙ W2[:, c])
        const through = tf.mul(tf.step(hidden), tf.transpose(tf.slice(w2, [0, c], [-1, 1])));
        const g = tf.matMul(w1, tf.transpose(through));
        const cam = tf.relu(tf.matMul(tf.reshape(map, [49, 1280]), g)).dataSync();
        const max = Math.max(...cam);
        return { probabilities, c, cam: Array.from(cam, (v) => v / max) };
      });
      assert.equal(a.classIndex, expected.c);
      assert.deepEqual([a.gridWidth, a.gridHeight], [7, 7]);
      a.probabilities.forEach((p, i) => assert.ok(Math.abs(p - expected.probabilities[i]) < 1e-4, `probability ${i}`));
      a.grid.forEach((v, i) => assert.ok(Math.abs(v - expected.cam[i]) < 1e-4, `cell ${i}: ${v} vs ${expected.cam[i]}`));
      assert.equal(Math.max(...a.grid), 1);
    }
  });

  it('refuses a class the model does not have, naming its classes', () => {
    assert.throws(
      () => classIndexOf(model.meta, 'dog'),
      (err: unknown) =>
        errorKindOf(err) === 'options' && /Unknown class "dog": the model's classes are cat, coffee, motorcycle/.test(String(err)),
    );
    assert.equal(classIndexOf(model.meta, 'motorcycle'), 2);
  });

  it('refuses a base whose features are not a global average of a feature map', () => {
    const input = tf.input({ shape: [8, 8, 3] });
    const conv = tf.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same' }).apply(input) as tf.SymbolicTensor;
    const flat = tf.layers.flatten().apply(conv) as tf.SymbolicTensor;
    const base = tf.model({ inputs: input, outputs: flat });
    const head = tf.sequential({ layers: [tf.layers.dense({ inputShape: [128], units: 2, activation: 'softmax' })] });
    const entry = { ...findModel('mobilenet_v2_0.35')!, inputSize: 8 };
    const flatClassifier = buildClassifier(tf, base, head, entry);
    assert.throws(
      () => gradCamModelOf(tf, { runDir: '', meta: classifierMetadata(['a', 'b'], entry), model: flatClassifier }),
      (err: unknown) => errorKindOf(err) === 'model' && /Flatten/.test(String(err)),
    );
    flatClassifier.dispose();
  });
});
