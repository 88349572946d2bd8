// The epoch loop itself, on the real tfjs step engine (WebAssembly) with a softmax regression:
// the order its callbacks are called in, what a callback's stop does, the cancel signal, the
// injected clock, and the best weights it ends with.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../../../../src/shared/types';
import { timeLimitCallback } from '../../../../src/training/fit/callbacks';
import {
  gatherRows,
  runTrainingLoop,
  scoreProbabilities,
  tfjsStepEngine,
  type LoopSpec,
  type Rows,
  type TrainingCallback,
} from '../../../../src/training/fit/trainingLoop';
import { seededRandom } from '../../../../src/training/util/random';

const FEATURES = 6;
const CLASSES = 3;

/** Points near one of three centres, `perClass` per class; `relabel` maps the true class to the stored label. */
function rows(perClass: number, seed: number, relabel: (c: number) => number = (c) => c): Rows {
  const random = seededRandom(seed);
  const n = perClass * CLASSES;
  const x = new Float32Array(n * FEATURES);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % CLASSES;
    y[i] = relabel(c);
    for (let f = 0; f < FEATURES; f++) x[i * FEATURES + f] = (f % CLASSES === c ? 1.5 : 0) + (random() - 0.5) * 0.5;
  }
  return { x, rowShape: [FEATURES], y, n };
}

function options(over: Partial<TrainOptions> = {}): TrainOptions {
  return { ...DEFAULT_TRAIN_OPTIONS, batchSize: 10, patience: 0, lrPatience: 0, ...over };
}

/** A softmax regression's variables and a loop spec training them with the real tfjs engine. */
function softmaxSpec(train: Rows, val: Rows, epochs: number, learningRate = 0.1): { spec: LoopSpec; weights(): Float32Array[] } {
  const w = tf.variable(tf.randomNormal([FEATURES, CLASSES], 0, 0.1, 'float32', 7));
  const b = tf.variable(tf.zeros([CLASSES]));
  const engine = tfjsStepEngine(tf, {
    variables: [w, b],
    forward: (x) => tf.softmax(tf.add(tf.matMul(x as tf.Tensor2D, w), b)) as tf.Tensor2D,
    numClasses: CLASSES,
    learningRate,
    classWeights: null,
  });
  return {
    spec: { stage: 'head', engine, train, val, learningRate, epochs, startEpoch: 0 },
    weights: () => [w, b].map((v) => v.dataSync().slice() as Float32Array),
  };
}

/** A callback that records every call it gets, as `name:args`. */
function recorder(log: string[]): TrainingCallback {
  return {
    onBatchEnd: (batch, batches, epoch) => void log.push(`batch:${epoch}.${batch}/${batches}`),
    onEpochEnd: (m) => void log.push(`epoch:${m.epoch}`),
    onNewBest: (epoch) => void log.push(`best:${epoch}`),
    onTrainEnd: (r) => void log.push(`end:${r.stoppedBy}:${r.epochsRun}`),
  };
}

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('runTrainingLoop', () => {
  it('calls every callback in list order: batches, then the epoch end, then a new best, and the train end once', async () => {
    const { spec } = softmaxSpec(rows(10, 1), rows(5, 2), 2);
    const first: string[] = [];
    const second: string[] = [];
    const result = await runTrainingLoop(spec, options(), { callbacks: [recorder(first), recorder(second)] });
    spec.engine.dispose();
    assert.deepEqual(first, second);
    // 30 rows in batches of 10: 3 batches an epoch; the loss falls both epochs, so both are new bests.
    assert.deepEqual(first, [
      'batch:1.1/3',
      'batch:1.2/3',
      'batch:1.3/3',
      'epoch:1',
      'best:1',
      'batch:2.1/3',
      'batch:2.2/3',
      'batch:2.3/3',
      'epoch:2',
      'best:2',
      'end:epochs:2',
    ]);
    assert.equal(result.bestEpoch, 2);
  });

  it('stops after the epoch in which a callback asks, with that reason, and still restores the best weights', async () => {
    // Validation labels of class 2 are wrong: the better the model learns, the worse their loss.
    const { spec, weights } = softmaxSpec(
      rows(10, 3),
      rows(5, 4, (c) => (c === 2 ? 0 : c)),
      50,
      0.3,
    );
    const atBest = new Map<number, Float32Array[]>();
    const stopAt: TrainingCallback = { onEpochEnd: (m, loop) => (m.epoch === 6 ? loop.stop('time-limit') : undefined) };
    const keep: TrainingCallback = { onNewBest: (epoch) => void atBest.set(epoch, weights()) };
    const result = await runTrainingLoop(spec, options(), { callbacks: [stopAt, keep] });
    spec.engine.dispose();
    assert.equal(result.stoppedBy, 'time-limit');
    assert.equal(result.epochsRun, 6);
    assert.ok(result.bestEpoch >= 1 && result.bestEpoch <= 6);
    weights().forEach((w, i) => assert.deepEqual(w, atBest.get(result.bestEpoch)![i]));
  });

  it('reports the first stop asked for when two callbacks ask in the same epoch, and calls the train end once', async () => {
    const { spec } = softmaxSpec(rows(10, 3), rows(5, 4), 50);
    const ends: string[] = [];
    const callbacks: TrainingCallback[] = [
      { onEpochEnd: (m, loop) => (m.epoch === 2 ? loop.stop('time-limit') : undefined) },
      { onEpochEnd: (m, loop) => (m.epoch === 2 ? loop.stop('cancel') : undefined), onTrainEnd: (r) => void ends.push(r.stoppedBy) },
    ];
    const result = await runTrainingLoop(spec, options(), { callbacks });
    spec.engine.dispose();
    assert.equal(result.stoppedBy, 'time-limit');
    assert.equal(result.epochsRun, 2);
    assert.deepEqual(ends, ['time-limit']);
  });

  it('an aborted signal stops within the batch it was aborted in, reports no partial epoch and keeps the best weights', async () => {
    const { spec, weights } = softmaxSpec(rows(10, 5), rows(5, 6), 20);
    const cancel = new AbortController();
    let best: Float32Array[] = [];
    let batches = 0;
    const result = await runTrainingLoop(spec, options(), {
      signal: cancel.signal,
      callbacks: [
        {
          onBatchEnd: (batch, _n, epoch) => {
            batches++;
            if (epoch === 3 && batch === 2) cancel.abort();
          },
          onNewBest: () => void (best = weights()),
        },
      ],
    });
    spec.engine.dispose();
    assert.equal(result.stoppedBy, 'cancel');
    assert.equal(batches, 3 + 3 + 2);
    assert.equal(result.epochsRun, 2);
    assert.equal(result.history.length, 2);
    weights().forEach((w, i) => assert.deepEqual(w, best[i]));
  });

  it('measures epoch durations with the injected clock', async () => {
    const { spec } = softmaxSpec(rows(4, 7), rows(2, 8), 3);
    let t = 1000;
    const result = await runTrainingLoop(spec, options(), {
      now: () => t,
      callbacks: [{ onBatchEnd: () => void (t += 25) }],
    });
    spec.engine.dispose();
    // 12 rows in batches of 10: 2 batches, 50 ms an epoch by the injected clock.
    assert.deepEqual(
      result.history.map((m) => m.durationMs),
      [50, 50, 50],
    );
  });

  it('refuses to train on no rows', async () => {
    const { spec } = softmaxSpec({ x: new Float32Array(0), rowShape: [FEATURES], y: new Int32Array(0), n: 0 }, rows(2, 9), 3);
    await assert.rejects(runTrainingLoop(spec, options()), /No training images/);
    spec.engine.dispose();
  });
});

describe('timeLimitCallback', () => {
  it('lets epochs run until the limit has passed, then stops once, after that epoch', () => {
    let now = 0;
    const stops: number[] = [];
    const reasons: string[] = [];
    const cb = timeLimitCallback(
      1000,
      0,
      (elapsed) => stops.push(elapsed),
      () => now,
    );
    const loop = { stop: (r: string) => void reasons.push(r) };
    const metrics = { stage: 'head' as const, epoch: 1, loss: 1, acc: 0, valLoss: 1, valAcc: 0, lr: 1e-3, durationMs: 1 };
    for (const t of [400, 999]) {
      now = t;
      cb.onEpochEnd!(metrics, loop);
    }
    assert.deepEqual(reasons, []);
    now = 1000;
    cb.onEpochEnd!(metrics, loop);
    assert.deepEqual(reasons, ['time-limit']);
    assert.deepEqual(stops, [1000]);
  });
});

describe('gatherRows and scoreProbabilities', () => {
  it('gathers rows in the given order into a reused buffer, with their labels', () => {
    const r = rows(2, 10);
    const into = new Float32Array(10 * FEATURES);
    const { x, y } = gatherRows(r, Int32Array.from([5, 0, 3]), 0, 3, into);
    assert.equal(x.buffer, into.buffer);
    assert.deepEqual(Array.from(y), [r.y[5], r.y[0], r.y[3]]);
    assert.deepEqual(Array.from(x.subarray(0, FEATURES)), Array.from(r.x.subarray(5 * FEATURES, 6 * FEATURES)));
  });

  it('scores clipped cross-entropy (times class weights) and arg-max hits, first class on ties', () => {
    const probs = Float32Array.from([0.5, 0.5, 0, 0.1, 0.2, 0.7]);
    const acc = { loss: 0, hits: 0 };
    scoreProbabilities(probs, Int32Array.from([0, 2]), 3, acc, Float32Array.from([2, 1, 3]));
    assert.equal(acc.hits, 2);
    assert.ok(Math.abs(acc.loss - (-2 * Math.log(0.5) - 3 * Math.log(0.7))) < 1e-6, String(acc.loss));
  });
});
