import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import { outOfSampleProbs, stratifiedFolds, subsetRows } from '../../../../src/training/fit/crossValidation';
import type { FeatureSet } from '../../../../src/training/fit/head';
import type { HeadRuntime } from '../../../../src/training/onnx/onnxHead';
import { loadOnnxRuntime } from '../../../../src/training/onnx/onnxFeatures';
import { seededRandom } from '../../../../src/training/util/random';

const FEATURES = 12;
const CLASSES = 3;

/** `perClass` points around each of 3 separated centres; labels of the rows in `flipped` moved to the next class. */
function clusters(perClass: number, flipped: Set<number>): FeatureSet {
  const random = seededRandom(7);
  const n = perClass * CLASSES;
  const x = new Float32Array(n * FEATURES);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    y[i] = flipped.has(i) ? (c + 1) % CLASSES : c;
    for (let f = 0; f < FEATURES; f++) x[i * FEATURES + f] = (f % CLASSES === c ? 2 : 0) + (random() - 0.5) * 0.8;
  }
  return { x, y, n, featureSize: FEATURES };
}

describe('stratifiedFolds', () => {
  const y = Int32Array.from({ length: 103 }, (_, i) => (i < 60 ? 0 : i < 90 ? 1 : 2));

  it('spreads every class evenly over the folds and is the same for the same seed', () => {
    const folds = stratifiedFolds(y, 5, 3);
    for (const c of [0, 1, 2]) {
      const counts = [0, 0, 0, 0, 0];
      y.forEach((label, i) => {
        if (label === c) counts[folds[i]]++;
      });
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `class ${c}: ${counts.join(',')}`);
    }
    assert.deepEqual(stratifiedFolds(y, 5, 3), folds);
    assert.notDeepEqual(stratifiedFolds(y, 5, 4), folds);
  });

  it('keeps the rows of a group in one fold', () => {
    const groups = Int32Array.from(y, (_, i) => Math.floor(i / 4));
    const folds = stratifiedFolds(y, 5, 1, groups);
    for (let i = 0; i < y.length; i++) {
      for (let j = 0; j < y.length; j++) if (groups[i] === groups[j]) assert.equal(folds[i], folds[j]);
    }
  });

  it('refuses fewer than 2 folds', () => {
    assert.throws(() => stratifiedFolds(y, 1, 0), /at least 2 folds/);
  });
});

describe('outOfSampleProbs', () => {
  const runtimes: Record<string, HeadRuntime> = { tfjs: { kind: 'tfjs' } };
  before(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    const ort = await loadOnnxRuntime();
    assert.notEqual(typeof ort, 'string', `onnxruntime-node must load: ${String(ort)}`);
    if (typeof ort !== 'string') runtimes.onnx = { kind: 'onnx', ort, threads: 2 };
  });

  for (const name of ['tfjs', 'onnx']) {
    it(`predicts each row with a head that never saw it, so flipped labels get a low probability (${name})`, async () => {
      const flipped = new Set([4, 17, 31, 50, 77]);
      const set = clusters(30, flipped);
      const options = { ...DEFAULT_TRAIN_OPTIONS, hiddenUnits: 16, batchSize: 8, epochs: 20, learningRate: 0.01 };
      let foldsSeen = 0;
      const oos = await outOfSampleProbs(tf, set, CLASSES, options, { folds: 5, seed: 1, onFold: () => foldsSeen++ }, runtimes[name]);
      assert.equal(foldsSeen, 5);
      for (const i of flipped) {
        const given = oos.probs[i * CLASSES + set.y[i]];
        const truth = oos.probs[i * CLASSES + (i % CLASSES)];
        assert.ok(given < 0.3 && truth > given, `row ${i}: probability of its (wrong) label ${given}, of its true class ${truth}`);
      }
      // Every row but the flipped ones is predicted right: accuracy is (n - 5) / n.
      assert.equal(oos.accuracy, (set.n - flipped.size) / set.n);
      for (let i = 0; i < set.n; i++) {
        const row = oos.probs.subarray(i * CLASSES, (i + 1) * CLASSES);
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-4);
      }
    });
  }

  it('subsetRows copies the listed rows in order', () => {
    const set = clusters(2, new Set());
    const sub = subsetRows(set, [5, 0]);
    assert.deepEqual([...sub.y], [set.y[5], set.y[0]]);
    assert.deepEqual([...sub.x.subarray(0, FEATURES)], [...set.x.subarray(5 * FEATURES, 6 * FEATURES)]);
  });
});
