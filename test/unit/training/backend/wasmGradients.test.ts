import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { seededRandom } from '../../../../src/training/util/random';
import { registerWasmGradients, wasmGradientStats } from '../../../../src/training/backend/wasmGradients';

type Pad = 'same' | 'valid';
interface Case {
  kind: 'conv' | 'depthwise';
  x: [number, number, number, number];
  filter: [number, number, number, number];
  stride: number;
  pad: Pad;
}

function randomData(size: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: size }, () => r() * 2 - 1);
}

const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Gradients of Σ(conv(x, w) ⊙ dy) with respect to x and w on `backend`: dx and dw are exactly the backprop kernels' outputs. */
async function gradients(backend: string, c: Case): Promise<{ dx: Float32Array; dw: Float32Array }> {
  await tf.setBackend(backend);
  const x = tf.tensor4d(randomData(size(c.x), 1), c.x);
  const w = tf.tensor4d(randomData(size(c.filter), 2), c.filter);
  const forward = (a: tf.Tensor4D, b: tf.Tensor4D): tf.Tensor4D =>
    c.kind === 'conv' ? tf.conv2d(a, b, c.stride, c.pad) : tf.depthwiseConv2d(a, b, c.stride, c.pad);
  const outShape = tf.tidy(() => forward(x, w).shape);
  const dy = tf.tensor(randomData(size(outShape), 3), outShape);
  const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(forward(a as tf.Tensor4D, b as tf.Tensor4D), dy)))([x, w]);
  const result = { dx: (await dx.data()) as Float32Array, dw: (await dw.data()) as Float32Array };
  tf.dispose([x, w, dy, dx, dw]);
  return result;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function compare(c: Case): Promise<{ fast: number; reference: number; native: number }> {
  const expected = await gradients('cpu', c);
  const before = { ...wasmGradientStats };
  const actual = await gradients('wasm', c);
  const dxErr = maxAbsDiff(actual.dx, expected.dx);
  const dwErr = maxAbsDiff(actual.dw, expected.dw);
  assert.ok(dxErr < 1e-4, `input gradient differs from the cpu kernel by ${dxErr}`);
  assert.ok(dwErr < 1e-4, `filter gradient differs from the cpu kernel by ${dwErr}`);
  // sanity: the comparison is not between two zero arrays
  assert.ok(expected.dw.some((v) => Math.abs(v) > 0.1) && expected.dx.some((v) => Math.abs(v) > 0.1));
  return {
    fast: wasmGradientStats.fast - before.fast,
    reference: wasmGradientStats.reference - before.reference,
    native: wasmGradientStats.native - before.native,
  };
}

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

describe('WebAssembly convolution gradients', () => {
  it('are missing from tfjs-backend-wasm itself, so back-propagating into a convolution fails until they are registered', async () => {
    await tf.setBackend('wasm');
    const names = ['Conv2DBackpropFilter', 'DepthwiseConv2dNativeBackpropFilter', 'DepthwiseConv2dNativeBackpropInput'];
    for (const name of names) assert.equal(tf.getKernel(name, 'wasm'), undefined, `${name} is not native to wasm`);
    assert.ok(tf.getKernel('Conv2DBackpropInput', 'wasm'), 'the input gradient of Conv2D is native to wasm');
    await assert.rejects(
      gradients('wasm', { kind: 'conv', x: [1, 3, 3, 2], filter: [1, 1, 2, 2], stride: 1, pad: 'same' }),
      /Conv2DBackpropFilter/,
    );
    registerWasmGradients(tf);
    for (const name of names) assert.ok(tf.getKernel(name, 'wasm'), `${name} registered`);
  });

  it('match the cpu kernels for a 1×1 convolution (MobileNet expand/project), filter and input gradients on the fast path', async () => {
    const used = await compare({ kind: 'conv', x: [2, 5, 5, 6], filter: [1, 1, 6, 4], stride: 1, pad: 'same' });
    assert.deepEqual(used, { fast: 2, reference: 0, native: 0 });
  });

  it('leave the input gradient of a strided 1×1 convolution to the native wasm kernel', async () => {
    const used = await compare({ kind: 'conv', x: [2, 6, 6, 3], filter: [1, 1, 3, 4], stride: 2, pad: 'valid' });
    assert.deepEqual(used, { fast: 1, reference: 0, native: 1 });
  });

  it('match the cpu kernels for a strided 3×3 convolution with same padding, one product per tap', async () => {
    const used = await compare({ kind: 'conv', x: [2, 7, 7, 3], filter: [3, 3, 3, 5], stride: 2, pad: 'same' });
    assert.deepEqual(used, { fast: 1, reference: 0, native: 1 });
  });

  it('match the cpu kernels for a valid 3×3 convolution', async () => {
    const used = await compare({ kind: 'conv', x: [1, 6, 5, 2], filter: [3, 3, 2, 3], stride: 1, pad: 'valid' });
    assert.deepEqual(used, { fast: 1, reference: 0, native: 1 });
  });

  it('match the cpu kernels for a 3×3 stride-1 same depthwise convolution (filter and input gradients fast)', async () => {
    const used = await compare({ kind: 'depthwise', x: [2, 6, 6, 5], filter: [3, 3, 5, 1], stride: 1, pad: 'same' });
    assert.deepEqual(used, { fast: 2, reference: 0, native: 0 });
  });

  it('match the cpu kernels for even and 5×5 depthwise kernels with asymmetric same padding', async () => {
    assert.deepEqual(await compare({ kind: 'depthwise', x: [1, 5, 6, 3], filter: [2, 2, 3, 1], stride: 1, pad: 'same' }), {
      fast: 2,
      reference: 0,
      native: 0,
    });
    assert.deepEqual(await compare({ kind: 'depthwise', x: [2, 7, 7, 2], filter: [5, 5, 2, 1], stride: 1, pad: 'same' }), {
      fast: 2,
      reference: 0,
      native: 0,
    });
  });

  it('fall back to the cpu kernel for the input gradient of a strided depthwise convolution', async () => {
    // MobileNetV2's downsampling blocks: zero padding, then a 3×3 stride-2 valid depthwise convolution
    const used = await compare({ kind: 'depthwise', x: [2, 8, 8, 4], filter: [3, 3, 4, 1], stride: 2, pad: 'valid' });
    assert.deepEqual(used, { fast: 1, reference: 1, native: 0 });
  });

  it('fall back to the cpu kernels for a depth multiplier above 1', async () => {
    const used = await compare({ kind: 'depthwise', x: [1, 5, 5, 3], filter: [3, 3, 3, 2], stride: 1, pad: 'same' });
    assert.deepEqual(used, { fast: 0, reference: 2, native: 0 });
  });

  it('broadcast a Tile of size-1 dimensions (BatchNorm gradients) and leave other tiles to the native kernel', async () => {
    const cases: [number[], number[], number][] = [
      [[1, 1, 1, 6], [2, 3, 4, 1], 1],
      [[2, 1, 5], [1, 4, 1], 1],
      [[2, 3], [2, 2], 0], // repeats a dimension of size 2: a real tile
    ];
    for (const [shape, reps, fast] of cases) {
      const data = randomData(size(shape), 9);
      await tf.setBackend('cpu');
      const expected = tf.tidy(() => tf.tile(tf.tensor(data, shape), reps).dataSync().slice());
      await tf.setBackend('wasm');
      const before = { ...wasmGradientStats };
      const actual = tf.tidy(() => tf.tile(tf.tensor(data, shape), reps).dataSync().slice());
      assert.deepEqual(actual, expected, `tile ${shape} by ${reps}`);
      assert.equal(wasmGradientStats.fast - before.fast, fast);
      assert.equal(wasmGradientStats.native - before.native, 1 - fast);
    }
  });

  it('leave no tensor or WebAssembly buffer behind', async () => {
    await tf.setBackend('wasm');
    const c: Case = { kind: 'depthwise', x: [2, 6, 6, 5], filter: [3, 3, 5, 1], stride: 1, pad: 'same' };
    await gradients('wasm', c); // warm-up
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const tensors = tf.memory().numTensors;
    const buffers = backend.numDataIds();
    await gradients('wasm', c);
    await gradients('wasm', { kind: 'conv', x: [2, 7, 7, 3], filter: [3, 3, 3, 5], stride: 2, pad: 'same' });
    await gradients('wasm', { kind: 'depthwise', x: [1, 5, 5, 3], filter: [3, 3, 3, 2], stride: 1, pad: 'same' });
    await gradients('wasm', { kind: 'conv', x: [2, 5, 5, 6], filter: [1, 1, 6, 4], stride: 1, pad: 'same' });
    tf.tidy(() => void tf.tile(tf.ones([1, 1, 3]), [2, 2, 1]));
    assert.equal(tf.memory().numTensors, tensors);
    assert.equal(backend.numDataIds(), buffers);
  });

  it('can be registered again, switching between the fast and the reference kernels', async () => {
    registerWasmGradients(tf, 'reference');
    try {
      const used = await compare({ kind: 'conv', x: [2, 5, 5, 6], filter: [1, 1, 6, 4], stride: 1, pad: 'same' });
      // the input gradient runs on the original wasm kernel, restored as it was
      assert.deepEqual(used, { fast: 0, reference: 1, native: 0 });
    } finally {
      registerWasmGradients(tf);
    }
    const used = await compare({ kind: 'conv', x: [2, 5, 5, 6], filter: [1, 1, 6, 4], stride: 1, pad: 'same' });
    assert.deepEqual(used, { fast: 2, reference: 0, native: 0 });
  });
});

describe('WebAssembly matrix products with transposed operands', () => {
  it('equal the cpu backend for every transpose combination, in 2-D and batched 3-D', async () => {
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmGradients(tf);
    for (const [ta, tb] of [
      [true, false],
      [false, true],
      [true, true],
      [false, false],
    ] as const) {
      for (const batched of [false, true]) {
        const aShape = batched ? [2, ta ? 7 : 5, ta ? 5 : 7] : [ta ? 7 : 5, ta ? 5 : 7];
        const bShape = batched ? [2, tb ? 3 : 7, tb ? 7 : 3] : [tb ? 3 : 7, tb ? 7 : 3];
        const results: Float32Array[] = [];
        for (const backend of ['cpu', 'wasm']) {
          await tf.setBackend(backend);
          const a = tf.tensor(randomData(size(aShape), 4), aShape);
          const b = tf.tensor(randomData(size(bShape), 5), bShape);
          const out = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, ta, tb);
          results.push((await out.data()) as Float32Array);
          tf.dispose([a, b, out]);
        }
        assert.ok(maxAbsDiff(results[0], results[1]) < 1e-5, `transposeA=${ta} transposeB=${tb} batched=${batched}`);
      }
    }
  });
});
