import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS, type EpochMetrics, type TrainOptions } from '../../../../src/shared/types';
import { buildHead, dropoutMasks, predictProbs, trainHead, type FeatureSet } from '../../../../src/training/fit/head';
import type { HeadRuntime } from '../../../../src/training/onnx/onnxHead';
import { loadOnnxRuntime } from '../../../../src/training/onnx/onnxFeatures';
import { balancedClassWeights, EarlyStopping, ReduceLrOnPlateau } from '../../../../src/training/fit/trainingPolicies';
import { seededRandom, shuffledIndices } from '../../../../src/training/util/random';

const FEATURES = 16;
const CLASSES = 3;

/** `perClass` points around each of 3 well-separated centres; `relabel` maps true class → stored label. */
function clusters(perClass: number, seed: number, relabel: (c: number) => number = (c) => c): FeatureSet {
  const random = seededRandom(seed);
  const n = perClass * CLASSES;
  const x = new Float32Array(n * FEATURES);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    y[i] = relabel(c);
    for (let f = 0; f < FEATURES; f++) {
      const centre = f % CLASSES === c ? 2 : 0;
      x[i * FEATURES + f] = centre + (random() - 0.5) * 0.6;
    }
  }
  return { x, y, n, featureSize: FEATURES };
}

function options(over: Partial<TrainOptions>): TrainOptions {
  return { ...DEFAULT_TRAIN_OPTIONS, hiddenUnits: 16, batchSize: 8, ...over };
}

function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.getWeights().map((w) => w.dataSync().slice() as Float32Array);
}

const runtimes: Record<'tfjs' | 'onnx', HeadRuntime> = { tfjs: { kind: 'tfjs' }, onnx: { kind: 'tfjs' } };

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
  const ort = await loadOnnxRuntime();
  assert.notEqual(typeof ort, 'string', `onnxruntime-node must load for these tests: ${String(ort)}`);
  if (typeof ort !== 'string') runtimes.onnx = { kind: 'onnx', ort, threads: 2 };
});

for (const runtimeName of ['tfjs', 'onnx'] as const) {
  describe(`trainHead with its steps on ${runtimeName === 'tfjs' ? 'tfjs WebAssembly' : 'onnxruntime'}`, () => {
    const trainHeadOn = (
      head: tf.LayersModel,
      train: FeatureSet,
      val: FeatureSet,
      classes: number,
      o: TrainOptions,
      control: Parameters<typeof trainHead>[6],
    ) => trainHead(tf, head, train, val, classes, o, control, runtimes[runtimeName]);
    it('separates three feature clusters to 100% validation accuracy without leaking tensors', async () => {
      const train = clusters(20, 1);
      const val = clusters(10, 2);
      const o = options({ epochs: 15, learningRate: 0.01 });
      const head = buildHead(tf, FEATURES, CLASSES, o);
      const tensorsBefore = tf.memory().numTensors;
      const epochs: EpochMetrics[] = [];
      const result = await trainHeadOn(head, train, val, CLASSES, o, { callbacks: [{ onEpochEnd: (m) => void epochs.push(m) }] });
      assert.equal(tf.memory().numTensors, tensorsBefore, 'every batch tensor, optimizer slot and best-weights copy is disposed');
      assert.equal(result.epochsRun, epochs.length);
      assert.deepEqual(result.history, epochs);
      const last = result.history[result.history.length - 1];
      assert.equal(last.valAcc, 1);
      assert.ok(last.loss < result.history[0].loss, 'training loss went down');
      for (const m of result.history) {
        assert.equal(m.stage, 'head');
        assert.equal(m.lr, 0.01);
        assert.ok(Number.isFinite(m.valLoss) && m.durationMs >= 0);
      }
      const probs = await predictProbs(tf, head, val);
      assert.equal(probs.length, val.n * CLASSES);
      for (let i = 0; i < val.n; i++) {
        const row = Array.from(probs.subarray(i * CLASSES, (i + 1) * CLASSES));
        assert.equal(row.indexOf(Math.max(...row)), val.y[i]);
        assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-5);
      }
      assert.equal(tf.memory().numTensors, tensorsBefore);
      head.dispose();
    });

    it('is deterministic given the seed, dropout included', async () => {
      const train = clusters(12, 3);
      const val = clusters(4, 4);
      const o = options({ epochs: 3, dropout: 0.3, seed: 7 });
      const runs: Float32Array[][] = [];
      for (let r = 0; r < 2; r++) {
        const head = buildHead(tf, FEATURES, CLASSES, o);
        await trainHeadOn(head, train, val, CLASSES, o, {});
        runs.push(weightsOf(head));
        head.dispose();
      }
      runs[0].forEach((w, i) => assert.deepEqual(w, runs[1][i]));
    });

    it('stops early when validation loss worsens and restores the best epoch weights', async () => {
      const train = clusters(20, 5);
      // Validation images of class 2 carry label 0: the better the head learns, the worse their loss.
      const val = clusters(10, 6, (c) => (c === 2 ? 0 : c));
      const o = options({ epochs: 30, learningRate: 0.01, patience: 3, lrPatience: 0 });
      const head = buildHead(tf, FEATURES, CLASSES, o);
      const atBest = new Map<number, Float32Array[]>();
      const bestCalls: number[] = [];
      const result = await trainHeadOn(head, train, val, CLASSES, o, {
        callbacks: [
          {
            onNewBest: (epoch) => {
              bestCalls.push(epoch);
              atBest.set(epoch, weightsOf(head));
            },
          },
        ],
      });
      assert.equal(result.stoppedBy, 'early-stopping');
      assert.equal(result.epochsRun, result.bestEpoch + 3, 'stops after exactly `patience` epochs without a new best');
      assert.equal(bestCalls[bestCalls.length - 1], result.bestEpoch);
      const losses = result.history.map((m) => m.valLoss);
      assert.equal(Math.min(...losses), losses[result.bestEpoch - 1]);
      const finalWeights = weightsOf(head);
      atBest.get(result.bestEpoch)!.forEach((w, i) => assert.deepEqual(finalWeights[i], w, `weight ${i} restored bit for bit`));
      // and the restored head is the best epoch's head, not the last one
      const probs = await predictProbs(tf, head, val);
      let loss = 0;
      for (let i = 0; i < val.n; i++) loss -= Math.log(Math.max(1e-7, probs[i * CLASSES + val.y[i]]));
      assert.ok(Math.abs(loss / val.n - losses[result.bestEpoch - 1]) < 1e-4);
      head.dispose();
    });

    it('halves the learning rate after lrPatience epochs without a better validation loss', async () => {
      const train = clusters(20, 7);
      const val = clusters(10, 8, (c) => (c === 2 ? 0 : c));
      const o = options({ epochs: 10, learningRate: 0.01, patience: 0, lrPatience: 2, lrFactor: 0.5 });
      const head = buildHead(tf, FEATURES, CLASSES, o);
      const result = await trainHeadOn(head, train, val, CLASSES, o, {});
      assert.equal(result.stoppedBy, 'epochs');
      assert.equal(result.epochsRun, 10);
      const lrs = result.history.map((m) => m.lr);
      assert.ok(
        lrs.some((lr) => lr === 0.005),
        `the rate was halved at least once: ${lrs.join(', ')}`,
      );
      let best = Infinity;
      let wait = 0;
      let expected = 0.01;
      result.history.forEach((m, e) => {
        assert.equal(m.lr, expected, `epoch ${e + 1}`);
        if (m.valLoss < best) {
          best = m.valLoss;
          wait = 0;
        } else if (++wait >= 2) {
          expected /= 2;
          wait = 0;
        }
      });
      head.dispose();
    });

    it('stops after the current batch on cancel and keeps the best epoch weights', async () => {
      const train = clusters(20, 9); // 60 rows, batch 8: 8 batches per epoch
      const val = clusters(5, 10);
      const o = options({ epochs: 10 });
      const head = buildHead(tf, FEATURES, CLASSES, o);
      const tensorsBefore = tf.memory().numTensors;
      let batches = 0;
      let cancelAt = Infinity;
      let bestWeights: Float32Array[] = [];
      const cancel = new AbortController();
      const result = await trainHeadOn(head, train, val, CLASSES, o, {
        signal: cancel.signal,
        callbacks: [
          {
            onBatchEnd: () => {
              if (++batches >= cancelAt) cancel.abort();
            },
            onNewBest: () => void (bestWeights = weightsOf(head)),
            onEpochEnd: (m) => {
              if (m.epoch === 2) cancelAt = batches + 3; // cancel in the middle of epoch 3
            },
          },
        ],
      });
      assert.equal(result.stoppedBy, 'cancel');
      assert.equal(batches, 8 * 2 + 3, 'no batch ran after the cancel request');
      assert.equal(result.epochsRun, 2, 'the interrupted epoch is not reported');
      assert.ok(result.bestEpoch >= 1 && result.bestEpoch <= 2);
      weightsOf(head).forEach((w, i) => assert.deepEqual(w, bestWeights[i]));
      assert.equal(tf.memory().numTensors, tensorsBefore);
      head.dispose();
    });

    it('weights classes inversely to their frequency when asked to', async () => {
      // 3:1 imbalance; the balanced loss still trains, and the weighted loss differs from the plain one.
      const big = clusters(12, 11);
      const keep = Array.from({ length: big.n }, (_, i) => i).filter((i) => big.y[i] !== 2 || i % 4 === 2);
      const x = new Float32Array(keep.length * FEATURES);
      keep.forEach((r, i) => x.set(big.x.subarray(r * FEATURES, (r + 1) * FEATURES), i * FEATURES));
      const train: FeatureSet = { x, y: Int32Array.from(keep.map((r) => big.y[r])), n: keep.length, featureSize: FEATURES };
      const val = clusters(4, 12);
      const losses: number[] = [];
      for (const classWeights of [false, true]) {
        const o = options({ epochs: 1, dropout: 0, classWeights });
        const head = buildHead(tf, FEATURES, CLASSES, o);
        const r = await trainHeadOn(head, train, val, CLASSES, o, {});
        losses.push(r.history[0].loss);
        head.dispose();
      }
      assert.notEqual(losses[0], losses[1]);
    });
  });
}

describe('the onnxruntime head engine against tfjs automatic differentiation', () => {
  /** Trains two heads from the same seed, one per runtime, and returns their histories and weights. */
  async function both(train: FeatureSet, val: FeatureSet, classes: number, o: TrainOptions) {
    const out: { history: EpochMetrics[]; weights: Float32Array[] }[] = [];
    for (const runtime of [runtimes.tfjs, runtimes.onnx]) {
      const head = buildHead(tf, train.featureSize, classes, o);
      const r = await trainHead(tf, head, train, val, classes, o, {}, runtime);
      out.push({ history: r.history, weights: weightsOf(head) });
      head.dispose();
    }
    return out;
  }

  function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
    let d = 0;
    a.forEach((w, i) => w.forEach((x, j) => (d = Math.max(d, Math.abs(x - b[i][j])))));
    return d;
  }

  it('takes the same Adam step from the same weights, dropout and class weights included', async () => {
    const train = clusters(8, 21); // 24 rows = one batch
    const val = clusters(2, 22);
    const o = options({ epochs: 1, batchSize: 24, dropout: 0.25, classWeights: true, learningRate: 0.01, patience: 0 });
    const [a, b] = await both(train, val, CLASSES, o);
    const before = buildHead(tf, FEATURES, CLASSES, o);
    const initial = weightsOf(before);
    before.dispose();
    assert.ok(maxAbsDiff(initial, a.weights) > 5e-3, 'the step moved the weights');
    assert.ok(maxAbsDiff(a.weights, b.weights) < 1e-6, `max |tfjs - onnx| = ${maxAbsDiff(a.weights, b.weights)}`);
    const [ma, mb] = [a.history[0], b.history[0]];
    assert.ok(
      Math.abs(ma.loss - mb.loss) < 1e-5 && Math.abs(ma.valLoss - mb.valLoss) < 1e-5,
      `${JSON.stringify(ma)} vs ${JSON.stringify(mb)}`,
    );
    assert.equal(ma.acc, mb.acc);
  });

  it('follows tfjs over several epochs on wider, overlapping data', async () => {
    const F = 96;
    const random = seededRandom(31);
    const make = (n: number): FeatureSet => {
      const x = new Float32Array(n * F);
      const y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        y[i] = i % 4;
        for (let f = 0; f < F; f++) x[i * F + f] = Math.max(0, (f % 4 === y[i] ? 0.8 : 0) + random() * 1.5 - 0.5);
      }
      return { x, y, n, featureSize: F };
    };
    const o = options({ epochs: 6, hiddenUnits: 32, batchSize: 16, dropout: 0.2, learningRate: 3e-3, patience: 0 });
    const [a, b] = await both(make(120), make(40), 4, o);
    assert.equal(a.history.length, 6);
    a.history.forEach((m, e) => {
      const n = b.history[e];
      assert.ok(
        Math.abs(m.loss - n.loss) < 1e-4 && Math.abs(m.valLoss - n.valLoss) < 1e-4,
        `epoch ${e + 1}: ${JSON.stringify(m)} vs ${JSON.stringify(n)}`,
      );
    });
    assert.ok(a.history[5].loss < a.history[0].loss, 'it learned');
    assert.ok(maxAbsDiff(a.weights, b.weights) < 1e-4, `max |tfjs - onnx| = ${maxAbsDiff(a.weights, b.weights)}`);
  });

  it('agrees where the clipped cross-entropy stops the gradient (saturated probabilities)', async () => {
    const big = clusters(8, 23);
    const train: FeatureSet = { ...big, x: big.x.map((v) => v * 400) };
    const o = options({ epochs: 2, batchSize: 8, dropout: 0, learningRate: 0.05, patience: 0 });
    const [a, b] = await both(train, clusters(2, 24), CLASSES, o);
    assert.ok(maxAbsDiff(a.weights, b.weights) < 1e-5, `max |tfjs - onnx| = ${maxAbsDiff(a.weights, b.weights)}`);
  });
});

describe('head dropout masks', () => {
  it('drop about `rate` of the units, scale the rest by 1/(1 - rate), and repeat from the seed', () => {
    const a = dropoutMasks(5, 0.25, 100)(50)!;
    const b = dropoutMasks(5, 0.25, 100)(50)!;
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, dropoutMasks(6, 0.25, 100)(50));
    const dropped = a.filter((v) => v === 0).length / a.length;
    assert.ok(dropped > 0.22 && dropped < 0.28, `dropped ${dropped}`);
    assert.ok(a.every((v) => v === 0 || v === Math.fround(1 / 0.75)));
    assert.equal(dropoutMasks(5, 0, 100)(50), undefined);
  });
});

describe('training callbacks without tfjs', () => {
  it('early stopping reports the best epoch and stops after `patience` epochs without improvement', () => {
    const es = new EarlyStopping(2);
    assert.deepEqual(es.update(1, 1.0), { improved: true, stop: false });
    assert.deepEqual(es.update(2, 0.8), { improved: true, stop: false });
    assert.deepEqual(es.update(3, 0.8), { improved: false, stop: false });
    assert.deepEqual(es.update(4, 0.9), { improved: false, stop: true });
    assert.equal(es.bestEpoch, 2);
    assert.equal(es.bestValue, 0.8);
  });

  it('early stopping with patience 0 never stops and never takes NaN as a best', () => {
    const es = new EarlyStopping(0);
    es.update(1, 0.5);
    for (let e = 2; e < 50; e++) assert.equal(es.update(e, Number.NaN).stop, false);
    assert.equal(es.bestEpoch, 1);
  });

  it('early stopping seeded with a previous best only improves on it', () => {
    const es = new EarlyStopping(3);
    es.seed(10, 0.2);
    assert.equal(es.update(11, 0.3).improved, false);
    assert.equal(es.bestEpoch, 10);
    assert.equal(es.update(12, 0.1).improved, true);
    assert.equal(es.bestEpoch, 12);
  });

  it('reduce-on-plateau multiplies the rate by the factor after `patience` flat epochs, then waits again', () => {
    const r = new ReduceLrOnPlateau(1e-3, 0.5, 2, 1e-4);
    assert.equal(r.update(1.0), 1e-3);
    assert.equal(r.update(1.1), 1e-3);
    assert.equal(r.update(1.0), 5e-4);
    assert.equal(r.update(1.0), 5e-4);
    assert.equal(r.update(1.0), 2.5e-4);
    assert.equal(r.update(0.5), 2.5e-4);
    r.update(0.6);
    r.update(0.6);
    r.update(0.6);
    assert.equal(r.update(0.6), 1e-4, 'never below minLr');
  });

  it('shuffles deterministically from the seed', () => {
    const a = shuffledIndices(20, seededRandom(42));
    const b = shuffledIndices(20, seededRandom(42));
    const c = shuffledIndices(20, seededRandom(43));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.deepEqual(
      [...a].sort((p, q) => p - q),
      Array.from({ length: 20 }, (_, i) => i),
    );
  });

  it('balanced class weights give every present class the same total weight', () => {
    const w = balancedClassWeights([0, 0, 0, 1, 2, 2], 4);
    assert.deepEqual(Array.from(w), [Math.fround(6 / 9), 2, 1, 0]);
    assert.ok(Math.abs(3 * w[0] - 1 * w[1]) < 1e-6 && Math.abs(2 * w[2] - w[1]) < 1e-6);
  });
});
