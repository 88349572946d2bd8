// The classifier head trained on cached feature vectors: features → Dense(relu) → Dropout →
// Dense(softmax). Fast on every backend (a few small matrix products per batch).

import type * as tf from '@tensorflow/tfjs';
import type { TrainOptions } from '../../shared/types';
import { onnxHeadEngine, type HeadRuntime } from '../onnx/onnxHead';
import { seededRandom } from '../util/random';
import { classWeightsFor, runTrainingLoop, tfjsStepEngine, type LoopResult, type Rows, type LoopControl } from './trainingLoop';
import type { Tf } from '../util/tf';

/** Feature vectors stored row by row, with one class index per row. */
export interface FeatureSet {
  /** n * featureSize values. */
  x: Float32Array;
  /** Class index per row. */
  y: Int32Array;
  n: number;
  featureSize: number;
}

/** Builds the head: features → Dense(hiddenUnits, relu) → Dropout(dropout) → Dense(classes, softmax), seeded initial weights. */
export function buildHead(tfx: Tf, featureSize: number, numClasses: number, o: TrainOptions): tf.LayersModel {
  const head = tfx.sequential({ name: 'head' });
  head.add(
    tfx.layers.dense({
      inputShape: [featureSize],
      units: o.hiddenUnits,
      activation: 'relu',
      kernelInitializer: tfx.initializers.glorotUniform({ seed: o.seed }),
      name: 'head_hidden',
    }),
  );
  // Training applies its own seeded masks (`dropoutMasks`); the layer is the identity at inference
  // and keeps the saved model's structure.
  head.add(tfx.layers.dropout({ rate: o.dropout, name: 'head_dropout' }));
  head.add(
    tfx.layers.dense({
      units: numClasses,
      activation: 'softmax',
      kernelInitializer: tfx.initializers.glorotUniform({ seed: o.seed + 1 }),
      name: 'head_output',
    }),
  );
  return head;
}

/** Trainable tf.Variables of a model (the LayersModel weights wrap them). */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

function asRows(set: FeatureSet): Rows {
  if (set.x.length !== set.n * set.featureSize) {
    throw new Error(`Feature set holds ${set.x.length} values, expected ${set.n} × ${set.featureSize}`);
  }
  return { x: set.x, rowShape: [set.featureSize], y: set.y, n: set.n };
}

/**
 * Dropout masks of the head drawn from their own seeded stream: 0 with probability `rate`, else
 * 1/(1 - rate) (inverted dropout, as tfjs's Dropout layer). Every step engine draws them in the
 * same order, so a run is reproducible from its seed and the engines train the same head.
 */
export function dropoutMasks(seed: number, rate: number, units: number): (rows: number) => Float32Array | undefined {
  if (!(rate > 0)) return () => undefined;
  const random = seededRandom((seed ^ 0x9e3779b9) >>> 0);
  const keep = 1 / (1 - rate);
  return (rows) => {
    const mask = new Float32Array(rows * units);
    for (let i = 0; i < mask.length; i++) mask[i] = random() < rate ? 0 : keep;
    return mask;
  };
}

/**
 * Trains the head with Adam (learningRate), categorical cross-entropy, seeded shuffling and
 * dropout, optional balanced class weights, early stopping with best weights restored, LR
 * reduction on plateau, the callbacks (checkpoints on `onNewBest`) and cooperative cancel. The head ends with its best
 * epoch's weights. With `runtime.kind === 'onnx'` the steps run on onnxruntime and the head's
 * variables receive the weights at every checkpoint and at the end.
 */
export async function trainHead(
  tfx: Tf,
  head: tf.LayersModel,
  train: FeatureSet,
  val: FeatureSet,
  numClasses: number,
  o: TrainOptions,
  control: LoopControl,
  runtime: HeadRuntime = { kind: 'tfjs' },
): Promise<LoopResult> {
  const trainRows = asRows(train);
  const classWeights = classWeightsFor(trainRows, numClasses, o);
  const masks = dropoutMasks(o.seed, o.dropout, o.hiddenUnits);
  const engine =
    runtime.kind === 'onnx'
      ? await onnxHeadEngine(runtime.ort, tfx, trainableVariables(head), {
          numClasses,
          learningRate: o.learningRate,
          classWeights,
          masks,
          threads: runtime.threads,
        })
      : tfjsStepEngine(tfx, {
          variables: trainableVariables(head),
          forward: (x, training) => headForward(tfx, head, x, training ? masks(x.shape[0]) : undefined),
          numClasses,
          learningRate: o.learningRate,
          classWeights,
        });
  try {
    return await runTrainingLoop(
      { stage: 'head', engine, train: trainRows, val: asRows(val), learningRate: o.learningRate, epochs: o.epochs, startEpoch: 0 },
      o,
      control,
    );
  } finally {
    engine.dispose();
  }
}

/** The head's class probabilities for a batch, with `mask` applied after the hidden layer (dropout) when given. */
export function headForward(tfx: Tf, head: tf.LayersModel, x: tf.Tensor, mask: Float32Array | undefined): tf.Tensor2D {
  const hidden = head.getLayer('head_hidden').apply(x) as tf.Tensor2D;
  const dropped = mask ? tfx.mul(hidden, tfx.tensor2d(mask, hidden.shape)) : hidden;
  return head.getLayer('head_output').apply(dropped) as tf.Tensor2D;
}

/** Class probabilities (n * classes, row by row) of the head in inference mode. */
export async function predictProbs(tfx: Tf, head: tf.LayersModel, x: FeatureSet): Promise<Float32Array> {
  const k = head.outputs[0].shape[1] as number;
  const out = new Float32Array(x.n * k);
  const batch = 256;
  for (let start = 0; start < x.n; start += batch) {
    const end = Math.min(x.n, start + batch);
    const probs = tfx.tidy(() => {
      const xb = tfx.tensor2d(x.x.subarray(start * x.featureSize, end * x.featureSize), [end - start, x.featureSize]);
      return head.predict(xb) as tf.Tensor2D;
    });
    try {
      out.set(await probs.data(), start * k);
    } finally {
      probs.dispose();
    }
  }
  return out;
}
