// Adam's update as one fused loop over WebAssembly SIMD lanes.
//
// The head's step graph on onnxruntime computes the gradients; the update itself is ten
// element-wise passes over the 164k weights of W1 when written as ONNX operations (~0.35 ms of a
// ~1.1 ms step here). Here it is one pass, four floats at a time, over parameters, moments and
// gradients that live in this module's memory, so onnxruntime reads the weights from and writes
// the gradients into the same buffers without a copy.
//
// The update, with the moments kept divided by (1 - β1) and (1 - β2) (see onnxHead.ts's
// `adamScalars` for the two scalars): m̃ = β1·m̃ + g, ṽ = β2·ṽ + g², p = p + m̃·scale / (sqrt(ṽ) + eps).
//
// The module is assembled here, byte by byte, from the twenty-odd instructions it needs: no
// toolchain, no binary in the repository. Where WebAssembly SIMD is missing, a plain loop does the
// same arithmetic (`adamReference`).

/** Adam's update over `n` values of float32 arrays (p, m, v, g); all have length ≥ n. */
export type AdamUpdate = (n: number, beta1: number, beta2: number, scale: number, eps: number) => void;

/** Parameters, moments and gradients of one optimizer, and the update that runs over them. */
export interface AdamBuffers {
  params: Float32Array;
  m: Float32Array;
  v: Float32Array;
  grad: Float32Array;
  /** Applies one update to the first `n` values of every buffer. */
  update: AdamUpdate;
  /** `simd` when the WebAssembly loop runs, `js` for the plain-loop fallback. */
  kind: 'simd' | 'js';
}

/** The update in plain JavaScript, float32 at every step: the fallback, and the reference the tests hold the SIMD loop to. */
export function adamReference(
  p: Float32Array,
  m: Float32Array,
  v: Float32Array,
  g: Float32Array,
  n: number,
  beta1: number,
  beta2: number,
  scale: number,
  eps: number,
): void {
  const f = Math.fround;
  const [b1, b2, s, e] = [f(beta1), f(beta2), f(scale), f(eps)];
  for (let i = 0; i < n; i++) {
    const gi = g[i];
    const mi = f(f(m[i] * b1) + gi);
    const vi = f(f(v[i] * b2) + f(gi * gi));
    m[i] = mi;
    v[i] = vi;
    p[i] = f(p[i] + f(f(mi * s) / f(f(Math.sqrt(vi)) + e)));
  }
}

// --- a very small WebAssembly assembler --------------------------------------------------------

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(text: string): number[] {
  const bytes = [...Buffer.from(text, 'utf8')];
  return [...uleb(bytes.length), ...bytes];
}

const I32 = 0x7f;
const F32 = 0x7d;
const V128 = 0x7b;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (depth: number) => [0x0c, ...uleb(depth)],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  get: (local: number) => [0x20, ...uleb(local)],
  set: (local: number) => [0x21, ...uleb(local)],
  i32Const: (value: number) => [0x41, ...sleb(value)],
  i32Add: [0x6a],
  i32Shl: [0x74],
  i32GeU: [0x4f],
  // SIMD: the 0xfd prefix, then the instruction number as an unsigned LEB128.
  v128Load: [0xfd, ...uleb(0x00), 0x02, 0x00], // memarg: align 2^2, offset 0
  v128Store: [0xfd, ...uleb(0x0b), 0x02, 0x00],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  f32x4Sqrt: [0xfd, ...uleb(0xe3)],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
  f32x4Div: [0xfd, ...uleb(0xe7)],
};

// The function's locals: parameters 0-8 (p, m, v, g as byte addresses, n, β1, β2, scale, eps),
// then i, end (i32) and β1, β2, scale, eps, g, m, v as four-lane vectors (v128).
const [P, M, V, G, N, B1, B2, S, E] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
const [I, END, B1V, B2V, SV, EV, G4, M4, V4] = [9, 10, 11, 12, 13, 14, 15, 16, 17];

/** The module: imports `env.memory`, exports `adam(p, m, v, g, n, β1, β2, scale, eps)` (byte addresses, n a multiple of 4). */
function adamModule(): Uint8Array {
  const body = [
    ...[2, ...uleb(2), I32, ...uleb(7), V128], // local declarations: 2 × i32, 7 × v128
    ...adamPrologue(),
    ...adamLoop(),
    ...op.end, // function
  ];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, [1, 0x60, ...uleb(9), I32, I32, I32, I32, I32, F32, F32, F32, F32, 0]),
    ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]),
    ...section(3, [1, 0]),
    ...section(7, [1, ...name('adam'), 0x00, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ];
  return Uint8Array.from(bytes);
}

/** end = n·4 bytes, and the four scalars splatted into vectors once, outside the loop. */
function adamPrologue(): number[] {
  const splat = (scalar: number, vector: number) => [...op.get(scalar), ...op.f32x4Splat, ...op.set(vector)];
  return [
    ...op.get(N),
    ...op.i32Const(2),
    ...op.i32Shl,
    ...op.set(END),
    ...splat(B1, B1V),
    ...splat(B2, B2V),
    ...splat(S, SV),
    ...splat(E, EV),
  ];
}

/** While i < end: the update of the four values at byte offset i, then i += 16. */
function adamLoop(): number[] {
  return [
    ...op.block,
    ...op.loop,
    ...op.get(I),
    ...op.get(END),
    ...op.i32GeU,
    ...op.brIf(1),
    ...adamLanes(),
    ...op.get(I),
    ...op.i32Const(16),
    ...op.i32Add,
    ...op.set(I),
    ...op.br(0),
    ...op.end, // loop
    ...op.end, // block
  ];
}

/** m, v and p of the four values at byte offset i, each loaded and stored once. */
function adamLanes(): number[] {
  const at = (base: number) => [...op.get(base), ...op.get(I), ...op.i32Add];
  return [
    // g4 = g[i]
    ...at(G),
    ...op.v128Load,
    ...op.set(G4),
    // m[i] = m4 = m[i]·β1 + g4
    ...at(M),
    ...at(M),
    ...op.v128Load,
    ...op.get(B1V),
    ...op.f32x4Mul,
    ...op.get(G4),
    ...op.f32x4Add,
    ...op.set(M4),
    ...op.get(M4),
    ...op.v128Store,
    // v[i] = v4 = v[i]·β2 + g4·g4
    ...at(V),
    ...at(V),
    ...op.v128Load,
    ...op.get(B2V),
    ...op.f32x4Mul,
    ...op.get(G4),
    ...op.get(G4),
    ...op.f32x4Mul,
    ...op.f32x4Add,
    ...op.set(V4),
    ...op.get(V4),
    ...op.v128Store,
    // p[i] = p[i] + m4·scale / (sqrt(v4) + eps)
    ...at(P),
    ...at(P),
    ...op.v128Load,
    ...op.get(M4),
    ...op.get(SV),
    ...op.f32x4Mul,
    ...op.get(V4),
    ...op.f32x4Sqrt,
    ...op.get(EV),
    ...op.f32x4Add,
    ...op.f32x4Div,
    ...op.f32x4Add,
    ...op.v128Store,
  ];
}

const PAGE = 65536;

/** The part of the WebAssembly JS API used here (the training tsconfig has no DOM library to declare it). */
interface WasmApi {
  Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}

/**
 * Buffers for `size` parameters with their update: in WebAssembly memory with the SIMD loop when
 * this Node can compile it (or when `force` says so), else ordinary arrays with `adamReference`.
 * The arrays are padded to a multiple of 4; the padding stays zero and is never read back.
 */
export function createAdamBuffers(size: number, force?: 'simd' | 'js'): AdamBuffers {
  const padded = Math.ceil(size / 4) * 4;
  if (force !== 'js') {
    try {
      const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
      const bytes = padded * 4;
      const memory = new wasm.Memory({ initial: Math.ceil((4 * bytes) / PAGE) });
      const instance = new wasm.Instance(new wasm.Module(adamModule()), { env: { memory } });
      const adam = instance.exports.adam as (
        p: number,
        m: number,
        v: number,
        g: number,
        n: number,
        b1: number,
        b2: number,
        s: number,
        e: number,
      ) => void;
      // The memory never grows, so these views stay valid.
      const view = (k: number) => new Float32Array(memory.buffer, k * bytes, padded);
      return {
        params: view(0),
        m: view(1),
        v: view(2),
        grad: view(3),
        kind: 'simd',
        update: (n, beta1, beta2, scale, eps) => adam(0, bytes, 2 * bytes, 3 * bytes, Math.ceil(n / 4) * 4, beta1, beta2, scale, eps),
      };
    } catch (error) {
      if (force === 'simd') throw error;
    }
  }
  const [params, m, v, grad] = [0, 1, 2, 3].map(() => new Float32Array(padded));
  return {
    params,
    m,
    v,
    grad,
    kind: 'js',
    update: (n, beta1, beta2, scale, eps) => adamReference(params, m, v, grad, n, beta1, beta2, scale, eps),
  };
}
