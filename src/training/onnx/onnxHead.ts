// The classifier head trained on onnxruntime-node: one `session.run` per optimizer step.
//
// Why: on tfjs WebAssembly a head step (batch 32, 1280 → 128 → classes, Adam) costs ~7 ms, almost
// all of it per-operation overhead and XNNPACK re-packing the weights that change every step; a
// warm rerun (features from the cache) is then mostly head training. onnxruntime has no training
// API in its npm package, but the forward and backward passes are an ordinary computation: the
// step graph takes the batch and the current weights and returns the gradients (derived by hand
// below); Adam's update then runs as one fused WebAssembly SIMD loop (wasmAdam.ts) over the
// weights, moments and gradients, which onnxruntime reads and writes in place.
//
// The math is that of head.ts + trainingLoop.ts on tfjs, step for step: Dense(relu) → dropout
// (the mask is an input, drawn by the caller) → Dense(softmax), categorical cross-entropy on
// probabilities clipped to [1e-7, 1 - 1e-7] (Keras), per-row class weights, the batch mean, and
// tfjs's Adam (β1 0.9, β2 0.999, ε 1e-7, bias correction through 1 - β^t). Parameters live in one
// flat vector laid out as the head's trainable weights: W1 (F×H, row-major) | b1 | W2 (H×C) | b2.
import type * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { encodeOnnxModel, OnnxDataType, type OnnxModel, type OnnxNode, type OnnxTensor } from './onnxProto';
import { gatherRows, PROB_EPSILON, scoreProbabilities, type Rows, type StepEngine } from '../fit/trainingLoop';
import type { Tf } from '../util/tf';
import { createAdamBuffers, type AdamBuffers } from './wasmAdam';
import type { BackendName } from '../../shared/types';
import { loadOnnxRuntime, onnxRuntimeNote, onnxSessionOptions } from './onnxFeatures';

/** Sizes of the head. */
export interface HeadShape {
  featureSize: number;
  hiddenUnits: number;
  numClasses: number;
}

/** Adam hyper-parameters as tfjs's `tf.train.adam(lr)` uses them. */
export const ADAM = { beta1: 0.9, beta2: 0.999, epsilon: 1e-7 } as const;

/** Offsets of W1, b1, W2, b2 in the flat parameter vector, and its length. */
function headLayout(s: HeadShape): { w1: number; b1: number; w2: number; b2: number; total: number } {
  const w1 = 0;
  const b1 = w1 + s.featureSize * s.hiddenUnits;
  const w2 = b1 + s.hiddenUnits;
  const b2 = w2 + s.hiddenUnits * s.numClasses;
  return { w1, b1, w2, b2, total: b2 + s.numClasses };
}

const OPSET = 13;

/**
 * Adam's two scalars for step `t` (from 1) at learning rate `lr`. tfjs computes
 * m' = β1·m + (1-β1)·g, v' = β2·v + (1-β2)·g² and p' = p - lr·(m'·c1) / (sqrt(v'·c2) + ε) with
 * c1 = 1/(1-β1^t), c2 = 1/(1-β2^t). With the moments kept divided by (1-β1) and (1-β2)
 * (m̃' = β1·m̃ + g, ṽ' = β2·ṽ + g²) and s = sqrt(c2·(1-β2)), that is
 * p' = p + m̃'·scale / (sqrt(ṽ') + eps) with scale = -lr·c1·(1-β1)/s and eps = ε/s.
 */
export function adamScalars(lr: number, t: number): { scale: number; eps: number } {
  const c1 = 1 / (1 - ADAM.beta1 ** t);
  const s = Math.sqrt((1 - ADAM.beta2) / (1 - ADAM.beta2 ** t));
  return { scale: (-lr * c1 * (1 - ADAM.beta1)) / s, eps: ADAM.epsilon / s };
}

/** The graphs' parameter inputs: `w1` [F, H], and `rest` = b1 | W2 | b2 (the flat layout's tail). */
function paramGroups(s: HeadShape): [string, number[]][] {
  const L = headLayout(s);
  return [
    ['w1', [s.featureSize, s.hiddenUnits]],
    ['rest', [L.total - L.b1]],
  ];
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private count = 0;

  op(opType: string, inputs: string[], attributes?: OnnxNode['attributes'], output?: string): string {
    const out = output ?? `${opType.toLowerCase()}_${this.count}`;
    this.nodes.push({ opType, name: `n${this.count++}_${opType}`, inputs, outputs: [out], attributes });
    return out;
  }

  float(name: string, value: number): string {
    this.initializers.push({ name, dims: [], dataType: OnnxDataType.float, data: Float32Array.of(value) });
    return name;
  }

  ints(name: string, values: number[]): string {
    this.initializers.push({ name, dims: [values.length], dataType: OnnxDataType.int64, data: BigInt64Array.from(values.map(BigInt)) });
    return name;
  }
}

/** Slices `flat[start, start + dims product)` and reshapes it to `dims`. */
function sliceParam(g: GraphBuilder, flat: string, name: string, start: number, dims: number[]): string {
  const size = dims.reduce((a, b) => a * b, 1);
  const sliced = g.op('Slice', [
    flat,
    g.ints(`${name}_start`, [start]),
    g.ints(`${name}_end`, [start + size]),
    g.ints(`${name}_axes`, [0]),
  ]);
  return dims.length === 1 ? sliced : g.op('Reshape', [sliced, g.ints(`${name}_shape`, dims)]);
}

/**
 * The forward pass up to the class probabilities, from `w1` [F, H] and `rest` (b1 | W2 | b2): W1
 * is most of the head, so it comes in as its own tensor and is never sliced or concatenated.
 */
function forward(g: GraphBuilder, s: HeadShape, mask: string | undefined) {
  const L = headLayout(s);
  const b1 = sliceParam(g, 'rest', 'b1', L.b1 - L.b1, [s.hiddenUnits]);
  const w2 = sliceParam(g, 'rest', 'w2', L.w2 - L.b1, [s.hiddenUnits, s.numClasses]);
  const b2 = sliceParam(g, 'rest', 'b2', L.b2 - L.b1, [s.numClasses]);
  const z1 = g.op('Gemm', ['x', 'w1', b1]);
  const h = g.op('Relu', [z1]);
  const hd = mask ? g.op('Mul', [h, mask]) : h;
  const z2 = g.op('Gemm', [hd, w2, b2]);
  const p = g.op('Softmax', [z2], [{ name: 'axis', kind: 'int', value: 1 }], 'probs');
  return { w2, z1, hd, p };
}

export function model(
  name: string,
  g: GraphBuilder,
  inputs: OnnxModel['graph']['inputs'],
  outputs: OnnxModel['graph']['outputs'],
): OnnxModel {
  return {
    irVersion: 7,
    opsetVersion: OPSET,
    producerName: 'image-trainer',
    producerVersion: '1',
    graph: { name, nodes: g.nodes, initializers: g.initializers, inputs, outputs },
  };
}

/**
 * The gradients of one step. Inputs: `x` [B, F], `onehot` [B, C], `row_scale` [B, 1] (class
 * weight / B), `mask` [B, H] (0 or 1/(1 - rate)) and the parameter groups of `paramGroups` (`w1`,
 * `rest`). Outputs: the loss's gradient per group (`grad_w1`, `grad_rest`), and `probs` [B, C]
 * (the forward pass's class probabilities, for the batch's loss and hits).
 */
function headStepGraph(s: HeadShape): OnnxModel {
  const g = new GraphBuilder();
  const f = OnnxDataType.float;
  const groups = paramGroups(s);
  const { w2, z1, hd, p } = forward(g, s, 'mask');

  // Keras clips the true class's probability before the log of the cross-entropy; the clip's
  // gradient is zero outside [ε, 1 - ε] (`inside`). The loss and hits themselves are counted by
  // the caller from `probs`: fewer operations per step.
  const pTrue = g.op('ReduceSum', [g.op('Mul', [p, 'onehot']), g.ints('axis1', [1])], [{ name: 'keepdims', kind: 'int', value: 1 }]);
  const clipped = g.op('Clip', [pTrue, g.float('prob_eps', PROB_EPSILON), g.float('prob_one_minus_eps', 1 - PROB_EPSILON)]);
  const inside = g.op('Cast', [g.op('Equal', [clipped, pTrue])], [{ name: 'to', kind: 'int', value: f }]);

  // Backward: softmax + cross-entropy give (P - onehot) per row, scaled by the row's weight / B.
  const dz2 = g.op('Mul', [g.op('Sub', [p, 'onehot']), g.op('Mul', ['row_scale', inside])]);
  const transA = [{ name: 'transA', kind: 'int' as const, value: 1 }];
  const dw2 = g.op('Gemm', [hd, dz2], transA);
  const axis0 = g.ints('axis0', [0]);
  const noKeep = [{ name: 'keepdims', kind: 'int' as const, value: 0 }];
  const db2 = g.op('ReduceSum', [dz2, axis0], noKeep);
  const dhd = g.op('Gemm', [dz2, w2], [{ name: 'transB', kind: 'int', value: 1 }]);
  const reluGate = g.op('Cast', [g.op('Greater', [z1, g.float('zero', 0)])], [{ name: 'to', kind: 'int', value: f }]);
  const dz1 = g.op('Mul', [g.op('Mul', [dhd, 'mask']), reluGate]);
  g.op('Gemm', ['x', dz1], transA, 'grad_w1');
  const db1 = g.op('ReduceSum', [dz1, axis0], noKeep);
  const flat = g.ints('flat', [-1]);
  g.op('Concat', [db1, g.op('Reshape', [dw2, flat]), db2], [{ name: 'axis', kind: 'int', value: 0 }], 'grad_rest');

  return model(
    'head_step',
    g,
    [
      { name: 'x', elemType: f, shape: ['batch', s.featureSize] },
      { name: 'onehot', elemType: f, shape: ['batch', s.numClasses] },
      { name: 'row_scale', elemType: f, shape: ['batch', 1] },
      { name: 'mask', elemType: f, shape: ['batch', s.hiddenUnits] },
      ...groups.map(([name, shape]) => ({ name, elemType: f, shape })),
    ],
    [
      ...groups.map(([name, shape]) => ({ name: `grad_${name}`, elemType: f, shape })),
      { name: 'probs', elemType: f, shape: ['batch', s.numClasses] },
    ],
  );
}

/** Inference: `x` [N, F] and the parameter groups in, class probabilities `probs` [N, C] out. */
function headPredictGraph(s: HeadShape): OnnxModel {
  const g = new GraphBuilder();
  const f = OnnxDataType.float;
  forward(g, s, undefined);
  return model(
    'head_predict',
    g,
    [{ name: 'x', elemType: f, shape: ['batch', s.featureSize] }, ...paramGroups(s).map(([name, shape]) => ({ name, elemType: f, shape }))],
    [{ name: 'probs', elemType: f, shape: ['batch', s.numClasses] }],
  );
}

export type OrtModule = typeof Ort;

/** What the head engine needs besides the head's variables. */
export interface OnnxHeadSpec {
  numClasses: number;
  learningRate: number;
  classWeights: Float32Array | null;
  /** Dropout mask for a batch of `rows` ([rows, hidden units]), or undefined for none. */
  masks(rows: number): Float32Array | undefined;
  /** onnxruntime intra-op threads. */
  threads: number;
}

const EVAL_ROWS = 1024;

/**
 * Head steps on onnxruntime, starting from the current values of `variables` (the head's
 * trainable weights: W1 [F, H], b1 [H], W2 [H, C], b2 [C]); `publish` writes the engine's
 * weights back into them.
 */
export async function onnxHeadEngine(ort: OrtModule, tfx: Tf, variables: tf.Variable[], spec: OnnxHeadSpec): Promise<StepEngine> {
  const shape = headShapeOf(variables, spec);
  const options = onnxSessionOptions(spec.threads);
  const stepSession = await ort.InferenceSession.create(encodeOnnxModel(headStepGraph(shape)), options);
  const predictSession = await ort.InferenceSession.create(encodeOnnxModel(headPredictGraph(shape)), options).catch(async (error) => {
    await stepSession.release();
    throw error;
  });
  return new OnnxHeadEngine(ort, tfx, variables, spec, shape, { step: stepSession, predict: predictSession });
}

/** The head's sizes from its weights; throws unless they are the 4 weights of a head for `spec.numClasses` classes. */
function headShapeOf(variables: tf.Variable[], spec: OnnxHeadSpec): HeadShape {
  const [w1, , w2] = variables;
  if (variables.length !== 4 || w1.shape.length !== 2 || w2.shape.length !== 2) {
    throw new Error(
      `onnxHeadEngine: expected the head's 4 weights (W1, b1, W2, b2), got shapes ${variables.map((v) => `[${v.shape.join(', ')}]`).join(' ')}`,
    );
  }
  const shape: HeadShape = { featureSize: w1.shape[0], hiddenUnits: w1.shape[1], numClasses: w2.shape[1] };
  if (shape.numClasses !== spec.numClasses)
    throw new Error(`onnxHeadEngine: the head has ${shape.numClasses} outputs, the data ${spec.numClasses} classes`);
  return shape;
}

/** The step engine over the two sessions, with the weights, Adam's moments and the gradients in one flat layout. */
class OnnxHeadEngine implements StepEngine {
  /** Where each of the head's variables starts in the flat layout. */
  private readonly offsets: number[];
  /** The graphs' parameter inputs: name, dims and their range in the flat layout. */
  private readonly groups: [string, number[], number, number][];
  // Weights, moments and gradients in the Adam kernel's memory: onnxruntime reads the weights and
  // writes the gradients there (views, no copies), and the kernel updates in place.
  private readonly adam: AdamBuffers;
  private readonly size: number;
  private best: Float32Array | null = null;
  private xb = new Float32Array(0);
  private t = 0;
  // Σ weighted cross-entropy (= batch mean × rows, as the tfjs engine sums it) and Σ hits of the epoch so far.
  private totals = { loss: 0, hits: 0 };
  private readonly onesByRows = new Map<number, Float32Array>();

  constructor(
    private readonly ort: OrtModule,
    private readonly tfx: Tf,
    private readonly variables: tf.Variable[],
    private readonly spec: OnnxHeadSpec,
    private readonly shape: HeadShape,
    private readonly sessions: { step: Ort.InferenceSession; predict: Ort.InferenceSession },
  ) {
    const layout = headLayout(shape);
    this.offsets = [layout.w1, layout.b1, layout.w2, layout.b2];
    this.size = layout.total;
    this.adam = createAdamBuffers(layout.total);
    this.groups = paramGroups(shape).map(([name, dims]): [string, number[], number, number] => {
      const begin = name === 'w1' ? layout.w1 : layout.b1;
      return [name, dims, begin, begin + dims.reduce((a, b) => a * b, 1)];
    });
    variables.forEach((variable, i) => this.adam.params.set(variable.dataSync() as Float32Array, this.offsets[i]));
  }

  async step(rows: Rows, order: Int32Array, start: number, end: number, lr: number): Promise<void> {
    const { featureSize: F, hiddenUnits: H, numClasses: C } = this.shape;
    const count = end - start;
    if (this.xb.length < count * F) this.xb = new Float32Array(count * F);
    const batch = gatherRows(rows, order, start, end, this.xb);
    const onehot = new Float32Array(count * C);
    const rowScale = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      const y = batch.y[i];
      onehot[i * C + y] = 1;
      rowScale[i] = (this.spec.classWeights ? this.spec.classWeights[y] : 1) / count;
    }
    const probs = new Float32Array(count * C);
    const feeds: Record<string, Ort.Tensor> = {
      x: this.tensor(batch.x, [count, F]),
      onehot: this.tensor(onehot, [count, C]),
      row_scale: this.tensor(rowScale, [count, 1]),
      mask: this.tensor(this.spec.masks(count) ?? this.ones(count, H), [count, H]),
    };
    const fetches: Record<string, Ort.Tensor> = { probs: this.tensor(probs, [count, C]) };
    for (const [name, dims, begin, stop] of this.groups) {
      feeds[name] = this.tensor(this.adam.params.subarray(begin, stop), dims);
      fetches[`grad_${name}`] = this.tensor(this.adam.grad.subarray(begin, stop), dims);
    }
    await this.sessions.step.run(feeds, fetches);
    const scalars = adamScalars(lr, ++this.t);
    this.adam.update(this.size, ADAM.beta1, ADAM.beta2, scalars.scale, scalars.eps);
    scoreProbabilities(probs, batch.y, C, this.totals, this.spec.classWeights);
  }

  takeEpochTotals(): { lossSum: number; hits: number } {
    const epoch = { lossSum: this.totals.loss, hits: this.totals.hits };
    this.totals = { loss: 0, hits: 0 };
    return epoch;
  }

  async evaluate(rows: Rows): Promise<{ loss: number; acc: number }> {
    if (rows.n === 0) return { loss: Number.NaN, acc: Number.NaN };
    const { featureSize: F, numClasses: C } = this.shape;
    const score = { loss: 0, hits: 0 };
    for (let start = 0; start < rows.n; start += EVAL_ROWS) {
      const end = Math.min(rows.n, start + EVAL_ROWS);
      const feeds: Record<string, Ort.Tensor> = { x: this.tensor(rows.x.subarray(start * F, end * F), [end - start, F]) };
      for (const [name, dims, begin, stop] of this.groups) feeds[name] = this.tensor(this.adam.params.subarray(begin, stop), dims);
      const out = await this.sessions.predict.run(feeds);
      scoreProbabilities(out.probs.data as Float32Array, rows.y.subarray(start, end), C, score);
    }
    return { loss: score.loss / rows.n, acc: score.hits / rows.n };
  }

  keepBest(): void {
    this.best = this.adam.params.slice(0, this.size);
  }

  restoreBest(): void {
    if (this.best) this.adam.params.set(this.best);
  }

  publish(): void {
    const { tfx, adam, offsets } = this;
    tfx.tidy(() =>
      this.variables.forEach((variable, i) =>
        variable.assign(tfx.tensor(adam.params.subarray(offsets[i], offsets[i] + variable.size), variable.shape)),
      ),
    );
  }

  dispose(): void {
    void this.sessions.step.release();
    void this.sessions.predict.release();
  }

  private tensor(data: Float32Array, dims: number[]): Ort.Tensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  /** The no-dropout mask, made once per batch size. */
  private ones(rows: number, hiddenUnits: number): Float32Array {
    let mask = this.onesByRows.get(rows);
    if (!mask) this.onesByRows.set(rows, (mask = new Float32Array(rows * hiddenUnits).fill(1)));
    return mask;
  }
}

/** Where the head's optimizer steps run: tfjs (any backend), or this module's graph on onnxruntime-node's CPU. */
export type HeadRuntime = { kind: 'tfjs' } | { kind: 'onnx'; ort: OrtModule; threads: number };

/**
 * Where the head trains, and why, in words. On a CPU backend onnxruntime-node runs each step's
 * forward and backward pass as one graph (with Adam as a SIMD loop), ~10× faster than tfjs
 * WebAssembly's per-operation dispatch; tfjs-node(-gpu) keeps the head on TensorFlow.
 * IMAGE_TRAINER_HEAD_RUNTIME=tfjs forces tfjs (comparisons, tests).
 */
export async function chooseHeadRuntime(backend: BackendName): Promise<{ runtime: HeadRuntime; note: string }> {
  const tfjsNote = `tfjs ${backend}`;
  if (backend === 'tensorflow' || backend === 'tensorflow-gpu') return { runtime: { kind: 'tfjs' }, note: tfjsNote };
  if (process.env.IMAGE_TRAINER_HEAD_RUNTIME === 'tfjs')
    return { runtime: { kind: 'tfjs' }, note: `${tfjsNote} (IMAGE_TRAINER_HEAD_RUNTIME=tfjs)` };
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') return { runtime: { kind: 'tfjs' }, note: `${tfjsNote} (${ort})` };
  // One thread: a step is ~30 small operations, and the hand-offs to a second thread (each session
  // has its own spinning pool) cost more than the two products gain — measured here at 1.2-1.4 ms
  // per batch-32 step on one thread against 1.5-2.1 ms on two.
  const threads = 1;
  return { runtime: { kind: 'onnx', ort, threads }, note: onnxRuntimeNote(ort, threads, 'one graph per Adam step') };
}
