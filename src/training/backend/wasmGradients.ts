// The WebAssembly backend of tfjs 4.22 has no kernels for three convolution gradients:
// Conv2DBackpropFilter, DepthwiseConv2dNativeBackpropFilter and DepthwiseConv2dNativeBackpropInput,
// so back-propagating into a convolution fails there. This module registers them for `wasm`,
// composed from kernels WebAssembly does have (XNNPACK matrix multiply, depthwise convolution,
// strided slices, element-wise products, sums):
//   - conv filter gradient: for each filter tap, (strided slice of padded x)ᵀ · dy — one batched
//     matrix multiply per tap, a single one for a 1×1 convolution (MobileNet's expand/project);
//   - depthwise filter gradient: for each tap, Σ over batch and space of shifted x ⊙ dy;
//   - depthwise input gradient (stride 1): a depthwise convolution of dy with the spatially
//     flipped filter and the complementary padding.
// Any other case (depth multiplier ≠ 1, strided depthwise input gradient, NCHW, non-float32)
// falls back to the reference kernel of the pure-JS `cpu` backend, copying the operands across:
// correct, slow, and never reached by the MobileNetV2 top blocks the product fine-tunes.
//
// Two kernels wasm does have are slow on the shapes back-propagation gives them, and are
// replaced for those shapes only (every other call goes to the original kernel):
//   - Conv2DBackpropInput of a 1×1 stride-1 convolution is dy · Wᵀ, one matrix product
//     (the native kernel is a plain loop, ~15× slower here);
//   - Tile that only broadcasts size-1 dimensions (BatchNorm's gradient tiles its per-channel
//     scale to the activation shape) is a fill and a broadcasting multiply (~40× faster).
// And XNNPACK multiplies matrices only untransposed: BatchMatMul with transposeA/B falls to a
// naive loop ~17× slower than an explicit Transpose followed by the plain product, so every
// product here transposes first, and BatchMatMul itself is replaced for transposed operands
// (the head's dense-layer gradients).

import type * as tf from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';

type TensorInfo = tf.TensorInfo;
type KernelConfig = ReturnType<Tf['getKernel']>;
type NamedAttrMap = NonNullable<Parameters<KernelConfig['kernelFunc']>[0]['attrs']>;

/** The members of the wasm and cpu backends these kernels use. */
interface DataBackend {
  write(values: Float32Array | Int32Array | Uint8Array, shape: number[], dtype: string): tf.DataId;
  readSync(dataId: tf.DataId): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId, force?: boolean): boolean;
}

const MISSING = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'] as const;
const REPLACED = ['Conv2DBackpropInput', 'Tile', 'BatchMatMul'] as const;
type MissingKernel = (typeof MISSING)[number];
type ReplacedKernel = (typeof REPLACED)[number];

/** `fast`: the composed WebAssembly kernels (default); `reference`: tfjs as shipped, the missing kernels borrowed from the pure-JS cpu backend (for comparison). */
export type WasmGradientMode = 'fast' | 'reference';

/** How many kernel calls took each path: tests and benchmarks check which one did the work. */
export const wasmGradientStats = { fast: 0, reference: 0, native: 0 };

// The original wasm kernels of REPLACED, per tfjs instance, captured before replacing them.
const nativeKernels = new WeakMap<object, Map<string, KernelConfig>>();

// Marks kernel functions registered here, so that re-registering replaces only our own.
const OURS = Symbol('imageTrainerWasmGradient');

function pair(v: number | number[] | undefined, fallback: number): [number, number] {
  if (v === undefined || v === null) return [fallback, fallback];
  return typeof v === 'number' ? [v, v] : [v[0], v[1] ?? v[0]];
}

/** Runs the cpu backend's reference kernel on copies of the operands and brings the result back. */
function borrowCpuKernel(
  tfx: Tf,
  name: MissingKernel,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
  wasm: DataBackend,
): TensorInfo {
  const cpuKernel = tfx.getKernel(name, 'cpu');
  const cpu = tfx.findBackend('cpu') as unknown as DataBackend | null;
  if (!cpuKernel || !cpu) throw new Error(`${name}: WebAssembly has no kernel and the pure-JS cpu backend is unavailable.`);
  const cpuInputs: Record<string, TensorInfo> = {};
  try {
    for (const [key, t] of Object.entries(inputs)) {
      cpuInputs[key] = { dataId: cpu.write(wasm.readSync(t.dataId), t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
    }
    const out = cpuKernel.kernelFunc({ inputs: cpuInputs, attrs, backend: cpu as never }) as TensorInfo;
    try {
      return { dataId: wasm.write(cpu.readSync(out.dataId), out.shape, out.dtype), shape: out.shape, dtype: out.dtype };
    } finally {
      cpu.disposeData(out.dataId, true);
    }
  } finally {
    for (const t of Object.values(cpuInputs)) cpu.disposeData(t.dataId, true);
  }
}

/** Calls WebAssembly kernels directly and frees the intermediates it is told to. */
class WasmOps {
  private readonly temps: TensorInfo[] = [];
  constructor(
    private readonly tfx: Tf,
    private readonly backend: DataBackend,
  ) {}

  run(name: string, inputs: Record<string, TensorInfo>, attrs: NamedAttrMap = {}): TensorInfo {
    const kernel = this.tfx.getKernel(name, 'wasm');
    if (!kernel) throw new Error(`WebAssembly kernel ${name} is missing`);
    const out = kernel.kernelFunc({ inputs, attrs, backend: this.backend as never }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  transpose2d(x: TensorInfo): TensorInfo {
    return this.run('Transpose', { x }, { perm: [1, 0] });
  }

  /** a · b for 2-D a and b, untransposed: the only form XNNPACK runs fast. */
  matMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }

  /** `x[:, i::sh, j::sw, :]` limited to `outH × outW` positions. */
  tap(x: TensorInfo, i: number, j: number, outH: number, outW: number, sh: number, sw: number): TensorInfo {
    const [n, , , c] = x.shape;
    return this.run(
      'StridedSlice',
      { x },
      {
        begin: [0, i, j, 0],
        end: [n, i + (outH - 1) * sh + 1, j + (outW - 1) * sw + 1, c],
        strides: [1, sh, sw, 1],
        beginMask: 0,
        endMask: 0,
        ellipsisMask: 0,
        newAxisMask: 0,
        shrinkAxisMask: 0,
      },
    );
  }

  padSpatial(x: TensorInfo, top: number, bottom: number, left: number, right: number): TensorInfo {
    if (top === 0 && bottom === 0 && left === 0 && right === 0) return x;
    return this.run(
      'PadV2',
      { x },
      {
        paddings: [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        constantValue: 0,
      },
    );
  }

  /** Keeps `result` and frees every other intermediate (a reshaped result holds its own reference). */
  finish(result: TensorInfo): TensorInfo {
    for (const t of this.temps) if (t !== result) this.backend.disposeData(t.dataId);
    return result;
  }

  free(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
  }
}

type ConvInfo = ReturnType<Tf['backend_util']['computeConv2DInfo']>;

function convInfoOf(tfx: Tf, xShape: number[], filterShape: number[], attrs: NamedAttrMap, depthwise: boolean): ConvInfo {
  const strides = pair(attrs.strides as number | number[], 1);
  const dilations = pair(attrs.dilations as number | number[] | undefined, 1);
  return tfx.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    dilations,
    attrs.pad as 'same' | 'valid' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    depthwise,
  );
}

function isNhwc(attrs: NamedAttrMap): boolean {
  return attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC' || attrs.dataFormat === 'channelsLast';
}

/** Conv2D filter gradient: one matrix product per filter tap. */
function conv2dFilterGrad(tfx: Tf, ops: WasmOps, x: TensorInfo, dy: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  const filterShape = attrs.filterShape as number[];
  if (!isNhwc(attrs) || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const info = convInfoOf(tfx, x.shape, filterShape, attrs, false);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const [n, , , cin] = x.shape;
  const cout = filterShape[3];
  const p = n * oh * ow;
  const dy2 = ops.reshape(dy, [p, cout]);
  const { top, bottom, left, right } = info.padInfo;
  const direct = kh === 1 && kw === 1 && sh === 1 && sw === 1 && top === 0 && left === 0;
  const xpad = direct ? x : ops.padSpatial(x, top, bottom, left, right);
  const taps: TensorInfo[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const xs = direct ? x : ops.tap(xpad, i, j, oh, ow, sh, sw);
      const g = ops.matMul(ops.transpose2d(ops.reshape(xs, [p, cin])), dy2);
      taps.push(ops.reshape(g, [1, cin, cout]));
    }
  }
  const stacked = taps.length === 1 ? taps[0] : ops.run('Concat', taps as never, { axis: 0 });
  return ops.reshape(stacked, filterShape);
}

/** Depthwise filter gradient (depth multiplier 1): Σ over batch and space of shifted x ⊙ dy, per tap. */
function depthwiseFilterGrad(tfx: Tf, ops: WasmOps, x: TensorInfo, dy: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  const filterShape = attrs.filterShape as number[];
  if (filterShape[3] !== 1 || x.dtype !== 'float32' || dy.dtype !== 'float32') return null;
  const info = convInfoOf(tfx, x.shape, filterShape, attrs, true);
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const c = x.shape[3];
  const p = x.shape[0] * oh * ow;
  const { top, bottom, left, right } = info.padInfo;
  const xpad = ops.padSpatial(x, top, bottom, left, right);
  const dy2 = ops.reshape(dy, [p, c]);
  const taps: TensorInfo[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const xs2 = ops.reshape(ops.tap(xpad, i, j, oh, ow, sh, sw), [p, c]);
      const prod = ops.run('Multiply', { a: xs2, b: dy2 });
      taps.push(ops.run('Sum', { x: prod }, { axis: [0], keepDims: true }));
    }
  }
  const stacked = taps.length === 1 ? taps[0] : ops.run('Concat', taps as never, { axis: 0 });
  return ops.reshape(stacked, filterShape);
}

/** Depthwise input gradient, stride 1: depthwise convolution of dy with the flipped filter. */
function depthwiseInputGrad(tfx: Tf, ops: WasmOps, dy: TensorInfo, filter: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  const inputShape = attrs.inputShape as number[];
  if (filter.shape[3] !== 1 || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const info = convInfoOf(tfx, inputShape, filter.shape, attrs, true);
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const { filterHeight: kh, filterWidth: kw, outHeight: oh, outWidth: ow } = info;
  const { top, bottom, left, right } = info.padInfo;
  // dx[y] = Σ_i dy[y + top - i] · w[i]: a correlation of dy, padded by (k-1-top) before and
  // (k-1-bottom) after, with the reversed filter.
  const pt = kh - 1 - top;
  const pb = kh - 1 - bottom;
  const pl = kw - 1 - left;
  const pr = kw - 1 - right;
  if (pt < 0 || pb < 0 || pl < 0 || pr < 0) return null;
  if (oh + pt + pb - kh + 1 !== inputShape[1] || ow + pl + pr - kw + 1 !== inputShape[2]) return null;
  const flipped = ops.run('Reverse', { x: filter }, { dims: [0, 1] });
  return ops.run('DepthwiseConv2dNative', { x: dy, filter: flipped }, {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [
      [0, 0],
      [pt, pb],
      [pl, pr],
      [0, 0],
    ],
    dimRoundingMode: undefined,
  } as never);
}

/** Conv2D input gradient of a 1×1 stride-1 convolution: dy · Wᵀ. */
function conv2dInputGrad1x1(tfx: Tf, ops: WasmOps, dy: TensorInfo, filter: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  const inputShape = attrs.inputShape as number[];
  const [kh, kw, cin, cout] = filter.shape;
  if (kh !== 1 || kw !== 1 || !isNhwc(attrs) || dy.dtype !== 'float32' || filter.dtype !== 'float32') return null;
  const [sh, sw] = pair(attrs.strides as number | number[], 1);
  const [dh, dw] = pair(attrs.dilations as number | number[] | undefined, 1);
  if (sh !== 1 || sw !== 1 || dh !== 1 || dw !== 1) return null;
  const info = convInfoOf(tfx, inputShape, filter.shape, attrs, false);
  if (info.padInfo.top !== 0 || info.padInfo.left !== 0 || info.outHeight !== inputShape[1] || info.outWidth !== inputShape[2]) return null;
  const p = dy.shape[0] * dy.shape[1] * dy.shape[2];
  const wt = ops.transpose2d(ops.reshape(filter, [cin, cout]));
  return ops.reshape(ops.matMul(ops.reshape(dy, [p, cout]), wt), inputShape);
}

/** Tile that only repeats size-1 dimensions is a broadcast: ones of the output shape times x. */
function broadcastTile(ops: WasmOps, x: TensorInfo, attrs: NamedAttrMap): TensorInfo | null {
  const reps = attrs.reps as number[];
  if (x.dtype !== 'float32' || reps.length !== x.shape.length) return null;
  if (!reps.every((r, i) => r === 1 || x.shape[i] === 1)) return null;
  const outShape = x.shape.map((d, i) => d * reps[i]);
  const ones = ops.run('Fill', {}, { shape: outShape, value: 1, dtype: 'float32' });
  return ops.run('Multiply', { a: ones, b: x });
}

function fastPath(
  tfx: Tf,
  name: MissingKernel | ReplacedKernel,
  ops: WasmOps,
  input: (key: string) => TensorInfo,
  a: NamedAttrMap,
): TensorInfo | null {
  switch (name) {
    case 'Conv2DBackpropFilter':
      return conv2dFilterGrad(tfx, ops, input('x'), input('dy'), a);
    case 'DepthwiseConv2dNativeBackpropFilter':
      return depthwiseFilterGrad(tfx, ops, input('x'), input('dy'), a);
    case 'DepthwiseConv2dNativeBackpropInput':
      return depthwiseInputGrad(tfx, ops, input('dy'), input('filter'), a);
    case 'Conv2DBackpropInput':
      return conv2dInputGrad1x1(tfx, ops, input('dy'), input('filter'), a);
    case 'Tile':
      return broadcastTile(ops, input('x'), a);
    case 'BatchMatMul':
      return untransposedMatMul(ops, input('a'), input('b'), a);
  }
}

/** A transposed product as explicit Transpose + plain product (a dense layer's weight gradient is xᵀ·dy); null when nothing is transposed. */
function untransposedMatMul(ops: WasmOps, x: TensorInfo, y: TensorInfo, a: NamedAttrMap): TensorInfo | null {
  if (!a.transposeA && !a.transposeB) return null;
  const t = (v: TensorInfo): TensorInfo => ops.run('Transpose', { x: v }, { perm: v.shape.length === 3 ? [0, 2, 1] : [1, 0] });
  return ops.matMul(a.transposeA ? t(x) : x, a.transposeB ? t(y) : y);
}

function makeKernel(tfx: Tf, name: MissingKernel | ReplacedKernel, mode: WasmGradientMode, native?: KernelConfig): KernelConfig {
  const kernelFunc = ({ inputs, attrs, backend }: Parameters<KernelConfig['kernelFunc']>[0]): TensorInfo => {
    const wasm = backend as unknown as DataBackend;
    const a = attrs ?? {};
    const input = (key: string): TensorInfo => {
      const t = inputs[key];
      if (!t) throw new Error(`${name}: input ${key} is missing`);
      return t;
    };
    if (mode === 'fast') {
      const ops = new WasmOps(tfx, wasm);
      let result: TensorInfo | null;
      try {
        result = fastPath(tfx, name, ops, input, a);
      } catch (err) {
        ops.free();
        throw err;
      }
      // The matrix-product replacement serves every BatchMatMul (ours included): it is not a gradient kernel, so it is not counted.
      const counted = name !== 'BatchMatMul';
      if (result) {
        if (counted) wasmGradientStats.fast++;
        return ops.finish(result);
      }
      ops.free();
    }
    if (native) {
      if (name !== 'BatchMatMul') wasmGradientStats.native++;
      return native.kernelFunc({ inputs, attrs, backend }) as TensorInfo;
    }
    wasmGradientStats.reference++;
    return borrowCpuKernel(tfx, name as MissingKernel, inputs as Record<string, TensorInfo>, a, wasm);
  };
  (kernelFunc as unknown as Record<symbol, boolean>)[OURS] = true;
  return { kernelName: name, backendName: 'wasm', kernelFunc: kernelFunc as KernelConfig['kernelFunc'] };
}

/**
 * Registers the convolution-gradient kernels the WebAssembly backend lacks (and faster versions
 * of two slow ones for the shapes back-propagation uses), so that fine-tuning can back-propagate
 * through MobileNet's convolutions there. Idempotent; a missing kernel that tfjs itself provides
 * for wasm (a later version) is left alone. `reference` borrows the pure-JS kernels for the
 * missing ones and restores the original wasm kernels: the slow path, kept for comparison.
 */
export function registerWasmGradients(tfx: Tf, mode: WasmGradientMode = 'fast'): void {
  const isOurs = (k: KernelConfig | undefined): boolean => !!k && !!(k.kernelFunc as unknown as Record<symbol, boolean>)[OURS];
  for (const name of MISSING) {
    const existing = tfx.getKernel(name, 'wasm');
    if (existing) {
      if (!isOurs(existing)) continue;
      tfx.unregisterKernel(name, 'wasm');
    }
    tfx.registerKernel(makeKernel(tfx, name, mode));
  }
  let natives = nativeKernels.get(tfx);
  if (!natives) nativeKernels.set(tfx, (natives = new Map()));
  for (const name of REPLACED) {
    const existing = tfx.getKernel(name, 'wasm');
    if (existing && !isOurs(existing)) natives.set(name, existing);
    const native = natives.get(name);
    if (!native) continue;
    if (existing) tfx.unregisterKernel(name, 'wasm');
    // `reference` restores the original kernel: the state of tfjs before this module.
    tfx.registerKernel(mode === 'fast' ? makeKernel(tfx, name, mode, native) : native);
  }
}
