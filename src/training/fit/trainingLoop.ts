// The epoch loop shared by head training and fine-tuning: a custom loop (not `model.fit`) so
// that the forward pass decides each layer's training mode (BatchNorm in inference, Dropout in
// training), the learning rate can change between epochs, cancel is checked after every batch,
// and the best weights are kept and restored at the end.
//
// What a step computes and where is a `StepEngine`: tfjs with automatic differentiation
// (`tfjsStepEngine`, any backend, any trainable variables), or the head's hand-written graph on
// onnxruntime (onnxHead.ts). The loop itself only sees numbers.

import type * as tf from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';
import type { EpochMetrics, TrainOptions } from '../../shared/types';
import { argMaxRow } from './evaluation';
import { balancedClassWeights, EarlyStopping, ReduceLrOnPlateau } from './trainingPolicies';
import { seededRandom, shuffledIndices } from '../util/random';

/** Rows of equal shape stored back to back: `x.length === n * product(rowShape)`. */
export interface Rows {
  x: Float32Array;
  rowShape: number[];
  y: Int32Array;
  n: number;
}

/** Why a loop ended. */
export type StopReason = 'epochs' | 'early-stopping' | 'cancel' | 'time-limit';

/** What a callback may do to the loop that calls it. */
export interface LoopHandle {
  /** Ends training after the current epoch (the best weights are still restored). */
  stop(reason: StopReason): void;
}

/**
 * An observer of the epoch loop, Keras/tfjs style: every method is optional, called in list order.
 * Checkpoints, metrics logging, progress and limits are callbacks; early stopping and LR reduction
 * are the loop's own policies.
 */
export interface TrainingCallback {
  onBatchEnd?(batch: number, batchesPerEpoch: number, epoch: number): void;
  onEpochEnd?(m: EpochMetrics, loop: LoopHandle): void | Promise<void>;
  /** A new best validation epoch: the engine's weights are that epoch's (save a checkpoint here). */
  onNewBest?(epoch: number, valAcc: number, valLoss: number): void | Promise<void>;
  onTrainEnd?(result: LoopResult): void | Promise<void>;
}

/** How a loop is observed and stopped from outside. */
export interface LoopControl {
  callbacks?: readonly TrainingCallback[];
  /** Cooperative cancel, checked after every batch. */
  signal?: AbortSignal;
  /** Injected clock (milliseconds) for tests. */
  now?(): number;
}

/** Where and how the optimizer steps run; the loop owns the schedule, the engine the weights. */
export interface StepEngine {
  /** One Adam step on the rows `order[start..end)` of `rows` at learning rate `lr`. */
  step(rows: Rows, order: Int32Array, start: number, end: number, lr: number): void | Promise<void>;
  /** Σ(batch mean loss × batch rows) and Σ correct rows of the steps since the last call; then resets them. */
  takeEpochTotals(): { lossSum: number; hits: number };
  /** Mean cross-entropy and accuracy over `rows` in inference mode (no dropout). */
  evaluate(rows: Rows): { loss: number; acc: number } | Promise<{ loss: number; acc: number }>;
  /** Remembers the current weights as the best. */
  keepBest(): void;
  /** Puts the remembered best weights back; nothing when none was kept. */
  restoreBest(): void;
  /** Makes the current weights those of the model the caller saves (when the engine keeps its own copy). */
  publish?(): void;
  dispose(): void;
}

export interface LoopSpec {
  stage: EpochMetrics['stage'];
  engine: StepEngine;
  train: Rows;
  val: Rows;
  learningRate: number;
  epochs: number;
  /** Epochs already run before this stage; reported epochs continue from here. */
  startEpoch: number;
  /** The validation loss/accuracy before this stage, when the weights already have a best (fine-tuning). */
  baseline?: { valLoss: number; valAcc: number };
}

export interface LoopResult {
  /** Epoch (over the whole run) whose weights were kept; `startEpoch` when no epoch of this stage improved. 0: none. */
  bestEpoch: number;
  epochsRun: number;
  history: EpochMetrics[];
  stoppedBy: StopReason;
}

// Keras clips probabilities to [eps, 1 - eps] before the log of the cross-entropy.
export const PROB_EPSILON = 1e-7;
const EVAL_BATCH = 128;

/** Balanced class weights of the training labels when `o.classWeights`, else null (every row weighs 1). */
export function classWeightsFor(train: Rows, numClasses: number, o: TrainOptions): Float32Array | null {
  return o.classWeights ? balancedClassWeights(train.y, numClasses) : null;
}

/** Per-row categorical cross-entropy of probabilities against integer labels. */
function crossEntropy(tfx: Tf, probs: tf.Tensor2D, labels: tf.Tensor1D, numClasses: number): tf.Tensor1D {
  const oneHot = tfx.oneHot(labels, numClasses).toFloat();
  const logP = tfx.log(tfx.clipByValue(probs, PROB_EPSILON, 1 - PROB_EPSILON));
  return tfx.neg(tfx.sum(tfx.mul(oneHot, logP), -1)) as tf.Tensor1D;
}

/** Values per row. */
function rowSize(rows: Rows): number {
  return rows.rowShape.reduce((a, b) => a * b, 1);
}

/** Copies the rows `order[start..end)` (or `start..end` without an order) back to back into `into` (or a new array), with their labels. */
export function gatherRows(
  rows: Rows,
  order: Int32Array | null,
  start: number,
  end: number,
  into?: Float32Array,
): { x: Float32Array; y: Int32Array } {
  const size = rowSize(rows);
  const count = end - start;
  const x = into ? into.subarray(0, count * size) : new Float32Array(count * size);
  const y = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const r = order ? order[start + i] : start + i;
    x.set(rows.x.subarray(r * size, (r + 1) * size), i * size);
    y[i] = rows.y[r];
  }
  return { x, y };
}

function gatherBatch(tfx: Tf, rows: Rows, order: Int32Array | null, start: number, end: number): [tf.Tensor, tf.Tensor1D] {
  const { x, y } = gatherRows(rows, order, start, end);
  return [tfx.tensor(x, [end - start, ...rows.rowShape]), tfx.tensor1d(y, 'int32')];
}

/** Mean cross-entropy and accuracy of `forward` (inference mode) over `rows`. */
export function evaluateRows(
  tfx: Tf,
  forward: (x: tf.Tensor, training: boolean) => tf.Tensor2D,
  rows: Rows,
  numClasses: number,
): { loss: number; acc: number } {
  if (rows.n === 0) return { loss: Number.NaN, acc: Number.NaN };
  let loss = 0;
  let correct = 0;
  for (let start = 0; start < rows.n; start += EVAL_BATCH) {
    const end = Math.min(rows.n, start + EVAL_BATCH);
    const [sumLoss, sumCorrect] = tfx.tidy(() => {
      const [xb, yb] = gatherBatch(tfx, rows, null, start, end);
      const probs = forward(xb, false);
      const ce = crossEntropy(tfx, probs, yb, numClasses);
      const hits = tfx.equal(tfx.argMax(probs, -1), yb).toFloat();
      return [tfx.sum(ce).dataSync()[0], tfx.sum(hits).dataSync()[0]];
    });
    loss += sumLoss;
    correct += sumCorrect;
  }
  return { loss: loss / rows.n, acc: correct / rows.n };
}

/**
 * Adds the clipped cross-entropy (times the row's class weight, when given) and the hit (arg-max,
 * first on ties, equals the label) of each probability row to `acc`.
 */
export function scoreProbabilities(
  probs: Float32Array,
  labels: Int32Array,
  numClasses: number,
  acc: { loss: number; hits: number },
  classWeights?: Float32Array | null,
): void {
  for (let i = 0; i < labels.length; i++) {
    if (argMaxRow(probs, i, numClasses) === labels[i]) acc.hits++;
    const p = Math.min(1 - PROB_EPSILON, Math.max(PROB_EPSILON, probs[i * numClasses + labels[i]]));
    acc.loss -= Math.log(p) * (classWeights ? classWeights[labels[i]] : 1);
  }
}

export interface TfjsEngineSpec {
  /** The variables the optimizer updates; the best epoch's values are restored at the end. */
  variables: tf.Variable[];
  /** Class probabilities [batch, classes] for a batch of rows; `training` is true for optimizer steps. */
  forward(x: tf.Tensor, training: boolean): tf.Tensor2D;
  numClasses: number;
  learningRate: number;
  classWeights: Float32Array | null;
}

/** Steps on tfjs: the loss is differentiated automatically, so any variables (head, unfrozen base layers) can train. */
export function tfjsStepEngine(tfx: Tf, spec: TfjsEngineSpec): StepEngine {
  const { variables, forward, numClasses } = spec;
  const weightsTensor = spec.classWeights ? tfx.tensor1d(spec.classWeights) : null;
  const optimizer = tfx.train.adam(spec.learningRate);
  // Loss and hits stay on the device until the epoch ends: no synchronisation per batch.
  let lossSum = tfx.scalar(0);
  let hitSum = tfx.scalar(0);
  let best: tf.Tensor[] | null = null;
  const dropBest = () => {
    best?.forEach((t) => t.dispose());
    best = null;
  };
  return {
    step(rows, order, start, end, lr) {
      // Adam reads `learningRate` on every step; tfjs declares it protected but has no setter.
      (optimizer as unknown as { learningRate: number }).learningRate = lr;
      const [nextLoss, nextHits] = tfx.tidy(() => {
        const [xb, yb] = gatherBatch(tfx, rows, order, start, end);
        let hits: tf.Scalar | undefined;
        const cost = optimizer.minimize(
          () => {
            const probs = forward(xb, true);
            hits = tfx.keep(tfx.sum(tfx.equal(tfx.argMax(probs, -1), yb).toFloat()) as tf.Scalar);
            const ce = crossEntropy(tfx, probs, yb, numClasses);
            const weighted = weightsTensor ? tfx.mul(ce, tfx.gather(weightsTensor, yb)) : ce;
            return tfx.mean(weighted) as tf.Scalar;
          },
          true,
          variables,
        ) as tf.Scalar;
        const h = hits as tf.Scalar;
        const out: [tf.Scalar, tf.Scalar] = [tfx.add(lossSum, tfx.mul(cost, end - start)), tfx.add(hitSum, h)];
        h.dispose();
        return out;
      });
      lossSum.dispose();
      hitSum.dispose();
      lossSum = nextLoss;
      hitSum = nextHits;
    },
    takeEpochTotals() {
      const totals = { lossSum: lossSum.dataSync()[0], hits: hitSum.dataSync()[0] };
      lossSum.dispose();
      hitSum.dispose();
      lossSum = tfx.scalar(0);
      hitSum = tfx.scalar(0);
      return totals;
    },
    evaluate: (rows) => evaluateRows(tfx, forward, rows, numClasses),
    keepBest() {
      dropBest();
      best = variables.map((v) => tfx.keep(v.clone()));
    },
    restoreBest() {
      if (best) variables.forEach((v, i) => v.assign(best![i]));
    },
    dispose() {
      dropBest();
      lossSum.dispose();
      hitSum.dispose();
      weightsTensor?.dispose();
      optimizer.dispose();
    },
  };
}

/** One epoch's optimizer steps over `order`, batch by batch; true when the signal stopped it part-way. */
async function runEpochSteps(
  spec: LoopSpec,
  order: Int32Array,
  batchSize: number,
  lr: number,
  epoch: number,
  control: LoopControl,
): Promise<boolean> {
  const { train, engine } = spec;
  const batches = Math.ceil(train.n / batchSize);
  for (let b = 0; b < batches; b++) {
    const start = b * batchSize;
    await engine.step(train, order, start, Math.min(train.n, start + batchSize), lr);
    for (const c of control.callbacks ?? []) c.onBatchEnd?.(b + 1, batches, epoch);
    if (control.signal?.aborted) return true;
  }
  return false;
}

/** Trains with `spec.engine`, epoch by epoch, with early stopping, LR reduction, callbacks and cancel; the engine ends with the best epoch's weights. */
export async function runTrainingLoop(spec: LoopSpec, o: TrainOptions, control: LoopControl = {}): Promise<LoopResult> {
  const now = control.now ?? (() => performance.now());
  const callbacks = control.callbacks ?? [];
  const { train, val, engine } = spec;
  if (train.n === 0) throw new Error('No training images: nothing to train on.');
  const batchSize = Math.max(1, Math.floor(o.batchSize));
  const random = seededRandom(o.seed);

  const early = new EarlyStopping(o.patience);
  const plateau = new ReduceLrOnPlateau(spec.learningRate, o.lrFactor, o.lrPatience);
  if (spec.baseline) {
    early.seed(spec.startEpoch, spec.baseline.valLoss);
    plateau.seed(spec.baseline.valLoss);
    engine.keepBest();
  }

  const history: EpochMetrics[] = [];
  let stopRequest: StopReason | undefined;
  const handle: LoopHandle = { stop: (reason) => void (stopRequest ??= reason) };
  let stoppedBy: StopReason = 'epochs';
  for (let e = 0; e < spec.epochs; e++) {
    const epoch = spec.startEpoch + e + 1;
    const lr = plateau.lr;
    const started = now();
    const order = shuffledIndices(train.n, random);
    const cancelled = await runEpochSteps(spec, order, batchSize, lr, epoch, control);
    const totals = engine.takeEpochTotals();
    if (cancelled) {
      stoppedBy = 'cancel';
      break;
    }

    const v = await engine.evaluate(val);
    const metrics: EpochMetrics = {
      stage: spec.stage,
      epoch,
      loss: totals.lossSum / train.n,
      acc: totals.hits / train.n,
      valLoss: v.loss,
      valAcc: v.acc,
      lr,
      durationMs: now() - started,
    };
    history.push(metrics);
    // Without a validation set the training loss decides what "best" means.
    const monitored = val.n > 0 ? v.loss : metrics.loss;
    const decision = early.update(epoch, monitored);
    for (const c of callbacks) await c.onEpochEnd?.(metrics, handle);
    if (decision.improved) {
      engine.keepBest();
      engine.publish?.();
      for (const c of callbacks) await c.onNewBest?.(epoch, v.acc, v.loss);
    }
    plateau.update(monitored);
    if (decision.stop) {
      stoppedBy = 'early-stopping';
      break;
    }
    if (control.signal?.aborted) {
      stoppedBy = 'cancel';
      break;
    }
    if (stopRequest) {
      stoppedBy = stopRequest;
      break;
    }
  }
  engine.restoreBest();
  engine.publish?.();
  const result: LoopResult = { bestEpoch: early.bestEpoch, epochsRun: history.length, history, stoppedBy };
  for (const c of callbacks) await c.onTrainEnd?.(result);
  return result;
}
