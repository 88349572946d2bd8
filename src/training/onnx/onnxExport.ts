// Export of a TF.js LayersModel to ONNX, written by the project from the TF.js weights, for the
// layer kinds MobileNet V1/V2 and the classifier head use. Two callers: the frozen base runs in
// onnxruntime-node (onnxFeatures.ts), and users export a trained classifier ("Export to ONNX").
//
// Layout: TF.js is NHWC, ONNX convolutions are NCHW. The graph takes NHWC input (what the decoder
// produces) and transposes once; every 4-D value then stays NCHW until something needs TF's
// element order (Flatten, Reshape, Dense on 4-D, the graph output).
// BatchNormalization after a linear convolution is folded into that convolution's weights and
// bias; ZeroPadding2D before a convolution becomes that convolution's pads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import { RUN_FILES, type ModelMetadata, type NoveltyFile } from '../../shared/runFolder';
import type { OnnxAttribute, OnnxDataTypeValue, OnnxNode, OnnxTensor } from './onnxProto';
import { OnnxDataType, encodeOnnxModel } from './onnxProto';
import { loadLayersModelFromDir } from '../models/baseModel';
import { readMetadata } from '../models/classifierModel';
import { writeFileAtomic } from '../util/atomicWrite';
import type { Tf } from '../util/tf';
import { TrainerError } from '../util/errors';
import { VIEW_SPECS, type ViewName } from '../../shared/views';
import { MIN_PROB } from '../fit/calibration';

/** Bumped whenever the exporter's output changes, so cached graphs are rebuilt. */
export const ONNX_EXPORTER_VERSION = 2;

const OPSET = 13;
const IR_VERSION = 7;

export interface OnnxExportOptions {
  /** Spatial size of the input (square); fills in unknown input dimensions and is checked against known ones. */
  inputSize: number;
  /** `x * scale + offset`, applied inside the graph when `includePreprocessing` is true. */
  preprocessing: { scale: number; offset: number };
  includePreprocessing: boolean;
  /** Element type of the graph input: uint8 lets the caller pass decoded pixels without a copy. Default float32. */
  inputType?: 'float32' | 'uint8';
  /** Name of the graph input (default `input`). */
  inputName?: string;
  /** Export up to this (top-level) layer's output instead of the model's output; a 4-D output is averaged over height and width unless `spatialOutput`. */
  outputLayer?: string;
  /** Keep a 4-D `outputLayer` output as it is (NHWC), instead of averaging it over height and width. */
  spatialOutput?: boolean;
  /** Name of the graph output (default `output`). */
  outputName?: string;
  /** Extra key/value pairs stored in the model's metadata_props. */
  metadata?: Record<string, string>;
  /** Adds a second output, the novelty score, computed from the input of the layer `featuresOf` (the head). */
  novelty?: NoveltyGraph;
  /** Test-time augmentation inside the graph: the model runs on each view of the input, the output is their averaged probabilities (fit/viewAveraging.ts) and the novelty reads the mean of their features. */
  views?: readonly ViewName[];
}

/** The unknown-image detector as the ONNX graph computes it (see fit/novelty.ts). */
export interface NoveltyGraph {
  featuresOf: string;
  outputName: string;
  featureSize: number;
  classes: number;
  /** featureSize × featureSize, row-major. */
  whitening: Float32Array;
  /** classes × featureSize whitened class means, row-major. */
  means: Float32Array;
}

/** A layer or model class the exporter knows, for error messages. */
export const SUPPORTED_LAYER_CLASSES = [
  'InputLayer',
  'ZeroPadding2D',
  'Conv2D',
  'DepthwiseConv2D',
  'BatchNormalization',
  'ReLU',
  'LeakyReLU',
  'Activation',
  'Softmax',
  'Add',
  'Multiply',
  'Concatenate',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'MaxPooling2D',
  'AveragePooling2D',
  'Reshape',
  'Flatten',
  'Dropout',
  'SpatialDropout2D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Dense',
  'Rescaling',
  'Model',
  'Functional',
  'Sequential',
] as const;

type Shape = (number | null)[];

/** A value of the graph being built. `shape` is always in TF order (NHWC for 4-D). */
interface Value {
  name: string;
  shape: Shape;
  /** True when a 4-D value is stored NCHW in the ONNX graph. */
  nchw: boolean;
  /** How many layers consume this value (folding is only safe when exactly one does). */
  consumers: number;
  /** Set on a convolution output whose weights a following BatchNormalization may fold into. */
  conv?: { weight: Float32Array; bias: Float32Array; outChannels: number; linear: boolean };
  /** A ZeroPadding2D not emitted yet: a following convolution absorbs it into its pads. */
  pendingPad?: { source: Value; pads: [number, number, number, number]; materialized?: Value };
}

type LayerConfig = Record<string, unknown>;
interface SerializedLayer {
  class_name: string;
  name?: string;
  config: LayerConfig;
  inbound_nodes?: [string, number, number, unknown?][][];
}
type Ref = [string, number, number];

/** The parts of a tfjs Container (LayersModel) the exporter reads. */
interface ContainerLike {
  getLayer(name: string): tfType.layers.Layer;
}

const CONTAINER_CLASSES = new Set(['Model', 'Functional', 'Sequential']);
const IDENTITY_CLASSES = new Set(['Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

/** A layer the exporter cannot write; `convertNamed` turns it into a message naming the layer and the supported classes. */
class UnsupportedLayerError extends TrainerError {
  constructor(what: string) {
    super('model', what);
  }
}

/** Builds the node list and initializers of one ONNX graph. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly used = new Set<string>();

  fresh(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_./:-]/g, '_') || 'v';
    let name = base;
    for (let i = 1; this.used.has(name); i++) name = `${base}_${i}`;
    this.used.add(name);
    return name;
  }

  constant(hint: string, dims: number[], data: Float32Array | BigInt64Array, dataType: OnnxDataTypeValue = OnnxDataType.float): string {
    const name = this.fresh(hint);
    this.initializers.push({ name, dims, dataType, data });
    return name;
  }

  int64s(hint: string, values: number[]): string {
    return this.constant(hint, [values.length], BigInt64Array.from(values.map((v) => BigInt(v))), OnnxDataType.int64);
  }

  scalar(hint: string, value: number): string {
    return this.constant(hint, [], Float32Array.of(value));
  }

  node(opType: string, inputs: string[], hint: string, attributes?: OnnxAttribute[]): string {
    const output = this.fresh(hint);
    this.nodes.push({ opType, name: output, inputs, outputs: [output], attributes });
    return output;
  }
}

function asNumbers(x: unknown, what: string): number[] {
  if (typeof x === 'number') return [x, x];
  if (Array.isArray(x) && x.every((v) => typeof v === 'number')) return x as number[];
  throw new Error(`ONNX export: cannot read ${what} (${JSON.stringify(x)})`);
}

/** Normalises an axis of a rank-`rank` tensor to 0..rank-1. */
function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** TF NHWC axis → NCHW axis. */
const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

/** Per-axis pads TF uses for 'same' (the odd pixel goes after, at the bottom/right). */
function samePads(size: number, kernel: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function outSize(size: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number): number {
  return Math.floor((size + padBefore + padAfter - dilation * (kernel - 1) - 1) / stride) + 1;
}

class Exporter {
  readonly g = new GraphBuilder();
  /** The layer whose input to keep (the classifier head's: the pooled features), and what it was. */
  captureInputOf?: string;
  captured?: Value;

  /** Value in NCHW order (4-D only; other ranks are returned as they are). */
  nchw(v: Value): Value {
    const m = this.materialize(v);
    if (m.shape.length !== 4 || m.nchw) return m;
    const name = this.g.node('Transpose', [m.name], `${m.name}_nchw`, [{ name: 'perm', kind: 'ints', value: [0, 3, 1, 2] }]);
    return { name, shape: m.shape, nchw: true, consumers: m.consumers };
  }

  /** Value in TF element order. */
  tfOrder(v: Value): Value {
    const m = this.materialize(v);
    if (!m.nchw) return m;
    const name = this.g.node('Transpose', [m.name], `${m.name}_nhwc`, [{ name: 'perm', kind: 'ints', value: [0, 2, 3, 1] }]);
    return { name, shape: m.shape, nchw: false, consumers: m.consumers };
  }

  /** Emits a pending ZeroPadding2D as a Pad node (when no convolution could absorb it). */
  materialize(v: Value): Value {
    const p = v.pendingPad;
    if (!p) return v;
    if (!p.materialized) {
      const src = this.nchw(p.source);
      const [top, bottom, left, right] = p.pads;
      const pads = this.g.int64s(`${v.name}_pads`, [0, 0, top, left, 0, 0, bottom, right]);
      const name = this.g.node('Pad', [src.name, pads], v.name);
      p.materialized = { name, shape: v.shape, nchw: true, consumers: v.consumers };
    }
    return p.materialized;
  }

  activation(v: Value, activation: string, hint: string): Value {
    const x = this.materialize(v);
    const out = (name: string): Value => renamed(x, name);
    switch (activation) {
      case 'linear':
        return x;
      case 'relu':
        return out(this.g.node('Relu', [x.name], hint));
      case 'relu6':
        return this.clip(x, 0, 6, hint);
      case 'sigmoid':
        return out(this.g.node('Sigmoid', [x.name], hint));
      case 'tanh':
        return out(this.g.node('Tanh', [x.name], hint));
      case 'elu':
        return out(this.g.node('Elu', [x.name], hint));
      case 'softplus':
        return out(this.g.node('Softplus', [x.name], hint));
      case 'softmax':
        return this.softmax(x, -1, hint);
      default:
        throw new UnsupportedLayerError(`activation '${activation}'`);
    }
  }

  clip(x: Value, min: number, max: number, hint: string): Value {
    const name = this.g.node('Clip', [x.name, this.g.scalar(`${hint}_min`, min), this.g.scalar(`${hint}_max`, max)], hint);
    return renamed(x, name);
  }

  softmax(x: Value, axis: number, hint: string): Value {
    const rank = x.shape.length;
    const a = normAxis(axis, rank);
    const onnxAxis = x.nchw ? NHWC_TO_NCHW_AXIS[a] : a;
    const name = this.g.node('Softmax', [x.name], hint, [{ name: 'axis', kind: 'int', value: onnxAxis }]);
    return renamed(x, name);
  }

  /** Conv2D and DepthwiseConv2D. */
  convolution(layer: tfType.layers.Layer, cfg: LayerConfig, input: Value, depthwise: boolean, hint: string): Value {
    const kernelVar = weight(layer, depthwise ? 'depthwise_kernel' : 'kernel');
    const [kh, kw, ci, mult] = kernelVar.shape;
    const k = kernelVar.data;
    const outChannels = depthwise ? ci * mult : mult;
    const w = new Float32Array(k.length);
    if (depthwise) {
      // TF [kh, kw, ci, m] → ONNX [ci*m, 1, kh, kw]; output channel c*m + j, as TF orders it.
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          for (let c = 0; c < ci; c++)
            for (let j = 0; j < mult; j++) w[((c * mult + j) * kh + y) * kw + x] = k[((y * kw + x) * ci + c) * mult + j];
    } else {
      // TF [kh, kw, ci, co] → ONNX [co, ci, kh, kw].
      const co = mult;
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          for (let c = 0; c < ci; c++)
            for (let o = 0; o < co; o++) w[((o * ci + c) * kh + y) * kw + x] = k[((y * kw + x) * ci + c) * co + o];
    }
    const useBias = cfg.use_bias !== false;
    const bias = useBias ? Float32Array.from(weight(layer, 'bias').data) : new Float32Array(outChannels);

    const [sh, sw] = asNumbers(cfg.strides ?? 1, 'strides');
    const [dh, dw] = asNumbers(cfg.dilation_rate ?? 1, 'dilation_rate');
    if ((cfg.data_format ?? 'channels_last') !== 'channels_last') throw new UnsupportedLayerError('data_format channels_first');

    // A pending ZeroPadding2D becomes part of this convolution's pads.
    let src = input;
    let [pt, pb, pl, pr] = [0, 0, 0, 0];
    if (input.pendingPad && input.consumers === 1) {
      src = input.pendingPad.source;
      [pt, pb, pl, pr] = input.pendingPad.pads;
    }
    src = this.nchw(src);
    const [, hIn, wIn] = src.shape;
    let h = hIn === null ? null : hIn + pt + pb;
    let wd = wIn === null ? null : wIn + pl + pr;
    if (cfg.padding === 'same') {
      if (h === null || wd === null) throw new Error(`ONNX export: '${hint}' uses 'same' padding on an input of unknown size`);
      const [a, b] = samePads(h, kh, sh, dh);
      const [c, d] = samePads(wd, kw, sw, dw);
      pt += a;
      pb += b;
      pl += c;
      pr += d;
    } else if (cfg.padding !== 'valid') {
      throw new UnsupportedLayerError(`padding '${String(cfg.padding)}'`);
    }
    h = hIn === null ? null : outSize(hIn, kh, sh, dh, pt, pb);
    wd = wIn === null ? null : outSize(wIn, kw, sw, dw, pl, pr);

    const wName = this.g.constant(`${hint}_W`, [outChannels, depthwise ? 1 : ci, kh, kw], w);
    const bName = this.g.constant(`${hint}_B`, [outChannels], bias);
    const name = this.g.node('Conv', [src.name, wName, bName], hint, [
      { name: 'kernel_shape', kind: 'ints', value: [kh, kw] },
      { name: 'strides', kind: 'ints', value: [sh, sw] },
      { name: 'dilations', kind: 'ints', value: [dh, dw] },
      { name: 'pads', kind: 'ints', value: [pt, pl, pb, pr] },
      { name: 'group', kind: 'int', value: depthwise ? ci : 1 },
    ]);
    const activation = String(cfg.activation ?? 'linear');
    const conv: Value = {
      name,
      shape: [src.shape[0], h, wd, outChannels],
      nchw: true,
      consumers: input.consumers,
      conv: { weight: w, bias, outChannels, linear: activation === 'linear' },
    };
    return activation === 'linear' ? conv : this.activation(conv, activation, `${hint}_act`);
  }

  batchNorm(layer: tfType.layers.Layer, cfg: LayerConfig, input: Value, hint: string): Value {
    const rank = input.shape.length;
    const axisCfg = Array.isArray(cfg.axis) ? (cfg.axis as number[]) : [Number(cfg.axis ?? -1)];
    if (axisCfg.length !== 1 || normAxis(axisCfg[0], rank) !== rank - 1)
      throw new UnsupportedLayerError('BatchNormalization on an axis other than the last');
    const channels = input.shape[rank - 1];
    if (channels === null) throw new Error(`ONNX export: '${hint}' has an unknown channel count`);
    const eps = Number(cfg.epsilon ?? 1e-3);
    const mean = weight(layer, 'moving_mean').data;
    const variance = weight(layer, 'moving_variance').data;
    const gamma = cfg.scale === false ? new Float32Array(channels).fill(1) : weight(layer, 'gamma').data;
    const beta = cfg.center === false ? new Float32Array(channels) : weight(layer, 'beta').data;

    const conv = input.conv;
    if (conv && conv.linear && input.consumers === 1 && conv.outChannels === channels) {
      // Fold: W' = W·s, b' = (b − mean)·s + beta, with s = gamma / sqrt(var + eps).
      const per = conv.weight.length / channels;
      for (let o = 0; o < channels; o++) {
        const s = gamma[o] / Math.sqrt(variance[o] + eps);
        for (let i = o * per; i < (o + 1) * per; i++) conv.weight[i] *= s;
        conv.bias[o] = (conv.bias[o] - mean[o]) * s + beta[o];
      }
      return { ...input, conv: { ...conv, linear: true } };
    }
    const x = rank === 4 ? this.nchw(input) : this.tfOrder(input);
    if (rank !== 4 && rank !== 2) throw new UnsupportedLayerError(`BatchNormalization on a rank-${rank} tensor`);
    const name = this.g.node(
      'BatchNormalization',
      [
        x.name,
        this.g.constant(`${hint}_scale`, [channels], Float32Array.from(gamma)),
        this.g.constant(`${hint}_bias`, [channels], Float32Array.from(beta)),
        this.g.constant(`${hint}_mean`, [channels], Float32Array.from(mean)),
        this.g.constant(`${hint}_var`, [channels], Float32Array.from(variance)),
      ],
      hint,
      [{ name: 'epsilon', kind: 'float', value: eps }],
    );
    return { name, shape: x.shape, nchw: x.nchw, consumers: input.consumers };
  }

  pool(cfg: LayerConfig, input: Value, op: 'MaxPool' | 'AveragePool', hint: string): Value {
    const x = this.nchw(input);
    const [ph, pw] = asNumbers(cfg.pool_size ?? 2, 'pool_size');
    const [sh, sw] = asNumbers(cfg.strides ?? cfg.pool_size ?? 2, 'strides');
    const [, hIn, wIn, c] = x.shape;
    if (hIn === null || wIn === null) throw new Error(`ONNX export: '${hint}' pools an input of unknown size`);
    const [pt, pb] = cfg.padding === 'same' ? samePads(hIn, ph, sh, 1) : [0, 0];
    const [pl, pr] = cfg.padding === 'same' ? samePads(wIn, pw, sw, 1) : [0, 0];
    const name = this.g.node(op, [x.name], hint, [
      { name: 'kernel_shape', kind: 'ints', value: [ph, pw] },
      { name: 'strides', kind: 'ints', value: [sh, sw] },
      { name: 'pads', kind: 'ints', value: [pt, pl, pb, pr] },
    ]);
    return {
      name,
      shape: [x.shape[0], outSize(hIn, ph, sh, 1, pt, pb), outSize(wIn, pw, sw, 1, pl, pr), c],
      nchw: true,
      consumers: input.consumers,
    };
  }

  dense(layer: tfType.layers.Layer, cfg: LayerConfig, input: Value, hint: string): Value {
    const kernel = weight(layer, 'kernel');
    const [inUnits, units] = kernel.shape;
    const useBias = cfg.use_bias !== false;
    const bias = useBias ? Float32Array.from(weight(layer, 'bias').data) : new Float32Array(units);
    const x = this.tfOrder(input);
    if (x.shape[x.shape.length - 1] !== inUnits)
      throw new Error(`ONNX export: '${hint}' expects ${inUnits} inputs, got shape ${JSON.stringify(x.shape)}`);
    const wName = this.g.constant(`${hint}_W`, [inUnits, units], Float32Array.from(kernel.data));
    const bName = this.g.constant(`${hint}_B`, [units], bias);
    let name: string;
    if (x.shape.length === 2) {
      name = this.g.node('Gemm', [x.name, wName, bName], hint);
    } else {
      name = this.g.node('Add', [this.g.node('MatMul', [x.name, wName], `${hint}_matmul`), bName], hint);
    }
    const out: Value = { name, shape: [...x.shape.slice(0, -1), units], nchw: false, consumers: input.consumers };
    return this.activation(out, String(cfg.activation ?? 'linear'), `${hint}_act`);
  }

  reshape(input: Value, target: number[], hint: string): Value {
    const x = this.tfOrder(input);
    const known = x.shape.slice(1);
    const total = known.every((d): d is number => d !== null) ? known.reduce((a, b) => a * b, 1) : null;
    const resolved = target.map((d) => {
      if (d !== -1) return d;
      if (total === null) return null;
      return total / target.filter((t) => t !== -1).reduce((a, b) => a * b, 1);
    });
    // 0 copies the (dynamic) batch dimension.
    const shapeName = this.g.int64s(`${hint}_shape`, [0, ...target]);
    const name = this.g.node('Reshape', [x.name, shapeName], hint);
    return { name, shape: [x.shape[0], ...resolved], nchw: false, consumers: input.consumers };
  }

  elementwise(op: 'Add' | 'Mul', inputs: Value[], hint: string): Value {
    const four = inputs[0].shape.length === 4;
    const xs = inputs.map((v) => (four ? this.nchw(v) : this.tfOrder(v)));
    let acc = xs[0].name;
    for (let i = 1; i < xs.length; i++) acc = this.g.node(op, [acc, xs[i].name], i === xs.length - 1 ? hint : `${hint}_${i}`);
    return { name: acc, shape: xs[0].shape, nchw: xs[0].nchw, consumers: 0 };
  }

  /** Converts one layer call. `layer` is the tfjs layer object holding the weights. */
  convertLayer(className: string, cfg: LayerConfig, layer: tfType.layers.Layer, inputs: Value[], hint: string): Value[] {
    const one = (): Value => {
      if (inputs.length !== 1) throw new Error(`ONNX export: '${hint}' expects one input, got ${inputs.length}`);
      return inputs[0];
    };
    if (IDENTITY_CLASSES.has(className)) {
      const x = one();
      return [{ ...x, conv: undefined }];
    }
    if (CONTAINER_CLASSES.has(className)) {
      return this.convertContainer(className, cfg, layer as unknown as ContainerLike, inputs);
    }
    switch (className) {
      case 'InputLayer':
        return [one()];
      case 'ZeroPadding2D':
        return [this.zeroPadding(cfg, one(), hint)];
      case 'Conv2D':
        return [this.convolution(layer, cfg, one(), false, hint)];
      case 'DepthwiseConv2D':
        return [this.convolution(layer, cfg, one(), true, hint)];
      case 'BatchNormalization':
        return [this.batchNorm(layer, cfg, one(), hint)];
      case 'ReLU':
        return [this.relu(cfg, this.materialize(one()), hint)];
      case 'LeakyReLU': {
        const x = this.materialize(one());
        return [renamed(x, this.g.node('LeakyRelu', [x.name], hint, [{ name: 'alpha', kind: 'float', value: Number(cfg.alpha ?? 0.3) }]))];
      }
      case 'Activation':
        return [this.activation(one(), String(cfg.activation), hint)];
      case 'Softmax': {
        const axis = Array.isArray(cfg.axis) ? (cfg.axis as number[]) : [Number(cfg.axis ?? -1)];
        if (axis.length !== 1) throw new UnsupportedLayerError('Softmax over several axes');
        // tfjs's Softmax layer defaults to axis 1 (not Keras's -1); the serialized config says which.
        return [this.softmax(this.materialize(one()), axis[0], hint)];
      }
      case 'Add':
        return [this.elementwise('Add', inputs, hint)];
      case 'Multiply':
        return [this.elementwise('Mul', inputs, hint)];
      case 'Concatenate':
        return [this.concatenate(cfg, inputs, hint)];
      case 'GlobalAveragePooling2D':
      case 'GlobalMaxPooling2D':
        return [this.globalPool(className, cfg, one(), hint)];
      case 'MaxPooling2D':
        return [this.pool(cfg, one(), 'MaxPool', hint)];
      case 'AveragePooling2D':
        return [this.pool(cfg, one(), 'AveragePool', hint)];
      case 'Flatten': {
        const x = this.tfOrder(one());
        const rest = x.shape.slice(1);
        const size = rest.every((d): d is number => d !== null) ? rest.reduce((a, b) => a * b, 1) : null;
        const name = this.g.node('Flatten', [x.name], hint, [{ name: 'axis', kind: 'int', value: 1 }]);
        return [{ name, shape: [x.shape[0], size], nchw: false, consumers: x.consumers }];
      }
      case 'Reshape': {
        // tfjs serializes an inferred dimension (-1) as null.
        const target = asNumbers(
          ((cfg.target_shape as (number | null)[]) ?? []).map((d) => d ?? -1),
          'target_shape',
        );
        const r = this.reshape(one(), target, hint);
        return [r.shape.length === 4 ? this.nchw(r) : r];
      }
      case 'Dense':
        return [this.dense(layer, cfg, one(), hint)];
      case 'Rescaling': {
        const x = this.materialize(one());
        return [this.rescale(x, Number(cfg.scale ?? 1), Number(cfg.offset ?? 0), hint)];
      }
      default:
        throw new UnsupportedLayerError(`layer class '${className}'`);
    }
  }

  /** A ZeroPadding2D is not emitted here: the value carries its pads, for a following convolution to absorb (or `materialize` to emit). */
  zeroPadding(cfg: LayerConfig, x: Value, hint: string): Value {
    const p = cfg.padding;
    let pads: [number, number, number, number];
    if (typeof p === 'number') pads = [p, p, p, p];
    else if (Array.isArray(p) && typeof p[0] === 'number') pads = [p[0], p[0], p[1] as number, p[1] as number];
    else if (Array.isArray(p)) pads = [...(p[0] as number[]), ...(p[1] as number[])] as [number, number, number, number];
    else throw new Error(`ONNX export: cannot read padding of '${hint}'`);
    const [n, h, w, c] = x.shape;
    return {
      name: this.g.fresh(hint),
      shape: [n, h === null ? null : h + pads[0] + pads[1], w === null ? null : w + pads[2] + pads[3], c],
      nchw: true,
      consumers: x.consumers,
      pendingPad: { source: x, pads },
    };
  }

  /** Keras's ReLU layer: plain, capped (a Clip) or leaky; a threshold, or a cap with a slope, has no single ONNX op. */
  relu(cfg: LayerConfig, x: Value, hint: string): Value {
    const max = cfg.max_value;
    const slope = Number(cfg.negative_slope ?? 0);
    if (Number(cfg.threshold ?? 0) !== 0) throw new UnsupportedLayerError('ReLU with a threshold');
    if (slope !== 0) {
      if (max !== null && max !== undefined) throw new UnsupportedLayerError('ReLU with both max_value and negative_slope');
      return renamed(x, this.g.node('LeakyRelu', [x.name], hint, [{ name: 'alpha', kind: 'float', value: slope }]));
    }
    if (max === null || max === undefined) return renamed(x, this.g.node('Relu', [x.name], hint));
    return this.clip(x, 0, Number(max), hint);
  }

  /** Concat along the layer's axis, mapped to NCHW when the inputs are 4-D. */
  concatenate(cfg: LayerConfig, inputs: Value[], hint: string): Value {
    const rank = inputs[0].shape.length;
    const a = normAxis(Number(cfg.axis ?? -1), rank);
    const xs = inputs.map((v) => (rank === 4 ? this.nchw(v) : this.tfOrder(v)));
    const onnxAxis = rank === 4 ? NHWC_TO_NCHW_AXIS[a] : a;
    const name = this.g.node(
      'Concat',
      xs.map((x) => x.name),
      hint,
      [{ name: 'axis', kind: 'int', value: onnxAxis }],
    );
    const shape = [...xs[0].shape];
    shape[a] = xs.some((x) => x.shape[a] === null) ? null : xs.reduce((s, x) => s + (x.shape[a] as number), 0);
    return { name, shape, nchw: xs[0].nchw, consumers: 0 };
  }

  /** Global average or max pooling to `[batch, channels]`: ONNX keeps the two 1×1 dimensions, so a Flatten follows. */
  globalPool(className: string, cfg: LayerConfig, input: Value, hint: string): Value {
    if (cfg.keepdims === true) throw new UnsupportedLayerError(`${className} with keepdims`);
    const x = this.nchw(input);
    const pooled = this.g.node(className === 'GlobalAveragePooling2D' ? 'GlobalAveragePool' : 'GlobalMaxPool', [x.name], `${hint}_pool`);
    const name = this.g.node('Flatten', [pooled], hint, [{ name: 'axis', kind: 'int', value: 1 }]);
    return { name, shape: [x.shape[0], x.shape[3]], nchw: false, consumers: x.consumers };
  }

  rescale(x: Value, scale: number, offset: number, hint: string): Value {
    let name = x.name;
    if (scale !== 1) name = this.g.node('Mul', [name, this.g.scalar(`${hint}_scale`, scale)], offset === 0 ? hint : `${hint}_mul`);
    if (offset !== 0) name = this.g.node('Add', [name, this.g.scalar(`${hint}_offset`, offset)], hint);
    return renamed(x, name);
  }

  /** Converts a functional model or a Sequential (top level or nested) applied to `inputs`. */
  /** `outputLayer`: stop at that layer (its first output) instead of the model's outputs. */
  convertContainer(className: string, cfg: LayerConfig, container: ContainerLike, inputs: Value[], outputLayer?: string): Value[] {
    if (className === 'Sequential') {
      const layers = (Array.isArray(cfg) ? cfg : (cfg.layers as SerializedLayer[])) as SerializedLayer[];
      if (inputs.length !== 1) throw new Error('ONNX export: a Sequential model takes one input');
      if (outputLayer !== undefined && !layers.some((l) => l.config.name === outputLayer))
        throw new Error(`ONNX export: no layer '${outputLayer}'`);
      let x = inputs[0];
      for (const l of layers) {
        const name = String(l.config.name);
        if (l.class_name !== 'InputLayer') {
          x = { ...x, consumers: 1 };
          [x] = this.convertNamed(l.class_name, l.config, container, name, [x]);
        }
        if (name === outputLayer) break;
      }
      return [x];
    }
    let layers = cfg.layers as SerializedLayer[];
    const inputLayers = cfg.input_layers as Ref[];
    let outputLayers = cfg.output_layers as Ref[];
    if (inputLayers.length !== inputs.length)
      throw new Error(`ONNX export: model expects ${inputLayers.length} inputs, got ${inputs.length}`);
    const layerName = (l: SerializedLayer): string => String(l.name ?? l.config.name);
    const isContainer = new Map(layers.map((l) => [layerName(l), CONTAINER_CLASSES.has(l.class_name)]));
    if (outputLayer !== undefined) {
      const byName = new Map(layers.map((l) => [layerName(l), l]));
      if (!byName.has(outputLayer)) throw new Error(`ONNX export: no layer '${outputLayer}'`);
      // Keep only the layers the output depends on.
      const needed = new Set<string>();
      const stack = [outputLayer];
      while (stack.length > 0) {
        const name = stack.pop() as string;
        if (needed.has(name)) continue;
        needed.add(name);
        for (const call of byName.get(name)?.inbound_nodes ?? []) for (const r of call) stack.push(r[0]);
      }
      layers = layers.filter((l) => needed.has(layerName(l)));
      outputLayers = [[outputLayer, isContainer.get(outputLayer) ? 1 : 0, 0]];
    }
    // A reference [layer, nodeIndex, tensorIndex] names a call of the layer; for a nested model the
    // serialized node indices start at 1 (its own internal node is 0).
    const key = ([name, nodeIndex, tensorIndex]: Ref): string =>
      `${name}:${Math.max(0, nodeIndex - (isContainer.get(name) ? 1 : 0))}:${tensorIndex}`;
    const consumers = new Map<string, number>();
    const count = (r: Ref): void => void consumers.set(key(r), (consumers.get(key(r)) ?? 0) + 1);
    for (const l of layers) for (const call of l.inbound_nodes ?? []) for (const r of call) count([r[0], r[1], r[2]]);
    for (const r of outputLayers) count(r);

    const values = new Map<string, Value>();
    inputLayers.forEach((r, i) => {
      // Folding across the model boundary is only safe when nothing outside uses the value either.
      const inner = consumers.get(key(r)) ?? 0;
      values.set(key(r), { ...inputs[i], consumers: inputs[i].consumers === 1 ? inner : Math.max(2, inner) });
    });
    const pending = layers.filter((l) => l.class_name !== 'InputLayer');
    while (pending.length > 0) {
      const ready = pending.findIndex((l) =>
        (l.inbound_nodes ?? []).every((call) => call.every((r) => values.has(key([r[0], r[1], r[2]])))),
      );
      if (ready < 0) throw new Error(`ONNX export: cannot order layers (${pending.map((l) => l.name).join(', ')})`);
      const [l] = pending.splice(ready, 1);
      const name = String(l.name ?? l.config.name);
      (l.inbound_nodes ?? []).forEach((call, callIndex) => {
        const ins = call.map((r) => values.get(key([r[0], r[1], r[2]])) as Value);
        const outs = this.convertNamed(l.class_name, l.config, container, name, ins);
        outs.forEach((v, t) => {
          const k = `${name}:${callIndex}:${t}`;
          values.set(k, { ...v, consumers: consumers.get(k) ?? 0 });
        });
      });
    }
    return outputLayers.map((r) => {
      const v = values.get(key(r));
      if (!v) throw new Error(`ONNX export: output ${r[0]} was not computed`);
      return v;
    });
  }

  convertNamed(className: string, cfg: LayerConfig, container: ContainerLike, name: string, inputs: Value[]): Value[] {
    const layer = container.getLayer(name);
    if (name === this.captureInputOf && !this.captured) this.captured = inputs[0];
    try {
      return this.convertLayer(className, cfg, layer, inputs, name);
    } catch (err) {
      if (err instanceof UnsupportedLayerError) {
        throw new Error(
          `ONNX export does not support ${err.message} (layer '${name}', class ${className}). Supported layer classes: ${SUPPORTED_LAYER_CLASSES.join(', ')}.`,
          { cause: err },
        );
      }
      throw err;
    }
  }
}

/** `x` under another name (an op that keeps its shape and layout). */
function renamed(x: Value, name: string): Value {
  return { name, shape: x.shape, nchw: x.nchw, consumers: x.consumers };
}

/** A weight of `layer` by its short name (`kernel`, `bias`, `gamma`, …), read into a Float32Array. */
function weight(layer: tfType.layers.Layer, short: string): { shape: number[]; data: Float32Array } {
  const v = layer.weights.find((w) => {
    const n = w.originalName ?? w.name;
    return n === short || n.endsWith(`/${short}`);
  });
  if (!v) throw new Error(`ONNX export: layer '${layer.name}' has no weight '${short}'`);
  const t = v.read();
  return { shape: t.shape, data: t.dataSync() as Float32Array };
}

/**
 * The novelty score from the captured features f: |f·W − m̃_c|² expanded as |f·W|² − 2 (f·W)·m̃_cᵀ + |m̃_c|²,
 * its minimum over the classes, then the square root (of at least 0: rounding can take a tiny
 * distance below it). Two matrix products, the ops every ONNX runtime has.
 */
function noveltyOutput(ex: Exporter, n: NoveltyGraph): { name: string; elemType: OnnxDataTypeValue; shape: (number | string)[] } {
  const f = ex.captured;
  if (!f || f.shape.length !== 2 || f.shape[1] !== n.featureSize)
    throw new Error(`ONNX export: the input of '${n.featuresOf}' is not a vector of ${n.featureSize} features`);
  const { g } = ex;
  const meansT = new Float32Array(n.featureSize * n.classes);
  const norms = new Float32Array(n.classes);
  for (let c = 0; c < n.classes; c++) {
    for (let j = 0; j < n.featureSize; j++) {
      const v = n.means[c * n.featureSize + j];
      meansT[j * n.classes + c] = v;
      norms[c] += v * v;
    }
  }
  const z = g.node('MatMul', [f.name, g.constant('novelty_whitening', [n.featureSize, n.featureSize], n.whitening)], 'novelty_z');
  const zz = g.node('ReduceSumSquare', [z], 'novelty_zz', [
    { name: 'axes', kind: 'ints', value: [1] },
    { name: 'keepdims', kind: 'int', value: 1 },
  ]);
  const zm = g.node('MatMul', [z, g.constant('novelty_means', [n.featureSize, n.classes], meansT)], 'novelty_zm');
  const d2 = g.node(
    'Sub',
    [
      g.node('Add', [zz, g.constant('novelty_mm', [1, n.classes], norms)], 'novelty_zz_mm'),
      g.node('Mul', [zm, g.scalar('novelty_two', 2)], 'novelty_2zm'),
    ],
    'novelty_d2',
  );
  const nearest = g.node('ReduceMin', [d2], 'novelty_min', [
    { name: 'axes', kind: 'ints', value: [1] },
    { name: 'keepdims', kind: 'int', value: 0 },
  ]);
  const score = g.node('Sqrt', [g.node('Relu', [nearest], 'novelty_clamp')], 'novelty_sqrt');
  g.nodes.push({ opType: 'Identity', name: n.outputName, inputs: [score], outputs: [n.outputName] });
  return { name: n.outputName, elemType: OnnxDataType.float, shape: ['batch'] };
}

/**
 * The views of an NHWC input stacked along the batch axis (view 0's images, then view 1's …), each
 * built as src/shared/views.ts defines it: rows reversed, columns reversed (Slice, step -1), then
 * rows and columns swapped (Transpose).
 */
function viewBatch(ex: Exporter, x: Value, views: readonly ViewName[]): Value {
  const { g } = ex;
  const reverse = (name: string, axis: number, hint: string) =>
    g.node(
      'Slice',
      [
        name,
        g.int64s(`${hint}_starts`, [-1]),
        g.int64s(`${hint}_ends`, [-(2 ** 63)]),
        g.int64s(`${hint}_axes`, [axis]),
        g.int64s(`${hint}_steps`, [-1]),
      ],
      hint,
    );
  const parts = views.map((view) => {
    const { v, h, t } = VIEW_SPECS[view];
    let name = x.name;
    if (v) name = reverse(name, 1, `view_${view}_rows`);
    if (h) name = reverse(name, 2, `view_${view}_cols`);
    if (t) name = g.node('Transpose', [name], `view_${view}_transpose`, [{ name: 'perm', kind: 'ints', value: [0, 2, 1, 3] }]);
    return name === x.name ? g.node('Identity', [name], `view_${view}`) : name;
  });
  const name = g.node('Concat', parts, 'views', [{ name: 'axis', kind: 'int', value: 0 }]);
  return { name, shape: x.shape, nchw: false, consumers: 1 };
}

/** [views × n, k] rows (view-major) → [n, k]: the mean over the views. */
function meanOverViews(ex: Exporter, x: Value, count: number, hint: string): Value {
  const { g } = ex;
  const k = x.shape[1];
  if (x.shape.length !== 2 || k === null)
    throw new Error(`ONNX export: cannot average views of a value of shape ${JSON.stringify(x.shape)}`);
  const grouped = g.node('Reshape', [x.name, g.int64s(`${hint}_shape`, [count, -1, k])], `${hint}_by_view`);
  const name = g.node('ReduceMean', [grouped], hint, [
    { name: 'axes', kind: 'ints', value: [0] },
    { name: 'keepdims', kind: 'int', value: 0 },
  ]);
  return { name, shape: [null, k], nchw: false, consumers: 1 };
}

/** Probabilities of each view → softmax of their mean log-probability (floored at MIN_PROB), as `averageViewProbs`. */
function averageViews(ex: Exporter, probs: Value, count: number): Value {
  const { g } = ex;
  const logs = g.node('Log', [g.node('Max', [probs.name, g.scalar('tta_floor', MIN_PROB)], 'tta_floored')], 'tta_log');
  const mean = meanOverViews(ex, { ...probs, name: logs }, count, 'tta_mean_log');
  const name = g.node('Softmax', [mean.name], 'tta_probabilities', [{ name: 'axis', kind: 'int', value: 1 }]);
  return { ...mean, name };
}

/** Serialises a TF.js LayersModel (single input, single output) to ONNX bytes (opset 13, NHWC input). */
export function exportToOnnx(model: tfType.LayersModel, opts: OnnxExportOptions): Uint8Array {
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new Error(`ONNX export: expected one input and one output, the model has ${model.inputs.length} and ${model.outputs.length}`);
  }
  const topology = model.toJSON(null, false) as unknown as { class_name: string; config: LayerConfig };
  const ex = new Exporter();
  const inputShape = [...model.inputs[0].shape];
  if (inputShape.length !== 4)
    throw new Error(`ONNX export: expected an image input [batch, height, width, channels], got ${JSON.stringify(inputShape)}`);
  for (const axis of [1, 2]) {
    const d = inputShape[axis];
    if (d !== null && d !== opts.inputSize) throw new Error(`ONNX export: the model's input is ${d} px, inputSize says ${opts.inputSize}`);
    inputShape[axis] = opts.inputSize;
  }
  const channels = inputShape[3];
  if (channels === null) throw new Error('ONNX export: the input has an unknown channel count');
  const inputName = opts.inputName ?? 'input';
  const outputName = opts.outputName ?? 'output';
  const inputType = opts.inputType ?? 'float32';
  ex.g.fresh(inputName);
  ex.g.fresh(outputName);

  let x: Value = { name: inputName, shape: [null, opts.inputSize, opts.inputSize, channels], nchw: false, consumers: 1 };
  const views = opts.views && opts.views.length > 1 ? opts.views : undefined;
  if (views) x = viewBatch(ex, x, views);
  // Transposing the uint8 pixels moves a quarter of the bytes a float transpose would (the
  // transpose was 7% of the base's time at batch 32).
  x = ex.nchw(x);
  if (inputType === 'uint8') {
    x = { ...x, name: ex.g.node('Cast', [x.name], 'input_float', [{ name: 'to', kind: 'int', value: OnnxDataType.float }]) };
  }
  if (opts.includePreprocessing) x = ex.rescale(x, opts.preprocessing.scale, opts.preprocessing.offset, 'preprocess');

  if (opts.novelty) {
    ex.captureInputOf = opts.novelty.featuresOf;
    ex.g.fresh(opts.novelty.outputName);
  }
  let [y] = ex.convertContainer(topology.class_name, topology.config, model as unknown as ContainerLike, [x], opts.outputLayer);
  if (opts.outputLayer !== undefined && y.shape.length === 4 && !opts.spatialOutput) {
    // Features of a convolutional layer: averaged over height and width, as the tfjs feature route does.
    [y] = ex.convertLayer('GlobalAveragePooling2D', {}, undefined as unknown as tfType.layers.Layer, [y], `${opts.outputLayer}_mean`);
  }
  let out = ex.tfOrder(y);
  if (views) {
    out = averageViews(ex, out, views.length);
    if (ex.captured) ex.captured = meanOverViews(ex, ex.captured, views.length, 'novelty_features');
  }
  ex.g.nodes.push({ opType: 'Identity', name: outputName, inputs: [out.name], outputs: [outputName] });
  const extraOutputs = opts.novelty ? [noveltyOutput(ex, opts.novelty)] : [];

  const symbolic = (shape: Shape): (number | string)[] => shape.map((d, i) => (d === null ? (i === 0 ? 'batch' : `d${i}`) : d));
  return encodeOnnxModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET,
    producerName: 'image-trainer',
    producerVersion: String(ONNX_EXPORTER_VERSION),
    docString: `Exported from the TF.js model '${model.name}'. Input: NHWC ${inputType}${opts.includePreprocessing ? ' RGB 0-255' : ''}.`,
    metadata: {
      source_model: model.name,
      input_layout: 'NHWC',
      ...(opts.includePreprocessing
        ? {}
        : { preprocessing: `x * ${opts.preprocessing.scale} + ${opts.preprocessing.offset} (not applied in the graph)` }),
      ...opts.metadata,
    },
    graph: {
      name: model.name,
      nodes: ex.g.nodes,
      initializers: ex.g.initializers,
      inputs: [
        {
          name: inputName,
          elemType: inputType === 'uint8' ? OnnxDataType.uint8 : OnnxDataType.float,
          shape: symbolic([null, opts.inputSize, opts.inputSize, channels]),
        },
      ],
      outputs: [{ name: outputName, elemType: OnnxDataType.float, shape: symbolic(out.shape) }, ...extraOutputs],
    },
  });
}

/**
 * The graph from raw RGB bytes (uint8 NHWC, preprocessing inside) up to the output of `cutSource`,
 * kept spatial (NHWC float32, output `activations`): the frozen bottom of a base cut for
 * fine-tuning, whose input is that layer's output.
 */
export function exportCutToOnnx(
  model: tfType.LayersModel,
  cutSource: string,
  opts: Pick<OnnxExportOptions, 'inputSize' | 'preprocessing' | 'metadata'>,
): Uint8Array {
  return exportToOnnx(model, {
    ...opts,
    includePreprocessing: true,
    inputType: 'uint8',
    outputLayer: cutSource,
    outputName: 'activations',
    spatialOutput: true,
  });
}

/** The run's unknown-image detector (`novelty.json` next to the model), if it has one. */
async function readNoveltyGraph(modelDir: string): Promise<{ graph: NoveltyGraph; threshold: number } | undefined> {
  let file: NoveltyFile;
  try {
    file = JSON.parse(await fs.promises.readFile(path.join(modelDir, RUN_FILES.novelty), 'utf8')) as NoveltyFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TrainerError('model', `${RUN_FILES.novelty} cannot be read: ${(err as Error).message}`);
  }
  const floats = (b64: string) => {
    const bytes = Buffer.from(b64, 'base64');
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  };
  const graph = {
    featuresOf: 'head',
    outputName: 'novelty',
    featureSize: file.featureSize,
    classes: file.classes,
    whitening: floats(file.whitening),
    means: floats(file.means),
  };
  if (graph.whitening.length !== file.featureSize ** 2 || graph.means.length !== file.classes * file.featureSize)
    throw new TrainerError('model', `${RUN_FILES.novelty} holds matrices of the wrong size`);
  return { graph, threshold: file.threshold };
}

/** Exports a trained classifier's run model folder (model.json, weights, metadata.json) to an ONNX file that takes raw RGB 0–255 NHWC float pixels and outputs class probabilities; returns the metadata it used. */
export async function exportClassifierToOnnx(modelDir: string, outFile: string, tf?: Tf): Promise<ModelMetadata> {
  const tfjs = tf ?? (await import('@tensorflow/tfjs'));
  const metadata = await readMetadata(modelDir);
  const novelty = await readNoveltyGraph(modelDir);
  const model = await loadLayersModelFromDir(tfjs, modelDir);
  try {
    const bytes = exportToOnnx(model, {
      inputSize: metadata.inputSize,
      preprocessing: { scale: metadata.input.scale, offset: metadata.input.offset },
      // A model without its Rescaling step inside gets the preprocessing put into the graph, so the
      // exported file always takes raw pixels.
      includePreprocessing: !metadata.input.preprocessingInside,
      inputName: 'pixels',
      outputName: 'probabilities',
      metadata: {
        labels: JSON.stringify(metadata.labels),
        base_model: metadata.baseModel,
        input: 'RGB 0-255, NHWC float32, resized to cover the input size and centre-cropped',
        ...(metadata.temperature !== undefined ? { temperature: String(metadata.temperature) } : {}),
        ...(metadata.views ? { views: `${metadata.views.join(',')}: averaged inside the graph (test-time augmentation)` } : {}),
        ...(novelty
          ? { unknown_threshold: String(novelty.threshold), novelty: 'output "novelty" above unknown_threshold: unlike every class' }
          : {}),
      },
      ...(novelty ? { novelty: novelty.graph } : {}),
      ...(metadata.views ? { views: metadata.views } : {}),
    });
    await fs.promises.mkdir(path.dirname(path.resolve(outFile)), { recursive: true });
    await writeFileAtomic(outFile, bytes);
    return metadata;
  } finally {
    model.dispose();
  }
}
