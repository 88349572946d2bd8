// Fine-tuning, the optional second stage of the Keras transfer-learning guide: after the head
// has converged, unfreeze the top of the base and train it together with the head at a low
// learning rate.
//
// The base is cut at a layer whose input is the only tensor the rest of the network needs, so
// that `bottom` (frozen) runs once per image and its activations are cached, and each epoch
// computes only `top` + head. `top` re-applies the base's own layer objects, so training it
// updates the base's weights: a classifier built from the base afterwards has the fine-tuned
// weights.
//
// BatchNorm stays in inference mode: tfjs-layers' BatchNormalization normalises with batch
// statistics and overwrites its moving mean/variance whenever it is called with
// `training: true`, whatever `trainable` says (so `model.fit` would corrupt a frozen base's
// statistics). The loop therefore applies `top` with `training: false` (the head with
// `training: true`, for its dropout), and BatchNorm's gamma/beta stay frozen too, as in the
// Keras guide's EfficientNet fine-tuning example; the convolution kernels are what is trained.

import type * as tf from '@tensorflow/tfjs';
import type { TrainOptions } from '../../shared/types';
import { dropoutMasks, headForward, trainableVariables, type FeatureSet } from './head';
import {
  classWeightsFor,
  runTrainingLoop,
  tfjsStepEngine,
  type LoopResult,
  type Rows,
  type LoopControl,
  type StepEngine,
} from './trainingLoop';
import type { Tf } from '../util/tf';
import { registerWasmGradients } from '../backend/wasmGradients';
import type { OrtModule } from '../onnx/onnxHead';
import { onnxFineTuneEngine, onnxTopFeatures, planTop, type TopPlan } from '../onnx/onnxFineTune';
import { seededRandom } from '../util/random';
import { pickViews } from './activationViews';

/** A base model cut in two at `cutLayer`. */
export interface CutModel {
  /** input → activations at the cut (the input of `cutLayer`); frozen, run once per image. */
  bottom: tf.LayersModel;
  /** cut activations → features; shares its layers (and weights) with the base. */
  top: tf.LayersModel;
  cutLayer: string;
  /** The base that was cut (its topology and weights; `top` shares its layers). */
  base: tf.LayersModel;
  /** Layers of `top` whose weights fine-tuning trains (convolutions and dense layers, not BatchNorm). */
  trainableLayerCount: number;
}

/** Activations at the cut point for n images: `x.length === product(shape)`, `shape[0] === n`. */
export interface ActivationSet {
  x: Float32Array;
  shape: number[];
  y: Int32Array;
}

type SymbolicTensor = tf.SymbolicTensor;
type Layer = tf.layers.Layer;

function isBatchNorm(layer: Layer): boolean {
  return layer.getClassName() === 'BatchNormalization';
}

/** The node of `layer` that belongs to `base` (its first: later ones come from re-applying it, e.g. an earlier split). */
function baseNode(layer: Layer): { inputs: SymbolicTensor[]; outputs: SymbolicTensor[] } {
  const node = layer.inboundNodes[0];
  return { inputs: node.inputTensors, outputs: node.outputTensors };
}

/**
 * Cuts a functional LayersModel (e.g. Keras MobileNetV2) at `cutLayerName`. Every layer downstream
 * of the cut layer goes to `top`; the cut must be at a point where one tensor (the cut layer's
 * input) carries everything `top` needs — not inside a residual block, whose Add would also need
 * a tensor from before the cut. Non-BatchNorm layers with weights in `top` are made trainable,
 * BatchNorm layers are frozen.
 */
export function splitAtLayer(tfx: Tf, base: tf.LayersModel, cutLayerName: string): CutModel {
  const layers = base.layers;
  const cutIndex = layers.findIndex((l) => l.name === cutLayerName);
  if (cutIndex < 0) throw new Error(`Cannot fine-tune at "${cutLayerName}": the model has no layer of that name.`);
  const cutLayer = layers[cutIndex];
  const cutInputs = baseNode(cutLayer).inputs;
  if (cutInputs.length !== 1) {
    throw new Error(`Cannot fine-tune at "${cutLayerName}": it takes ${cutInputs.length} inputs; a cut needs a layer with one input.`);
  }
  const cutTensor = cutInputs[0];

  // Downstream closure of the cut layer, in the model's (topological) layer order.
  const topLayers: Layer[] = [];
  const produced = new Set<SymbolicTensor>();
  for (const layer of layers) {
    const node = baseNode(layer);
    const downstream = layer === cutLayer || node.inputs.some((t) => produced.has(t));
    if (!downstream) continue;
    for (const t of node.inputs) {
      if (t !== cutTensor && !produced.has(t)) {
        throw new Error(
          `Cannot fine-tune at "${cutLayerName}": layer "${layer.name}" after the cut also reads "${t.sourceLayer.name}" from before it ` +
            `(a residual connection). Cut at the first layer of a block, where a single tensor flows.`,
        );
      }
    }
    node.outputs.forEach((t) => produced.add(t));
    topLayers.push(layer);
  }
  for (const out of base.outputs) {
    if (!produced.has(out)) throw new Error(`Cannot fine-tune at "${cutLayerName}": the output "${out.name}" does not depend on it.`);
  }

  const bottom = tfx.model({ inputs: base.inputs, outputs: cutTensor, name: `${base.name}_bottom_${cutLayerName}` });

  const topInput = tfx.input({ shape: cutTensor.shape.slice(1) as number[], name: `${cutLayerName}_cut_input` });
  const mapped = new Map<SymbolicTensor, SymbolicTensor>([[cutTensor, topInput]]);
  for (const layer of topLayers) {
    const node = baseNode(layer);
    const inputs = node.inputs.map((t) => mapped.get(t)!);
    const out = layer.apply(inputs.length === 1 ? inputs[0] : inputs) as SymbolicTensor | SymbolicTensor[];
    const outs = Array.isArray(out) ? out : [out];
    node.outputs.forEach((t, i) => mapped.set(t, outs[i]));
  }
  const top = tfx.model({
    inputs: topInput,
    outputs: base.outputs.map((o) => mapped.get(o)!),
    name: `${base.name}_top_${cutLayerName}`,
  });

  let trainableLayerCount = 0;
  for (const layer of topLayers) {
    if (layer.weights.length === 0) continue;
    if (isBatchNorm(layer)) {
      layer.trainable = false;
    } else {
      layer.trainable = true;
      trainableLayerCount++;
    }
  }
  return { bottom, top, cutLayer: cutLayerName, base, trainableLayerCount };
}

/**
 * The deepest of `cutPoints` (registry order: deepest first) that unfreezes at least
 * `layers` layers of the base counted from the output, or the shallowest one when none does.
 */
export function chooseCutLayer(base: tf.LayersModel, cutPoints: string[], layers: number): string | undefined {
  const names = base.layers.map((l) => l.name);
  let chosen: string | undefined;
  for (const cut of cutPoints) {
    const index = names.indexOf(cut);
    if (index < 0) continue;
    chosen = cut;
    if (names.length - index >= layers) break;
  }
  return chosen;
}

function asRows(set: ActivationSet, what: string): Rows {
  const n = set.shape[0];
  const rowShape = set.shape.slice(1);
  const expected = set.shape.reduce((a, b) => a * b, 1);
  if (set.x.length !== expected || set.y.length !== n) {
    throw new Error(
      `Fine-tuning ${what} activations: ${set.x.length} values and ${set.y.length} labels for shape [${set.shape.join(', ')}]`,
    );
  }
  return { x: set.x, rowShape, y: set.y, n };
}

/**
 * What `--recipe auto` fine-tunes when the user did not ask for a number of layers: blocks 14–16
 * and the last convolution of MobileNetV2 (30 layers), when the validation split has at least
 * `minValImages` images (with fewer, one image moves accuracy by 2 points or more, so "beats the
 * head on validation" is noise) and the dataset at most `maxImages` (an epoch costs ~2 ms of CPU an
 * image on onnxruntime: 20,000 images, 5 epochs, about 3–4 minutes on one core).
 */
export const AUTO_FINE_TUNE = { layers: 30, minValImages: 50, maxImages: 20_000 } as const;

/** Whether `--recipe auto` fine-tunes a dataset split `train`/`val`, how many layers, and why, in words. */
export function autoFineTune(
  o: TrainOptions,
  split: { train: number; val: number },
  onnx: boolean,
  /** The recipe the search chose: views won on the training images, and fine-tuning trains on one view. */
  chosen = 'plain',
): { layers: number; why: string } {
  const images = split.train + split.val;
  if (o.recipe !== 'auto') return { layers: 0, why: `recipe ${o.recipe}` };
  if (chosen !== 'plain')
    return {
      layers: 0,
      why: `the recipe search chose ${chosen} views, which fine-tuning (one view) would drop; --fine-tune-layers forces it`,
    };
  if (!onnx) return { layers: 0, why: 'onnxruntime is not available, and fine-tuning on tfjs is too slow to be on by default' };
  if (split.val < AUTO_FINE_TUNE.minValImages)
    return {
      layers: 0,
      why: `${split.val} validation images, fewer than ${AUTO_FINE_TUNE.minValImages}: too few to tell whether it helps`,
    };
  if (images > AUTO_FINE_TUNE.maxImages) return { layers: 0, why: `${images} images, more than ${AUTO_FINE_TUNE.maxImages}` };
  return { layers: AUTO_FINE_TUNE.layers, why: `${images} images, ${split.val} for validation: on, kept only if it beats the head there` };
}

/** Where fine-tuning steps run: tfjs (any backend), or the hand-written graph on onnxruntime (onnx/onnxFineTune.ts). */
export type FineTuneRuntime = { kind: 'tfjs' } | { kind: 'onnx'; ort: OrtModule; threads: number };

/** Learning-rate multiplier of the `index`-th of `count` trainable layers above the cut (0 nearest the cut): 0.1 there, rising geometrically to 1 at the top. */
export function discriminativeScale(index: number, count: number): number {
  return count <= 1 ? 1 : 0.1 ** ((count - 1 - index) / (count - 1));
}

/** The step engine of fine-tuning: on onnxruntime for `plan` when there is one, else tfjs; with what it is, in words. */
async function fineTuneEngine(
  tfx: Tf,
  cut: CutModel,
  head: tf.LayersModel,
  spec: { numClasses: number; classWeights: Float32Array | null; o: TrainOptions; trainViews: number },
  plan: { runtime: Extract<FineTuneRuntime, { kind: 'onnx' }>; top: TopPlan } | undefined,
): Promise<{ engine: StepEngine; note: string }> {
  const masks = dropoutMasks(spec.o.seed + 1, spec.o.dropout, spec.o.hiddenUnits);
  if (plan) {
    const random = seededRandom((spec.o.seed + 2) >>> 0);
    const engine = await onnxFineTuneEngine(plan.runtime.ort, tfx, plan.top, {
      numClasses: spec.numClasses,
      classWeights: spec.classWeights,
      masks,
      trainViews: spec.trainViews,
      chooseView: () => Math.floor(random() * spec.trainViews),
      threads: plan.runtime.threads,
    });
    const views = spec.trainViews === 1 ? 'the images as they are' : `one of ${spec.trainViews} views of each image per epoch`;
    return {
      engine,
      note: `onnxruntime (${plan.top.params.length - 4} tensors of the base and the head, learning rates ×0.1–×1 from the cut up, ${views})`,
    };
  }
  // Register the missing WebAssembly gradient kernels unless someone (a benchmark) already chose a mode.
  if (tfx.getBackend() === 'wasm' && !tfx.getKernel('Conv2DBackpropFilter', 'wasm')) registerWasmGradients(tfx);
  const forward = (x: tf.Tensor, training: boolean): tf.Tensor2D =>
    headForward(tfx, head, cut.top.apply(x, { training: false }) as tf.Tensor, training ? masks(x.shape[0]) : undefined);
  const engine = tfjsStepEngine(tfx, {
    variables: [...trainableVariables(cut.top), ...trainableVariables(head)],
    forward,
    numClasses: spec.numClasses,
    learningRate: spec.o.fineTuneLearningRate,
    classWeights: spec.classWeights,
  });
  return { engine, note: `tfjs ${tfx.getBackend()}` };
}

/** The first view of activations stored [n, views, h, w, c]. */
function firstView(set: ActivationSet): ActivationSet {
  if (set.shape.length !== 5) return set;
  const [n, views, ...rowShape] = set.shape;
  const per = rowShape.reduce((a, b) => a * b, 1);
  const x = pickViews(set.x, n, views, per, () => 0, new Float32Array(n * per));
  return { x, shape: [n, ...rowShape], y: set.y };
}

/**
 * Trains `cut.top` and `head` together on cached cut-point activations with Adam
 * (fineTuneLearningRate) for fineTuneEpochs epochs, BatchNorm in inference mode, with the same
 * early stopping, LR reduction, checkpoints and cancel as the head. Epochs are numbered from
 * `startEpoch + 1`; the weights before fine-tuning count as epoch `startEpoch`'s best, so if no
 * fine-tuning epoch beats them they are restored and `bestEpoch === startEpoch`. Training
 * activations of shape [n, views, h, w, c] hold several views of each image: on onnxruntime each
 * row is seen through one of them per epoch (drawn from a seeded stream); tfjs uses the first.
 */
export async function fineTune(
  tfx: Tf,
  cut: CutModel,
  head: tf.LayersModel,
  train: ActivationSet,
  val: ActivationSet,
  numClasses: number,
  o: TrainOptions,
  control: LoopControl,
  startEpoch: number,
  runtime: FineTuneRuntime = { kind: 'tfjs' },
  onEngine?: (note: string) => void,
): Promise<LoopResult> {
  const top =
    runtime.kind === 'onnx' ? planTop(cut.base, cut.top, cut.bottom.outputs[0].sourceLayer.name, head, discriminativeScale) : undefined;
  const trainRows = asRows(top ? train : firstView(train), 'training');
  const valRows = asRows(firstView(val), 'validation');
  const classWeights = classWeightsFor(trainRows, numClasses, o);
  const trainViews = trainRows.rowShape.length === 4 ? trainRows.rowShape[0] : 1;
  const plan = top && runtime.kind === 'onnx' ? { runtime, top } : undefined;
  const { engine, note } = await fineTuneEngine(tfx, cut, head, { numClasses, classWeights, o, trainViews }, plan);
  onEngine?.(note);
  try {
    const before = await engine.evaluate(valRows);
    return await runTrainingLoop(
      {
        stage: 'fine-tune',
        engine,
        train: trainRows,
        val: valRows,
        learningRate: o.fineTuneLearningRate,
        epochs: o.fineTuneEpochs,
        startEpoch,
        baseline: { valLoss: before.loss, valAcc: before.acc },
      },
      o,
      control,
    );
  } finally {
    engine.dispose();
  }
}

/** Features of `acts` through the (fine-tuned) top of the base: on onnxruntime when `onnx` is given and the top has a plan, else tfjs in batches of 32. */
export async function topFeatures(
  tfx: Tf,
  cut: CutModel,
  acts: ActivationSet,
  featureSize: number,
  onnx?: { ort: OrtModule; head: tf.LayersModel },
): Promise<FeatureSet> {
  const n = acts.shape[0];
  const plan = onnx && planTop(cut.base, cut.top, cut.bottom.outputs[0].sourceLayer.name, onnx.head, discriminativeScale);
  if (onnx && plan) return { x: await onnxTopFeatures(onnx.ort, plan, acts.x, n), y: acts.y, n, featureSize };
  const rowShape = acts.shape.slice(1);
  const per = rowShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * featureSize);
  for (let start = 0; start < n; start += 32) {
    const count = Math.min(32, n - start);
    const input = acts.x.subarray(start * per, (start + count) * per);
    const out = tfx.tidy(() => cut.top.predict(tfx.tensor(input, [count, ...rowShape])) as tf.Tensor);
    try {
      x.set((await out.data()) as Float32Array, start * featureSize);
    } finally {
      out.dispose();
    }
  }
  return { x, y: acts.y, n, featureSize };
}
