// A fast inference graph for the frozen base, built from a loaded Keras-style LayersModel:
// BatchNormalization folded into the preceding convolution's weights and bias, the ReLU/ReLU6
// after it fused into `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`, Keras's explicit
// ZeroPadding + 'valid' convolution turned into the equivalent 'same' padding where it is one,
// and intermediate activations disposed as soon as their last consumer has run. On the
// WebAssembly backend this is several times faster than `LayersModel.predict`.
// Covers the layer kinds of MobileNet V1/V2; for anything else it says why and the caller
// falls back to the layers model.
import type * as tfType from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';
import { TrainerError } from '../util/errors';

type Tensor = tfType.Tensor;
type Activation = 'linear' | 'relu' | 'relu6';

export interface FoldedGraph {
  /** Feature vectors `[batch, features]` for preprocessed input `[batch, h, w, 3]` (the map itself when built with `pool: false`); the caller owns the result. */
  run(x: tfType.Tensor4D): tfType.Tensor2D;
  /** Layers computed, after folding (for logs). */
  readonly opCount: number;
  dispose(): void;
}

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  inboundNodes: { inboundLayers: LayerLike[] }[];
  outputShape: (number | null)[] | (number | null)[][];
  weights: { originalName: string; read(): Tensor }[];
}

interface Op {
  /** Key under which the output is stored (the name of the last layer folded into this op). */
  out: string;
  inputs: string[];
  apply(inputs: Tensor[]): Tensor;
  weights: Tensor[];
}

type Padding2D = [[number, number], [number, number]];

/** Why the fused route cannot take this model; caught by `buildFoldedGraph`, which falls back to the layers route. */
class Unsupported extends TrainerError {
  constructor(message: string) {
    super('model', message);
  }
}

/**
 * Builds the folded graph up to `featureLayer` (pooled to a vector if 4-D, unless `pool: false`:
 * Grad-CAM needs the map itself), or returns why it cannot.
 */
export function buildFoldedGraph(
  tf: Tf,
  model: tfType.LayersModel,
  featureLayer: string,
  opts: { pool?: boolean } = {},
): FoldedGraph | { unsupported: string } {
  const created: Tensor[] = [];
  try {
    const builder = new FoldedGraphBuilder(tf, model, featureLayer, created);
    for (const layer of builder.order) builder.add(layer);
    return builder.finish(opts.pool ?? true);
  } catch (err) {
    for (const t of created) t.dispose();
    if (err instanceof Unsupported) return { unsupported: err.message };
    throw err;
  }
}

/**
 * Turns the layers the feature layer depends on, in topological order, into ops; a layer folded
 * into an earlier op (BatchNorm, activation, padding) is skipped, and its name becomes an alias of
 * that op's output.
 */
class FoldedGraphBuilder {
  /** The layers the feature layer depends on, in the model's (topological) order. */
  readonly order: LayerLike[];
  private readonly target: LayerLike;
  private readonly consumers = new Map<string, LayerLike[]>();
  private readonly alias = new Map<string, string>();
  private readonly folded = new Set<string>();
  private readonly ops: Op[] = [];
  private readonly inputName: string;
  /** Explicit paddings waiting for the 'valid' convolution they were folded into. */
  private readonly pendingPad = new Map<string, { padding: Padding2D; inputShape: (number | null)[] }>();

  constructor(
    private readonly tf: Tf,
    model: tfType.LayersModel,
    private readonly featureLayer: string,
    /** Every tensor the graph holds, so the caller can free them on failure and on dispose. */
    private readonly created: Tensor[],
  ) {
    const layers = model.layers as unknown as LayerLike[];
    const target = layers.find((l) => l.name === featureLayer);
    if (!target) throw new Unsupported(`feature layer '${featureLayer}' is not in the model`);
    if (model.inputs.length !== 1) throw new Unsupported('the model has more than one input');
    // A Sequential model does not list its input layer among `layers`, so the name the first
    // layer reads from comes from the model's input tensor, not from an InputLayer in `order`.
    this.inputName = model.inputs[0].sourceLayer.name;
    this.target = target;
    const needed = new Set<string>();
    const stack = [target];
    while (stack.length > 0) {
      const l = stack.pop()!;
      if (needed.has(l.name)) continue;
      needed.add(l.name);
      stack.push(...parents(l));
    }
    this.order = layers.filter((l) => needed.has(l.name));
    for (const l of this.order) for (const p of parents(l)) this.consumers.set(p.name, [...(this.consumers.get(p.name) ?? []), l]);
  }

  /** Adds the op(s) for one layer, unless it was already folded into an earlier one. */
  add(layer: LayerLike): void {
    if (this.folded.has(layer.name)) return;
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const inputs = parents(layer).map((p) => this.keyOf(p.name));
    const tf = this.tf;
    switch (cls) {
      case 'InputLayer':
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
        this.alias.set(layer.name, inputs[0]);
        break;
      case 'ZeroPadding2D':
        this.addZeroPadding(layer, cfg, inputs);
        break;
      case 'Conv2D':
      case 'DepthwiseConv2D':
        this.addConvolution(layer, cfg, inputs);
        break;
      case 'BatchNormalization': {
        const { scale, shift } = batchNormAffine(layer, lastDim(shapeOf(layer)));
        const s = this.keep(tf.tensor1d(Float32Array.from(scale)));
        const t = this.keep(tf.tensor1d(Float32Array.from(shift)));
        this.ops.push({ out: layer.name, inputs, weights: [s, t], apply: ([x]) => tf.tidy(() => tf.add(tf.mul(x, s), t)) });
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const act = standaloneActivation(layer);
        if (!act) throw new Unsupported(`layer '${layer.name}' (${cls}) has an unsupported activation`);
        if (act === 'linear') this.alias.set(layer.name, inputs[0]);
        else this.ops.push({ out: layer.name, inputs, weights: [], apply: ([x]) => (act === 'relu' ? tf.relu(x) : tf.relu6(x)) });
        break;
      }
      case 'Add':
        this.ops.push({ out: layer.name, inputs, weights: [], apply: (xs) => (xs.length === 2 ? tf.add(xs[0], xs[1]) : tf.addN(xs)) });
        break;
      case 'GlobalAveragePooling2D':
        checkChannelsLast(layer, cfg);
        if (cfg.keepDims) throw new Unsupported(`layer '${layer.name}' keeps dimensions`);
        this.ops.push({ out: layer.name, inputs, weights: [], apply: ([x]) => tf.mean(x, [1, 2]) });
        break;
      default:
        throw new Unsupported(`layer '${layer.name}' is a ${cls}, which the fused route does not handle`);
    }
  }

  /** The graph over the ops added so far, computing the feature layer's output. */
  finish(pool: boolean): FoldedGraph {
    const pooled = pool && shapeOf(this.target).length === 4;
    return foldedGraph(this.tf, this.ops, this.inputName, this.keyOf(this.featureLayer), pooled, this.created);
  }

  /** A padding before a 'valid' convolution becomes that convolution's padding; any other is a `pad` op. */
  private addZeroPadding(layer: LayerLike, cfg: Record<string, unknown>, inputs: string[]): void {
    const padding = cfg.padding as Padding2D;
    checkChannelsLast(layer, cfg);
    const next = this.soleConsumer(layer);
    if (next && (next.getClassName() === 'Conv2D' || next.getClassName() === 'DepthwiseConv2D') && next.getConfig().padding === 'valid') {
      this.alias.set(layer.name, inputs[0]);
      this.pendingPad.set(next.name, { padding, inputShape: shapeOf(parents(layer)[0]) });
      return;
    }
    const tf = this.tf;
    this.ops.push({ out: layer.name, inputs, weights: [], apply: ([x]) => tf.pad(x, [[0, 0], padding[0], padding[1], [0, 0]]) });
  }

  /** One fused convolution op, with the BatchNorm and activation that follow it folded in. */
  private addConvolution(layer: LayerLike, cfg: Record<string, unknown>, inputs: string[]): void {
    const conv = readConvolution(layer, cfg);
    const last = this.foldFollowers(layer, conv);
    const { pad, prePad } = convPadding(conv, cfg, this.pendingPad.get(layer.name));
    const tf = this.tf;
    const filter = this.keep(tf.tensor4d(conv.kernelData, conv.kernelShape)) as tfType.Tensor4D;
    const bias = this.keep(tf.tensor1d(Float32Array.from(conv.bias)));
    const { depthwise, strides, activation } = conv;
    this.ops.push({
      out: last.name,
      inputs,
      weights: [filter, bias],
      apply: ([x]) => {
        const input = (prePad ? tf.pad(x, [[0, 0], prePad[0], prePad[1], [0, 0]]) : x) as tfType.Tensor4D;
        const out = depthwise
          ? tf.fused.depthwiseConv2d({ x: input, filter, strides, pad: pad as 'valid' | 'same', bias, activation })
          : tf.fused.conv2d({ x: input, filter, strides, pad, bias, activation });
        if (prePad) input.dispose();
        return out;
      },
    });
    for (const name of [layer.name, ...(last !== layer ? [last.name] : [])]) this.alias.set(name, last.name);
  }

  /**
   * Folds a BatchNormalization right after a linear convolution into its kernel and bias, and a
   * ReLU/ReLU6 after that into its activation; returns the last layer folded (or the convolution).
   */
  private foldFollowers(layer: LayerLike, conv: Convolution): LayerLike {
    let last = layer;
    const bn = conv.activation === 'linear' ? this.soleConsumer(layer) : undefined;
    if (bn && bn.getClassName() === 'BatchNormalization') {
      const { scale, shift } = batchNormAffine(bn, conv.outChannels);
      // out = (conv(x) + b) * s + t  ==  conv_with(W * s)(x) + (b * s + t)
      for (let i = 0; i < conv.kernelData.length; i++) conv.kernelData[i] *= scale[i % conv.outChannels];
      for (let c = 0; c < conv.outChannels; c++) conv.bias[c] = conv.bias[c] * scale[c] + shift[c];
      this.folded.add(bn.name);
      last = bn;
    }
    if (conv.activation === 'linear') {
      const act = this.soleConsumer(last);
      const fused = act ? standaloneActivation(act) : undefined;
      if (act && fused) {
        conv.activation = fused;
        this.folded.add(act.name);
        last = act;
      }
    }
    return last;
  }

  /** The layer reading `l`'s output when it is the only one (and `l` is not the feature layer itself). */
  private soleConsumer(l: LayerLike): LayerLike | undefined {
    const c = this.consumers.get(l.name) ?? [];
    return c.length === 1 && l !== this.target ? c[0] : undefined;
  }

  private keyOf(name: string): string {
    return this.alias.get(name) ?? name;
  }

  private keep(t: Tensor): Tensor {
    const kept = this.tf.keep(t);
    this.created.push(kept);
    return kept;
  }
}

/** A convolution layer's weights and settings, in the form the fused kernels take. */
interface Convolution {
  depthwise: boolean;
  strides: [number, number];
  kernelSize: [number, number];
  /** A copy, so folding a BatchNorm into it leaves the layer's own weights alone. */
  kernelData: Float32Array;
  kernelShape: [number, number, number, number];
  outChannels: number;
  /** In double precision until the BatchNorm is folded in. */
  bias: Float64Array;
  activation: Activation;
}

/** Reads a Conv2D or DepthwiseConv2D layer; a dilated or channels-first one is unsupported. */
function readConvolution(layer: LayerLike, cfg: Record<string, unknown>): Convolution {
  checkChannelsLast(layer, cfg);
  const depthwise = layer.getClassName() === 'DepthwiseConv2D';
  const dilation = cfg.dilationRate as number[] | number | undefined;
  if (dilation !== undefined && [dilation].flat().some((d) => d !== 1)) throw new Unsupported(`layer '${layer.name}' is dilated`);
  const kernel = findWeight(layer, depthwise ? 'depthwise_kernel' : 'kernel').read();
  const kernelShape = kernel.shape as [number, number, number, number];
  const outChannels = depthwise ? kernelShape[2] * kernelShape[3] : kernelShape[3];
  const bias = new Float64Array(outChannels);
  if (cfg.useBias)
    findWeight(layer, 'bias')
      .read()
      .dataSync()
      .forEach((v, i) => (bias[i] = v));
  return {
    depthwise,
    strides: cfg.strides as [number, number],
    kernelSize: cfg.kernelSize as [number, number],
    kernelData: Float32Array.from(kernel.dataSync()),
    kernelShape,
    outChannels,
    bias,
    activation: activationOf(layer, cfg.activation as string | undefined),
  };
}

/**
 * The convolution's padding with a folded explicit padding: 'same' where that is what it amounts
 * to, else explicit pads; the depthwise kernel takes no explicit pads, so it gets a `pad` first.
 */
function convPadding(
  conv: Convolution,
  cfg: Record<string, unknown>,
  pend: { padding: Padding2D; inputShape: (number | null)[] } | undefined,
): { pad: 'valid' | 'same' | [[0, 0], [number, number], [number, number], [0, 0]]; prePad?: Padding2D } {
  const declared = cfg.padding === 'same' ? 'same' : 'valid';
  if (!pend) return { pad: declared };
  if (samePadding(pend.inputShape, conv.kernelSize, conv.strides, pend.padding)) return { pad: 'same' };
  if (!conv.depthwise) return { pad: [[0, 0], pend.padding[0], pend.padding[1], [0, 0]] };
  return { pad: declared, prePad: pend.padding };
}

/** Runs `ops` in order on one batch, freeing each intermediate value after its last reader. */
function foldedGraph(tf: Tf, ops: Op[], inputName: string, outputKey: string, pool: boolean, created: Tensor[]): FoldedGraph {
  const readers = new Map<string, number>();
  for (const op of ops) for (const i of op.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  return {
    opCount: ops.length,
    run(x) {
      return tf.tidy(() => {
        const values = new Map<string, Tensor>([[inputName, x]]);
        const left = new Map(readers);
        for (const op of ops) {
          const ins = op.inputs.map((k) => {
            const v = values.get(k);
            if (!v) throw new Error(`fused graph: value '${k}' missing`);
            return v;
          });
          values.set(op.out, op.apply(ins));
          for (const k of op.inputs) {
            const n = (left.get(k) ?? 0) - 1;
            left.set(k, n);
            if (n === 0 && k !== outputKey && k !== inputName) {
              values.get(k)!.dispose();
              values.delete(k);
            }
          }
        }
        const out = values.get(outputKey);
        if (!out) throw new Error(`fused graph: output '${outputKey}' missing`);
        return (pool ? tf.mean(out, [1, 2]) : out) as tfType.Tensor2D;
      });
    },
    dispose() {
      for (const t of created) t.dispose();
      created.length = 0;
    },
  };
}

/** The layers whose outputs `l` reads; a layer called more than once is unsupported. */
function parents(l: LayerLike): LayerLike[] {
  if (l.getClassName() === 'InputLayer') return [];
  if (l.inboundNodes.length !== 1) throw new Unsupported(`layer '${l.name}' is shared (${l.inboundNodes.length} call sites)`);
  return l.inboundNodes[0].inboundLayers;
}

function checkChannelsLast(layer: LayerLike, cfg: Record<string, unknown>): void {
  if (cfg.dataFormat !== undefined && cfg.dataFormat !== 'channelsLast') throw new Unsupported(`layer '${layer.name}' is channels_first`);
}

function shapeOf(layer: LayerLike): (number | null)[] {
  const s = layer.outputShape;
  if (Array.isArray(s[0])) throw new Unsupported(`layer '${layer.name}' has several outputs`);
  return s as (number | null)[];
}

function lastDim(shape: (number | null)[]): number {
  const c = shape[shape.length - 1];
  if (typeof c !== 'number') throw new Unsupported('unknown channel count');
  return c;
}

function findWeight(layer: LayerLike, suffix: string): { read(): Tensor } {
  const w = layer.weights.find((v) => v.originalName === `${layer.name}/${suffix}` || v.originalName.endsWith(`/${suffix}`));
  if (!w) throw new Unsupported(`layer '${layer.name}' has no '${suffix}' weight`);
  return w;
}

/** BatchNorm in inference mode as `x * scale + shift`, computed in double precision. */
function batchNormAffine(layer: LayerLike, channels: number): { scale: Float64Array; shift: Float64Array } {
  const cfg = layer.getConfig();
  const axis = cfg.axis as number | number[];
  if (![axis].flat().every((a) => a === -1 || a === 3))
    throw new Unsupported(`layer '${layer.name}' normalises another axis than channels`);
  const eps = (cfg.epsilon as number | undefined) ?? 1e-3;
  const read = (suffix: string) => findWeight(layer, suffix).read().dataSync();
  const gamma = cfg.scale === false ? undefined : read('gamma');
  const beta = cfg.center === false ? undefined : read('beta');
  const mean = read('moving_mean');
  const variance = read('moving_variance');
  if (mean.length !== channels) throw new Unsupported(`layer '${layer.name}' has ${mean.length} channels, expected ${channels}`);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = (gamma ? gamma[c] : 1) / Math.sqrt(variance[c] + eps);
    shift[c] = (beta ? beta[c] : 0) - mean[c] * scale[c];
  }
  return { scale, shift };
}

function activationOf(layer: LayerLike, name: string | undefined): Activation {
  if (name === undefined || name === 'linear') return 'linear';
  if (name === 'relu' || name === 'relu6') return name;
  throw new Unsupported(`layer '${layer.name}' uses activation '${name}'`);
}

/** The activation a ReLU/Activation layer computes, if the fused kernels have it. */
function standaloneActivation(layer: LayerLike): Activation | undefined {
  const cfg = layer.getConfig();
  if (layer.getClassName() === 'Activation') {
    const a = cfg.activation as string;
    return a === 'relu' || a === 'relu6' || a === 'linear' ? a : undefined;
  }
  if (layer.getClassName() !== 'ReLU') return undefined;
  const max = cfg.maxValue;
  if (max === undefined || max === null) return 'relu';
  return max === 6 ? 'relu6' : undefined;
}

/** True when TF 'same' padding of this input equals the explicit padding. */
function samePadding(inputShape: (number | null)[], kernel: [number, number], strides: [number, number], padding: Padding2D): boolean {
  for (let d = 0; d < 2; d++) {
    const size = inputShape[1 + d];
    if (typeof size !== 'number') return false;
    const out = Math.ceil(size / strides[d]);
    const total = Math.max((out - 1) * strides[d] + kernel[d] - size, 0);
    const before = Math.floor(total / 2);
    if (padding[d][0] !== before || padding[d][1] !== total - before) return false;
  }
  return true;
}
