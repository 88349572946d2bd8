// The classifier head trained on cached feature vectors: features → Dense(relu) → Dropout →
// Dense(softmax). Fast on every backend (a few small matrix products per batch).

import type * as tf from '@tensorflow/tfjs';
import type { TrainOptions } from '../shared/types';
import { runTrainingLoop, type LoopResult, type Tf, type TrainHooks } from './trainingLoop';

export type { Tf, TrainHooks } from './trainingLoop';

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
  // No dropout seed: tfjs would reuse one fixed mask for every batch.
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

function asRows(set: FeatureSet): { x: Float32Array; rowShape: number[]; y: Int32Array; n: number } {
  if (set.x.length !== set.n * set.featureSize) {
    throw new Error(`Feature set holds ${set.x.length} values, expected ${set.n} × ${set.featureSize}`);
  }
  return { x: set.x, rowShape: [set.featureSize], y: set.y, n: set.n };
}

/**
 * Trains the head with Adam (learningRate), categorical cross-entropy, seeded shuffling, optional
 * balanced class weights, early stopping with best weights restored, LR reduction on plateau,
 * `onBest` checkpoints and cooperative cancel. The head ends with its best epoch's weights.
 */
export async function trainHead(
  tfx: Tf,
  head: tf.LayersModel,
  train: FeatureSet,
  val: FeatureSet,
  numClasses: number,
  o: TrainOptions,
  hooks: TrainHooks,
): Promise<LoopResult> {
  return runTrainingLoop(
    tfx,
    {
      stage: 'head',
      variables: trainableVariables(head),
      forward: (x, training) => head.apply(x, { training }) as tf.Tensor2D,
      train: asRows(train),
      val: asRows(val),
      numClasses,
      learningRate: o.learningRate,
      epochs: o.epochs,
      startEpoch: 0,
    },
    o,
    hooks,
  );
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
