// The epoch loop shared by head training and fine-tuning: a custom loop (not `model.fit`) so
// that the forward pass decides each layer's training mode (BatchNorm in inference, Dropout in
// training), the learning rate can change between epochs, cancel is checked after every batch,
// and the best weights are kept as tensors and restored at the end.

import type * as tf from '@tensorflow/tfjs';
import type { EpochMetrics, TrainOptions } from '../shared/types';
import { balancedClassWeights, EarlyStopping, ReduceLrOnPlateau, seededRandom, shuffledIndices } from './trainingCallbacks';

/** The tfjs namespace, passed in: `@tensorflow/tfjs` with WebAssembly, or tfjs-node(-gpu). */
export type Tf = typeof tf;

/** Rows of equal shape stored back to back: `x.length === n * product(rowShape)`. */
export interface Rows {
  x: Float32Array;
  rowShape: number[];
  y: Int32Array;
  n: number;
}

/** Callbacks of a training run. */
export interface TrainHooks {
  onEpochEnd?(m: EpochMetrics): void | Promise<void>;
  onBatchEnd?(batch: number, batchesPerEpoch: number, epoch: number): void;
  /** A new best validation epoch: save a checkpoint (the caller writes it atomically). */
  onBest?(epoch: number, valAcc: number, valLoss: number): void | Promise<void>;
  /** Cooperative cancel, checked after every batch. */
  shouldStop?(): boolean;
  /** Injected clock (milliseconds) for tests. */
  now?(): number;
}

export interface LoopSpec {
  stage: EpochMetrics['stage'];
  /** The variables the optimizer updates; the best epoch's values are restored at the end. */
  variables: tf.Variable[];
  /** Class probabilities [batch, classes] for a batch of rows; `training` is true for optimizer steps. */
  forward(x: tf.Tensor, training: boolean): tf.Tensor2D;
  train: Rows;
  val: Rows;
  numClasses: number;
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
  stoppedBy: 'epochs' | 'early-stopping' | 'cancel';
}

// Keras clips probabilities to [eps, 1 - eps] before the log of the cross-entropy.
const EPSILON = 1e-7;
const EVAL_BATCH = 128;

/** Per-row categorical cross-entropy of probabilities against integer labels. */
function crossEntropy(tfx: Tf, probs: tf.Tensor2D, labels: tf.Tensor1D, numClasses: number): tf.Tensor1D {
  const oneHot = tfx.oneHot(labels, numClasses).toFloat();
  const logP = tfx.log(tfx.clipByValue(probs, EPSILON, 1 - EPSILON));
  return tfx.neg(tfx.sum(tfx.mul(oneHot, logP), -1)) as tf.Tensor1D;
}

function rowSize(rows: Rows): number {
  return rows.rowShape.reduce((a, b) => a * b, 1);
}

/** Copies the rows `order[start..end)` into one batch tensor and its labels. */
function gatherBatch(tfx: Tf, rows: Rows, order: Int32Array | null, start: number, end: number): [tf.Tensor, tf.Tensor1D] {
  const size = rowSize(rows);
  const count = end - start;
  const xb = new Float32Array(count * size);
  const yb = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const r = order ? order[start + i] : start + i;
    xb.set(rows.x.subarray(r * size, (r + 1) * size), i * size);
    yb[i] = rows.y[r];
  }
  return [tfx.tensor(xb, [count, ...rows.rowShape]), tfx.tensor1d(yb, 'int32')];
}

/** Mean cross-entropy and accuracy of `forward` (inference mode) over `rows`. */
export function evaluateRows(tfx: Tf, forward: LoopSpec['forward'], rows: Rows, numClasses: number): { loss: number; acc: number } {
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

function snapshot(tfx: Tf, variables: tf.Variable[]): tf.Tensor[] {
  return variables.map((v) => tfx.keep(v.clone()));
}

/** Trains `spec.variables` with Adam, epoch by epoch, with early stopping, LR reduction, checkpoints and cancel. */
export async function runTrainingLoop(tfx: Tf, spec: LoopSpec, o: TrainOptions, hooks: TrainHooks): Promise<LoopResult> {
  const now = hooks.now ?? (() => performance.now());
  const { train, val, numClasses, variables } = spec;
  if (train.n === 0) throw new Error('No training images: nothing to train on.');
  const batchSize = Math.max(1, Math.floor(o.batchSize));
  const batchesPerEpoch = Math.ceil(train.n / batchSize);
  const random = seededRandom(o.seed);
  const classWeights = o.classWeights ? balancedClassWeights(train.y, numClasses) : null;
  const weightsTensor = classWeights ? tfx.tensor1d(classWeights) : null;

  const early = new EarlyStopping(o.patience);
  const plateau = new ReduceLrOnPlateau(spec.learningRate, o.lrFactor, o.lrPatience);
  let best: tf.Tensor[] | null = null;
  if (spec.baseline) {
    early.seed(spec.startEpoch, spec.baseline.valLoss);
    plateau.seed(spec.baseline.valLoss);
    best = snapshot(tfx, variables);
  }

  const optimizer = tfx.train.adam(spec.learningRate);
  // Adam reads `learningRate` on every step; tfjs declares it protected but has no setter.
  const setLr = (lr: number): void => {
    (optimizer as unknown as { learningRate: number }).learningRate = lr;
  };

  const history: EpochMetrics[] = [];
  let stoppedBy: LoopResult['stoppedBy'] = 'epochs';
  try {
    for (let e = 0; e < spec.epochs; e++) {
      const epoch = spec.startEpoch + e + 1;
      const lr = plateau.lr;
      setLr(lr);
      const started = now();
      const order = shuffledIndices(train.n, random);
      let lossSum = tfx.scalar(0);
      let hitSum = tfx.scalar(0);
      let cancelled = false;
      for (let b = 0; b < batchesPerEpoch; b++) {
        const start = b * batchSize;
        const end = Math.min(train.n, start + batchSize);
        const [nextLoss, nextHits] = tfx.tidy(() => {
          const [xb, yb] = gatherBatch(tfx, train, order, start, end);
          let hits: tf.Scalar | undefined;
          const cost = optimizer.minimize(
            () => {
              const probs = spec.forward(xb, true);
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
        hooks.onBatchEnd?.(b + 1, batchesPerEpoch, epoch);
        if (hooks.shouldStop?.()) {
          cancelled = true;
          break;
        }
      }
      const loss = lossSum.dataSync()[0] / train.n;
      const acc = hitSum.dataSync()[0] / train.n;
      lossSum.dispose();
      hitSum.dispose();
      if (cancelled) {
        stoppedBy = 'cancel';
        break;
      }

      const v = evaluateRows(tfx, spec.forward, val, numClasses);
      const metrics: EpochMetrics = {
        stage: spec.stage,
        epoch,
        loss,
        acc,
        valLoss: v.loss,
        valAcc: v.acc,
        lr,
        durationMs: now() - started,
      };
      history.push(metrics);
      // Without a validation set the training loss decides what "best" means.
      const monitored = val.n > 0 ? v.loss : loss;
      const decision = early.update(epoch, monitored);
      await hooks.onEpochEnd?.(metrics);
      if (decision.improved) {
        best?.forEach((t) => t.dispose());
        best = snapshot(tfx, variables);
        await hooks.onBest?.(epoch, v.acc, v.loss);
      }
      plateau.update(monitored);
      if (decision.stop) {
        stoppedBy = 'early-stopping';
        break;
      }
      if (hooks.shouldStop?.()) {
        stoppedBy = 'cancel';
        break;
      }
    }
    if (best) variables.forEach((v, i) => v.assign(best![i]));
  } finally {
    best?.forEach((t) => t.dispose());
    weightsTensor?.dispose();
    optimizer.dispose();
  }
  return { bestEpoch: early.bestEpoch, epochsRun: history.length, history, stoppedBy };
}
