// A fast inference graph for the frozen base, built from a loaded Keras-style LayersModel:
// BatchNormalization folded into the preceding convolution's weights and bias, the ReLU/ReLU6
// after it fused into `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`, Keras's explicit
// ZeroPadding + 'valid' convolution turned into the equivalent 'same' padding where it is one,
// and intermediate activations disposed as soon as their last consumer has run. On the
// WebAssembly backend this is several times faster than `LayersModel.predict` (issue 7).
// Covers the layer kinds of MobileNet V1/V2; for anything else it says why and the caller
// falls back to the layers model.
import type * as tfType from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';

type Tensor = tfType.Tensor;
type Activation = 'linear' | 'relu' | 'relu6';

export interface FoldedGraph {
  /** Feature vectors `[batch, features]` for preprocessed input `[batch, h, w, 3]`; the caller owns the result. */
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

class Unsupported extends Error {}

/** Builds the folded graph up to `featureLayer` (pooled to a vector if 4-D), or returns why it cannot. */
export function buildFoldedGraph(tf: Tf, model: tfType.LayersModel, featureLayer: string): FoldedGraph | { unsupported: string } {
  const created: Tensor[] = [];
  try {
    return build(tf, model, featureLayer, created);
  } catch (err) {
    for (const t of created) t.dispose();
    if (err instanceof Unsupported) return { unsupported: err.message };
    throw err;
  }
}

function build(tf: Tf, model: tfType.LayersModel, featureLayer: string, created: Tensor[]): FoldedGraph {
  const layers = model.layers as unknown as LayerLike[];
  const byName = new Map(layers.map((l) => [l.name, l]));
  const target = byName.get(featureLayer);
  if (!target) throw new Unsupported(`feature layer '${featureLayer}' is not in the model`);
  if (model.inputs.length !== 1) throw new Unsupported('the model has more than one input');

  const parents = (l: LayerLike): LayerLike[] => {
    if (l.getClassName() === 'InputLayer') return [];
    if (l.inboundNodes.length !== 1) throw new Unsupported(`layer '${l.name}' is shared (${l.inboundNodes.length} call sites)`);
    return l.inboundNodes[0].inboundLayers;
  };

  // Only the layers the feature layer depends on, in the model's (topological) order.
  const needed = new Set<string>();
  const stack = [target];
  while (stack.length > 0) {
    const l = stack.pop()!;
    if (needed.has(l.name)) continue;
    needed.add(l.name);
    stack.push(...parents(l));
  }
  const order = layers.filter((l) => needed.has(l.name));
  const consumers = new Map<string, LayerLike[]>();
  for (const l of order) for (const p of parents(l)) consumers.set(p.name, [...(consumers.get(p.name) ?? []), l]);
  const soleConsumer = (l: LayerLike): LayerLike | undefined => {
    const c = consumers.get(l.name) ?? [];
    return c.length === 1 && l !== target ? c[0] : undefined;
  };

  const keep = (t: Tensor): Tensor => {
    const kept = tf.keep(t);
    created.push(kept);
    return kept;
  };
  const alias = new Map<string, string>();
  const keyOf = (name: string): string => alias.get(name) ?? name;
  const folded = new Set<string>();
  const ops: Op[] = [];
  let inputName = '';
  // Explicit paddings waiting for the 'valid' convolution they were folded into.
  const pendingPad = new Map<string, { padding: [[number, number], [number, number]]; inputShape: (number | null)[] }>();

  for (const layer of order) {
    if (folded.has(layer.name)) continue;
    const cls = layer.getClassName();
    const cfg = layer.getConfig();
    const inputs = parents(layer).map((p) => keyOf(p.name));
    switch (cls) {
      case 'InputLayer':
        inputName = layer.name;
        break;
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianNoise':
      case 'GaussianDropout':
        alias.set(layer.name, inputs[0]);
        break;
      case 'ZeroPadding2D': {
        const padding = cfg.padding as [[number, number], [number, number]];
        checkChannelsLast(layer, cfg);
        const next = soleConsumer(layer);
        if (
          next &&
          (next.getClassName() === 'Conv2D' || next.getClassName() === 'DepthwiseConv2D') &&
          next.getConfig().padding === 'valid'
        ) {
          // Folded into the convolution below.
          alias.set(layer.name, inputs[0]);
          pendingPad.set(next.name, { padding, inputShape: shapeOf(parents(layer)[0]) });
          break;
        }
        ops.push({
          out: layer.name,
          inputs,
          weights: [],
          apply: ([x]) => tf.pad(x, [[0, 0], padding[0], padding[1], [0, 0]]),
        });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        checkChannelsLast(layer, cfg);
        const depthwise = cls === 'DepthwiseConv2D';
        const dilation = cfg.dilationRate as number[] | number | undefined;
        if (dilation !== undefined && [dilation].flat().some((d) => d !== 1)) throw new Unsupported(`layer '${layer.name}' is dilated`);
        const strides = cfg.strides as [number, number];
        const kernelSize = cfg.kernelSize as [number, number];
        const kernelName = depthwise ? 'depthwise_kernel' : 'kernel';
        const kernelVar = findWeight(layer, kernelName);
        const kernel = kernelVar.read();
        const kernelData = Float32Array.from(kernel.dataSync());
        const kernelShape = kernel.shape as [number, number, number, number];
        const outChannels = depthwise ? kernelShape[2] * kernelShape[3] : kernelShape[3];
        const bias = new Float64Array(outChannels);
        if (cfg.useBias)
          findWeight(layer, 'bias')
            .read()
            .dataSync()
            .forEach((v, i) => (bias[i] = v));
        let activation = activationOf(layer, cfg.activation as string | undefined);
        let last = layer;

        const bn = activation === 'linear' ? soleConsumer(layer) : undefined;
        if (bn && bn.getClassName() === 'BatchNormalization') {
          const { scale, shift } = batchNormAffine(bn, outChannels);
          // out = (conv(x) + b) * s + t  ==  conv_with(W * s)(x) + (b * s + t)
          for (let i = 0; i < kernelData.length; i++) kernelData[i] *= scale[i % outChannels];
          for (let c = 0; c < outChannels; c++) bias[c] = bias[c] * scale[c] + shift[c];
          folded.add(bn.name);
          last = bn;
        }
        if (activation === 'linear') {
          const act = soleConsumer(last);
          const fused = act ? standaloneActivation(act) : undefined;
          if (act && fused) {
            activation = fused;
            folded.add(act.name);
            last = act;
          }
        }

        const pend = pendingPad.get(layer.name);
        let pad: 'valid' | 'same' | [[0, 0], [number, number], [number, number], [0, 0]] = cfg.padding === 'same' ? 'same' : 'valid';
        let prePad: [[number, number], [number, number]] | undefined;
        if (pend) {
          if (samePadding(pend.inputShape, kernelSize, strides, pend.padding)) pad = 'same';
          else if (!depthwise) pad = [[0, 0], pend.padding[0], pend.padding[1], [0, 0]];
          else prePad = pend.padding;
        }
        const filter = keep(tf.tensor4d(kernelData, kernelShape));
        const biasT = keep(tf.tensor1d(Float32Array.from(bias)));
        ops.push({
          out: last.name,
          inputs,
          weights: [filter, biasT],
          apply: ([x]) => {
            const input = (prePad ? tf.pad(x, [[0, 0], prePad[0], prePad[1], [0, 0]]) : x) as tfType.Tensor4D;
            const out = depthwise
              ? tf.fused.depthwiseConv2d({
                  x: input,
                  filter: filter as tfType.Tensor4D,
                  strides,
                  pad: pad as 'valid' | 'same',
                  bias: biasT,
                  activation,
                })
              : tf.fused.conv2d({ x: input, filter: filter as tfType.Tensor4D, strides, pad, bias: biasT, activation });
            if (prePad) input.dispose();
            return out;
          },
        });
        for (const name of [layer.name, ...(last !== layer ? [last.name] : [])]) alias.set(name, last.name);
        break;
      }
      case 'BatchNormalization': {
        const channels = lastDim(shapeOf(layer));
        const { scale, shift } = batchNormAffine(layer, channels);
        const s = keep(tf.tensor1d(Float32Array.from(scale)));
        const t = keep(tf.tensor1d(Float32Array.from(shift)));
        ops.push({ out: layer.name, inputs, weights: [s, t], apply: ([x]) => tf.tidy(() => tf.add(tf.mul(x, s), t)) });
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const act = standaloneActivation(layer);
        if (!act) throw new Unsupported(`layer '${layer.name}' (${cls}) has an unsupported activation`);
        if (act === 'linear') alias.set(layer.name, inputs[0]);
        else ops.push({ out: layer.name, inputs, weights: [], apply: ([x]) => (act === 'relu' ? tf.relu(x) : tf.relu6(x)) });
        break;
      }
      case 'Add':
        ops.push({ out: layer.name, inputs, weights: [], apply: (xs) => (xs.length === 2 ? tf.add(xs[0], xs[1]) : tf.addN(xs)) });
        break;
      case 'GlobalAveragePooling2D':
        checkChannelsLast(layer, cfg);
        if (cfg.keepDims) throw new Unsupported(`layer '${layer.name}' keeps dimensions`);
        ops.push({ out: layer.name, inputs, weights: [], apply: ([x]) => tf.mean(x, [1, 2]) });
        break;
      default:
        throw new Unsupported(`layer '${layer.name}' is a ${cls}, which the fused route does not handle`);
    }
  }

  const outputKey = keyOf(featureLayer);
  const pool = shapeOf(target).length === 4;
  // How many ops read each value, so it can be freed after its last reader.
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
function samePadding(
  inputShape: (number | null)[],
  kernel: [number, number],
  strides: [number, number],
  padding: [[number, number], [number, number]],
): boolean {
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
