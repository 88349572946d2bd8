// Fine-tuning steps on onnxruntime-node: the unfrozen top of the base and the head, forward and
// backward, as one graph per optimizer step, on activations cached at the cut.
//
// Why: on tfjs WebAssembly an epoch over flowers' 3,450 training images cut at block_15_expand
// took ~27 s (per-operation dispatch, and convolution gradients in the project's own kernels).
// The top of MobileNetV2 above block 13 is 1×1 convolutions (matrix products), 3×3 depthwise
// convolutions at stride 1 (onnxruntime's grouped Conv, their kernel gradient a grouped Conv too), frozen BatchNorm (a per-channel affine map in inference mode), ReLU6,
// residual Adds and a global average: every one of them, and its gradient, is an ordinary ONNX
// operation, so the step graph is written here by hand, as the head's is (onnxHead.ts), and
// onnxruntime runs it with its fast matrix products. Values stay NHWC (the cached layout): a 1×1
// convolution is a MatMul over the channel axis; depthwise ones transpose to NCHW and back.
//
// The math is fineTune.ts's on tfjs: BatchNorm frozen in inference mode (gamma, beta and the
// moving statistics are constants), convolution kernels (and biases, if any) trained, then the
// head's Dense(relu) → dropout → Dense(softmax), clipped cross-entropy, class weights, Adam.
// Each trainable tensor has its own Adam buffers and a learning-rate multiplier (discriminative
// learning rates: lower for layers nearer the cut). Models whose top holds any other layer return
// undefined and fine-tune on tfjs.
import type * as tf from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import { encodeOnnxModel, OnnxDataType, type OnnxModel } from './onnxProto';
import { ADAM, adamScalars, GraphBuilder, model, type OrtModule } from './onnxHead';
import { createAdamBuffers, type AdamBuffers } from './wasmAdam';
import { onnxSessionOptions } from './onnxFeatures';
import { gatherRows, PROB_EPSILON, scoreProbabilities, type Rows, type StepEngine } from '../fit/trainingLoop';
import type { Tf } from '../util/tf';
import { pickViews } from '../fit/activationViews';

/** One layer of the top as the graph computes it; `input`/`inputs` name values (layer names, `x` for the cut). */
type TopOp =
  | { kind: 'conv'; name: string; input: string; cin: number; cout: number; kernel: number; bias?: number }
  | { kind: 'depthwise'; name: string; input: string; h: number; w: number; c: number; kernel: number; bias?: number }
  | { kind: 'affine'; name: string; input: string; scale: Float32Array; shift: Float32Array }
  | { kind: 'relu'; name: string; input: string; max: number }
  | { kind: 'add'; name: string; inputs: string[] }
  | { kind: 'mean'; name: string; input: string; h: number; w: number };

/** A trainable tensor: the tfjs variable it comes from and goes back to, and its learning-rate multiplier. */
export interface TrainableParam {
  variable: tf.Variable;
  dims: number[];
  lrScale: number;
}

/** The top of a cut base as a list of graph operations, its trainable tensors (top's, then the head's four) and the output value. */
export interface TopPlan {
  ops: TopOp[];
  params: TrainableParam[];
  rowShape: number[];
  featureSize: number;
  hiddenUnits: number;
  numClasses: number;
}

type LayerJson = { class_name: string; name?: string; config: Record<string, unknown>; inbound_nodes?: [string, number, number][][] };

/** Whether `cfg` is a stride-1 convolution with the given kernel size and a linear activation. */
function plainConv(cfg: Record<string, unknown>, kernel: number): boolean {
  const k = cfg.kernel_size as number[];
  const s = cfg.strides as number[];
  const linear = (cfg.activation ?? 'linear') === 'linear';
  const same = kernel === 1 || cfg.padding === 'same';
  return k[0] === kernel && k[1] === kernel && s[0] === 1 && s[1] === 1 && linear && same && (cfg.depth_multiplier ?? 1) === 1;
}

/** The layer's weight of short name `short`, as its variable. */
function variableOf(layer: tf.layers.Layer, short: string): tf.Variable | undefined {
  const w = layer.weights.find((v) => (v.originalName ?? v.name).split('/').pop() === short);
  return w?.read() as tf.Variable | undefined;
}

/** BatchNorm in inference mode as y = x·scale + shift. */
function affineOf(layer: tf.layers.Layer, cfg: Record<string, unknown>, channels: number): { scale: Float32Array; shift: Float32Array } {
  const read = (short: string, fill: number): Float32Array => {
    const v = variableOf(layer, short);
    return v ? (v.dataSync() as Float32Array) : new Float32Array(channels).fill(fill);
  };
  const [gamma, beta, mean, variance] = [read('gamma', 1), read('beta', 0), read('moving_mean', 0), read('moving_variance', 1)];
  const eps = Number(cfg.epsilon ?? 1e-3);
  const scale = new Float32Array(channels);
  const shift = new Float32Array(channels);
  for (let i = 0; i < channels; i++) {
    scale[i] = gamma[i] / Math.sqrt(variance[i] + eps);
    shift[i] = beta[i] - mean[i] * scale[i];
  }
  return { scale, shift };
}

/**
 * The graph plan of `top` (the layers of `base` after the cut, whose input is the output of
 * `cutSource`) followed by `head`; undefined when a layer is one the graph does not compute.
 * `lrScales` gives each of the top's trainable layers (in order) its learning-rate multiplier.
 */
export function planTop(
  base: tf.LayersModel,
  top: tf.LayersModel,
  cutSource: string,
  head: tf.LayersModel,
  lrScales: (index: number, count: number) => number,
): TopPlan | undefined {
  const layers = (base.toJSON(null, false) as unknown as { config: { layers: LayerJson[] } }).config.layers;
  const names = new Set(top.layers.map((l) => l.name));
  const shapes = new Map<string, number[]>([['x', top.inputs[0].shape.slice(1) as number[]]]);
  const ops: TopOp[] = [];
  const params: { variable: tf.Variable; dims: number[] }[] = [];
  for (const json of layers) {
    const name = String(json.name ?? json.config.name);
    if (!names.has(name)) continue;
    const inputs = (json.inbound_nodes?.[0] ?? []).map((r) => (r[0] === cutSource ? 'x' : r[0]));
    const op = planLayer(json, top.getLayer(name), name, inputs, shapes, params);
    if (!op) return undefined;
    ops.push(op);
  }
  const last = ops[ops.length - 1];
  if (!last || last.kind !== 'mean') return undefined;
  const [w1, b1, w2, b2] = head.trainableWeights.map((w) => w.read() as tf.Variable);
  if (!w1 || !b2 || w1.shape[0] !== shapes.get(last.name)![0]) return undefined;
  const topParams = params.map((p, i) => ({ ...p, lrScale: lrScales(i, params.length) }));
  const headParams = [w1, b1, w2, b2].map((variable) => ({ variable, dims: variable.shape, lrScale: 1 }));
  return {
    ops,
    params: [...topParams, ...headParams],
    rowShape: shapes.get('x')!,
    featureSize: w1.shape[0],
    hiddenUnits: w1.shape[1] as number,
    numClasses: w2.shape[1] as number,
  };
}

/** One layer's operation (registering its trainable tensors in `params` and its output shape in `shapes`), or undefined when unsupported. */
function planLayer(
  json: LayerJson,
  layer: tf.layers.Layer,
  name: string,
  inputs: string[],
  shapes: Map<string, number[]>,
  params: { variable: tf.Variable; dims: number[] }[],
): TopOp | undefined {
  const cfg = json.config;
  const inShape = shapes.get(inputs[0]);
  if (!inShape) return undefined;
  const [h, w, c] = inShape;
  const param = (short: string, dims: number[]): number | undefined => {
    const variable = variableOf(layer, short);
    if (!variable) return undefined;
    params.push({ variable, dims });
    return params.length - 1;
  };
  let op: TopOp | undefined;
  let out = inShape;
  if (json.class_name === 'Conv2D' && plainConv(cfg, 1)) {
    const cout = Number(cfg.filters);
    const kernel = param('kernel', [c, cout]);
    op = kernel === undefined ? undefined : { kind: 'conv', name, input: inputs[0], cin: c, cout, kernel, bias: param('bias', [cout]) };
    out = [h, w, cout];
  } else if (json.class_name === 'DepthwiseConv2D' && plainConv(cfg, 3)) {
    const kernel = param('depthwise_kernel', [9, c]);
    op = kernel === undefined ? undefined : { kind: 'depthwise', name, input: inputs[0], h, w, c, kernel, bias: param('bias', [c]) };
  } else if (json.class_name === 'BatchNormalization') {
    op = { kind: 'affine', name, input: inputs[0], ...affineOf(layer, cfg, c) };
  } else if (json.class_name === 'ReLU' && !cfg.negative_slope && !cfg.threshold) {
    op = { kind: 'relu', name, input: inputs[0], max: cfg.max_value == null ? Infinity : Number(cfg.max_value) };
  } else if (json.class_name === 'Add' && inputs.length === 2) {
    op = { kind: 'add', name, inputs };
  } else if (json.class_name === 'GlobalAveragePooling2D') {
    op = { kind: 'mean', name, input: inputs[0], h, w };
    out = [c];
  }
  if (op) shapes.set(name, out);
  return op;
}

const f32 = OnnxDataType.float;

/** Builds the forward and backward graph of a plan; `k` names constants uniquely. */
class StepGraph {
  readonly g = new GraphBuilder();
  private n = 0;
  /** Gradient contributions per value, summed when it is read. */
  private readonly grads = new Map<string, string[]>();

  constructor(private readonly plan: TopPlan) {}

  ints(values: number[]): string {
    return this.g.ints(`k${this.n++}`, values);
  }

  floats(data: Float32Array, dims: number[]): string {
    const name = `c${this.n++}`;
    this.g.initializers.push({ name, dims, dataType: f32, data });
    return name;
  }

  scalar(value: number): string {
    return this.g.float(`s${this.n++}`, value);
  }

  /** The forward pass of the top: each op's output under its layer name. */
  forwardTop(): void {
    for (const op of this.plan.ops) this.forwardOp(op);
  }

  private forwardOp(op: TopOp): void {
    const { g } = this;
    switch (op.kind) {
      case 'conv': {
        const y = g.op('MatMul', [op.input, `p${op.kernel}`], undefined, op.bias === undefined ? op.name : undefined);
        if (op.bias !== undefined) g.op('Add', [y, `p${op.bias}`], undefined, op.name);
        return;
      }
      case 'depthwise':
        return this.depthwise(op);
      case 'affine':
        g.op(
          'Add',
          [g.op('Mul', [op.input, this.floats(op.scale, [op.scale.length])]), this.floats(op.shift, [op.shift.length])],
          undefined,
          op.name,
        );
        return;
      case 'relu':
        g.op('Clip', [op.input, this.scalar(0), this.scalar(op.max === Infinity ? 3.4e38 : op.max)], undefined, op.name);
        return;
      case 'add':
        g.op('Add', op.inputs, undefined, op.name);
        return;
      case 'mean':
        g.op(
          'ReduceMean',
          [op.input],
          [
            { name: 'axes', kind: 'ints', value: [1, 2] },
            { name: 'keepdims', kind: 'int', value: 0 },
          ],
          op.name,
        );
    }
  }

  /** A 3×3 depthwise convolution, stride 1, TF 'same' padding (1 pixel each side): onnxruntime's grouped Conv, in NCHW between two transposes. */
  private depthwise(op: Extract<TopOp, { kind: 'depthwise' }>): void {
    const { g } = this;
    const y = this.toNhwc(this.groupConv(this.toNchw(op.input), this.depthwiseKernel(op, false), op.c, 1));
    if (op.bias === undefined) g.op('Identity', [y], undefined, op.name);
    else g.op('Add', [y, `p${op.bias}`], undefined, op.name);
  }

  private toNchw(v: string): string {
    return this.g.op('Transpose', [v], [{ name: 'perm', kind: 'ints', value: [0, 3, 1, 2] }]);
  }

  private toNhwc(v: string): string {
    return this.g.op('Transpose', [v], [{ name: 'perm', kind: 'ints', value: [0, 2, 3, 1] }]);
  }

  private groupConv(x: string, w: string, group: number, pad: number): string {
    return this.g.op(
      'Conv',
      [x, w],
      [
        { name: 'group', kind: 'int', value: group },
        { name: 'pads', kind: 'ints', value: [pad, pad, pad, pad] },
      ],
    );
  }

  /** The kernel parameter [9, C] as a Conv weight [C, 1, 3, 3]; `flipped` turns it by 180° (the input gradient's kernel). */
  private depthwiseKernel(op: Extract<TopOp, { kind: 'depthwise' }>, flipped: boolean): string {
    const { g } = this;
    // Row k = 3·ky + kx; row 8 - k is (2 - ky, 2 - kx).
    const rows = flipped
      ? g.op('Slice', [`p${op.kernel}`, this.ints([8]), this.ints([-10]), this.ints([0]), this.ints([-1])])
      : `p${op.kernel}`;
    const t = g.op('Transpose', [rows], [{ name: 'perm', kind: 'ints', value: [1, 0] }]);
    return g.op('Reshape', [t, this.ints([op.c, 1, 3, 3])]);
  }

  /** Adds `grad` to the gradient of `value` (the cut's input `x` needs none). */
  addGrad(value: string, grad: string): void {
    if (value === 'x') return;
    const list = this.grads.get(value);
    if (list) list.push(grad);
    else this.grads.set(value, [grad]);
  }

  gradOf(value: string): string | undefined {
    const list = this.grads.get(value);
    if (!list) return undefined;
    return list.length === 1 ? list[0] : this.g.op('Sum', list);
  }

  /** The backward pass of the top from the gradient of its output, writing `grad_p<i>` for its parameters. */
  backwardTop(): void {
    for (const op of [...this.plan.ops].reverse()) {
      const dy = this.gradOf(op.name);
      if (dy) this.backwardOp(op, dy);
    }
  }

  private backwardOp(op: TopOp, dy: string): void {
    const { g } = this;
    switch (op.kind) {
      case 'conv':
        return this.convBackward(op, dy);
      case 'depthwise':
        return this.depthwiseBackward(op, dy);
      case 'affine':
        return this.addGrad(op.input, g.op('Mul', [dy, this.floats(op.scale, [op.scale.length])]));
      case 'relu': {
        const inside = g.op('And', [
          g.op('Greater', [op.input, this.scalar(0)]),
          g.op('Less', [op.input, this.scalar(op.max === Infinity ? 3.4e38 : op.max)]),
        ]);
        return this.addGrad(op.input, g.op('Mul', [dy, g.op('Cast', [inside], [{ name: 'to', kind: 'int', value: f32 }])]));
      }
      case 'add':
        return op.inputs.forEach((input) => this.addGrad(input, dy));
      case 'mean': {
        const spread = g.op('Mul', [g.op('Unsqueeze', [dy, this.ints([1, 2])]), this.scalar(1 / (op.h * op.w))]);
        return this.addGrad(op.input, g.op('Expand', [spread, g.op('Shape', [op.input])]));
      }
    }
  }

  private convBackward(op: Extract<TopOp, { kind: 'conv' }>, dy: string): void {
    const { g } = this;
    const dy2 = g.op('Reshape', [dy, this.ints([-1, op.cout])]);
    g.op(
      'Gemm',
      [g.op('Reshape', [op.input, this.ints([-1, op.cin])]), dy2],
      [{ name: 'transA', kind: 'int', value: 1 }],
      `grad_p${op.kernel}`,
    );
    if (op.bias !== undefined) this.biasGrad(dy, op.bias);
    if (op.input !== 'x')
      this.addGrad(op.input, g.op('MatMul', [dy, g.op('Transpose', [`p${op.kernel}`], [{ name: 'perm', kind: 'ints', value: [1, 0] }])]));
  }

  private biasGrad(dy: string, param: number): void {
    this.g.op('ReduceSum', [dy, this.ints([0, 1, 2])], [{ name: 'keepdims', kind: 'int', value: 0 }], `grad_p${param}`);
  }

  /**
   * The kernel's gradient dK[k, c] = Σ over images and pixels of dy · (padded x shifted by k) is
   * itself a grouped convolution: the padded input as one image of C·N channels, dy as C kernels of
   * N channels each (group C). The input's gradient is the convolution of dy with the kernel turned by 180°.
   */
  private depthwiseBackward(op: Extract<TopOp, { kind: 'depthwise' }>, dy: string): void {
    const { g } = this;
    const cnhw = [{ name: 'perm', kind: 'ints' as const, value: [3, 0, 1, 2] }];
    const padded = g.op('Pad', [op.input, this.ints([0, 1, 1, 0, 0, 1, 1, 0])]);
    const input = g.op('Reshape', [g.op('Transpose', [padded], cnhw), this.ints([1, -1, op.h + 2, op.w + 2])]);
    const dk = g.op('Conv', [input, g.op('Transpose', [dy], cnhw)], [{ name: 'group', kind: 'int', value: op.c }]);
    const rows = g.op('Transpose', [g.op('Reshape', [dk, this.ints([op.c, 9])])], [{ name: 'perm', kind: 'ints', value: [1, 0] }]);
    g.op('Identity', [rows], undefined, `grad_p${op.kernel}`);
    if (op.bias !== undefined) this.biasGrad(dy, op.bias);
    if (op.input === 'x') return;
    this.addGrad(op.input, this.toNhwc(this.groupConv(this.toNchw(dy), this.depthwiseKernel(op, true), op.c, 1)));
  }

  /** The head on the top's output: probabilities `probs`; with `training`, its backward pass too (into the top's output). */
  head(training: boolean): void {
    const { g, plan } = this;
    const h = plan.params.length - 4;
    const [w1, b1, w2, b2] = [h, h + 1, h + 2, h + 3].map((i) => `p${i}`);
    const features = plan.ops[plan.ops.length - 1].name;
    const z1 = g.op('Gemm', [features, w1, b1]);
    const hidden = g.op('Relu', [z1]);
    const hd = training ? g.op('Mul', [hidden, 'mask']) : hidden;
    const p = g.op('Softmax', [g.op('Gemm', [hd, w2, b2])], [{ name: 'axis', kind: 'int', value: 1 }], 'probs');
    if (!training) return;
    const keep = [{ name: 'keepdims', kind: 'int' as const, value: 1 }];
    const pTrue = g.op('ReduceSum', [g.op('Mul', [p, 'onehot']), this.ints([1])], keep);
    const clipped = g.op('Clip', [pTrue, this.scalar(PROB_EPSILON), this.scalar(1 - PROB_EPSILON)]);
    const inside = g.op('Cast', [g.op('Equal', [clipped, pTrue])], [{ name: 'to', kind: 'int', value: f32 }]);
    const dz2 = g.op('Mul', [g.op('Sub', [p, 'onehot']), g.op('Mul', ['row_scale', inside])]);
    const transA = [{ name: 'transA', kind: 'int' as const, value: 1 }];
    const transB = [{ name: 'transB', kind: 'int' as const, value: 1 }];
    const noKeep = [{ name: 'keepdims', kind: 'int' as const, value: 0 }];
    g.op('Gemm', [hd, dz2], transA, `grad_p${h + 2}`);
    g.op('ReduceSum', [dz2, this.ints([0])], noKeep, `grad_p${h + 3}`);
    const gate = g.op('Cast', [g.op('Greater', [z1, this.scalar(0)])], [{ name: 'to', kind: 'int', value: f32 }]);
    const dz1 = g.op('Mul', [g.op('Mul', [g.op('Gemm', [dz2, w2], transB), 'mask']), gate]);
    g.op('Gemm', [features, dz1], transA, `grad_p${h}`);
    g.op('ReduceSum', [dz1, this.ints([0])], noKeep, `grad_p${h + 1}`);
    this.addGrad(features, g.op('Gemm', [dz1, w1], transB));
  }
}

/** The step graph (gradients of every parameter and the batch's probabilities) or the inference graph (probabilities) of a plan. */
export function fineTuneGraph(plan: TopPlan, training: boolean): OnnxModel {
  const s = new StepGraph(plan);
  s.forwardTop();
  s.head(training);
  if (training) s.backwardTop();
  const params = plan.params.map((p, i) => ({ name: `p${i}`, elemType: f32, shape: p.dims }));
  const inputs = [
    { name: 'x', elemType: f32, shape: ['batch', ...plan.rowShape] },
    ...(training
      ? [
          { name: 'onehot', elemType: f32, shape: ['batch', plan.numClasses] },
          { name: 'row_scale', elemType: f32, shape: ['batch', 1] },
          { name: 'mask', elemType: f32, shape: ['batch', plan.hiddenUnits] },
        ]
      : []),
    ...params,
  ];
  const probs = { name: 'probs', elemType: f32, shape: ['batch', plan.numClasses] };
  const outputs = training ? [...params.map((p) => ({ ...p, name: `grad_${p.name}` })), probs] : [probs];
  return model(training ? 'fine_tune_step' : 'fine_tune_predict', s.g, inputs, outputs);
}

/** The top alone: activations `x` and the top's parameters in, `features` [N, F] out. */
function topFeaturesGraph(plan: TopPlan): OnnxModel {
  const s = new StepGraph(plan);
  s.forwardTop();
  s.g.op('Identity', [plan.ops[plan.ops.length - 1].name], undefined, 'features');
  const params = plan.params.slice(0, -4).map((p, i) => ({ name: `p${i}`, elemType: f32, shape: p.dims }));
  return model(
    'top_features',
    s.g,
    [{ name: 'x', elemType: f32, shape: ['batch', ...plan.rowShape] }, ...params],
    [{ name: 'features', elemType: f32, shape: ['batch', plan.featureSize] }],
  );
}

/** Features of `n` rows of activations `x` through the top of `plan` with its variables' current weights, on onnxruntime (one thread). */
export async function onnxTopFeatures(ort: OrtModule, plan: TopPlan, x: Float32Array, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeOnnxModel(topFeaturesGraph(plan)), onnxSessionOptions(1));
  try {
    const per = plan.rowShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(n * plan.featureSize);
    const feeds: Record<string, Ort.Tensor> = {};
    plan.params.slice(0, -4).forEach((p, i) => (feeds[`p${i}`] = new ort.Tensor('float32', p.variable.dataSync() as Float32Array, p.dims)));
    for (let start = 0; start < n; start += EVAL_ROWS) {
      const end = Math.min(n, start + EVAL_ROWS);
      feeds.x = new ort.Tensor('float32', x.subarray(start * per, end * per), [end - start, ...plan.rowShape]);
      out.set((await session.run(feeds)).features.data as Float32Array, start * plan.featureSize);
    }
    return out;
  } finally {
    await session.release();
  }
}

/** What the engine needs besides the plan. */
export interface OnnxFineTuneSpec {
  numClasses: number;
  classWeights: Float32Array | null;
  /** Dropout mask for a batch of `rows`, or undefined for none. */
  masks(rows: number): Float32Array | undefined;
  /** Views each training row holds ([views, h, w, c]; 1: rows are [h, w, c]). */
  trainViews: number;
  /** The view a training row is seen through in this step, drawn by the caller. */
  chooseView(): number;
  threads: number;
}

/** The fine-tuning step engine on onnxruntime for `plan`, starting from the current values of its variables. */
export async function onnxFineTuneEngine(ort: OrtModule, tfx: Tf, plan: TopPlan, spec: OnnxFineTuneSpec): Promise<StepEngine> {
  const options = onnxSessionOptions(spec.threads);
  const step = await ort.InferenceSession.create(encodeOnnxModel(fineTuneGraph(plan, true)), options);
  const predict = await ort.InferenceSession.create(encodeOnnxModel(fineTuneGraph(plan, false)), options).catch(async (error) => {
    await step.release();
    throw error;
  });
  return new OnnxFineTuneEngine(ort, tfx, plan, spec, { step, predict });
}

const EVAL_ROWS = 256;

/** Steps over the two sessions; each parameter in its own Adam buffers, which onnxruntime reads and writes in place. */
class OnnxFineTuneEngine implements StepEngine {
  private readonly adam: AdamBuffers[];
  private best: Float32Array[] | null = null;
  private xb = new Float32Array(0);
  private xv = new Float32Array(0);
  private t = 0;
  private totals = { loss: 0, hits: 0 };
  private readonly per: number;

  constructor(
    private readonly ort: OrtModule,
    private readonly tfx: Tf,
    private readonly plan: TopPlan,
    private readonly spec: OnnxFineTuneSpec,
    private readonly sessions: { step: Ort.InferenceSession; predict: Ort.InferenceSession },
  ) {
    this.per = plan.rowShape.reduce((a, b) => a * b, 1);
    this.adam = plan.params.map((p) => {
      const buffers = createAdamBuffers(p.variable.size);
      buffers.params.set(p.variable.dataSync() as Float32Array);
      return buffers;
    });
  }

  private tensor(data: Float32Array, dims: number[]): Ort.Tensor {
    return new this.ort.Tensor('float32', data, dims);
  }

  private paramFeeds(feeds: Record<string, Ort.Tensor>): void {
    this.plan.params.forEach((p, i) => (feeds[`p${i}`] = this.tensor(this.adam[i].params.subarray(0, p.variable.size), p.dims)));
  }

  async step(rows: Rows, order: Int32Array, start: number, end: number, lr: number): Promise<void> {
    const { numClasses: C, hiddenUnits: H, rowShape } = this.plan;
    const count = end - start;
    const views = this.spec.trainViews;
    if (this.xb.length < count * this.per * views) this.xb = new Float32Array(count * this.per * views);
    const batch = gatherRows(rows, order, start, end, this.xb);
    if (views > 1) {
      if (this.xv.length < count * this.per) this.xv = new Float32Array(count * this.per);
      batch.x = pickViews(batch.x, count, views, this.per, () => this.spec.chooseView(), this.xv).subarray(0, count * this.per);
    }
    const onehot = new Float32Array(count * C);
    const rowScale = new Float32Array(count);
    for (let i = 0; i < count; i++) {
      onehot[i * C + batch.y[i]] = 1;
      rowScale[i] = (this.spec.classWeights ? this.spec.classWeights[batch.y[i]] : 1) / count;
    }
    const probs = new Float32Array(count * C);
    const feeds: Record<string, Ort.Tensor> = {
      x: this.tensor(batch.x, [count, ...rowShape]),
      onehot: this.tensor(onehot, [count, C]),
      row_scale: this.tensor(rowScale, [count, 1]),
      mask: this.tensor(this.spec.masks(count) ?? new Float32Array(count * H).fill(1), [count, H]),
    };
    this.paramFeeds(feeds);
    const fetches: Record<string, Ort.Tensor> = { probs: this.tensor(probs, [count, C]) };
    this.plan.params.forEach((p, i) => (fetches[`grad_p${i}`] = this.tensor(this.adam[i].grad.subarray(0, p.variable.size), p.dims)));
    await this.sessions.step.run(feeds, fetches);
    this.t++;
    this.plan.params.forEach((p, i) => {
      const s = adamScalars(lr * p.lrScale, this.t);
      this.adam[i].update(p.variable.size, ADAM.beta1, ADAM.beta2, s.scale, s.eps);
    });
    scoreProbabilities(probs, batch.y, C, this.totals, this.spec.classWeights);
  }

  takeEpochTotals(): { lossSum: number; hits: number } {
    const epoch = { lossSum: this.totals.loss, hits: this.totals.hits };
    this.totals = { loss: 0, hits: 0 };
    return epoch;
  }

  async evaluate(rows: Rows): Promise<{ loss: number; acc: number }> {
    if (rows.n === 0) return { loss: Number.NaN, acc: Number.NaN };
    const score = { loss: 0, hits: 0 };
    for (let start = 0; start < rows.n; start += EVAL_ROWS) {
      const end = Math.min(rows.n, start + EVAL_ROWS);
      const feeds: Record<string, Ort.Tensor> = {
        x: this.tensor(rows.x.subarray(start * this.per, end * this.per), [end - start, ...this.plan.rowShape]),
      };
      this.paramFeeds(feeds);
      const out = await this.sessions.predict.run(feeds);
      scoreProbabilities(out.probs.data as Float32Array, rows.y.subarray(start, end), this.plan.numClasses, score);
    }
    return { loss: score.loss / rows.n, acc: score.hits / rows.n };
  }

  keepBest(): void {
    this.best = this.adam.map((a, i) => a.params.slice(0, this.plan.params[i].variable.size));
  }

  restoreBest(): void {
    this.best?.forEach((b, i) => this.adam[i].params.set(b));
  }

  publish(): void {
    this.tfx.tidy(() =>
      this.plan.params.forEach((p, i) =>
        p.variable.assign(this.tfx.tensor(this.adam[i].params.subarray(0, p.variable.size), p.variable.shape)),
      ),
    );
  }

  dispose(): void {
    void this.sessions.step.release();
    void this.sessions.predict.release();
  }
}
