// Cosine similarities between every pair of images' centred feature vectors (the dataset's mean
// vector subtracted first: the base's pooled ReLU features are all positive, so two unrelated photos
// already share a large common part; without it copies and distinct photos overlap more — see the
// calibration in docs/doctor.md), computed once for all the
// doctor's neighbour-based scores: the k nearest neighbours of every image (k-NN label agreement,
// outliers) and every pair above a similarity (near-duplicates). An n × n matrix is never held:
// rows go through in blocks, each block's similarities kept only as its top k and its close pairs.
//
// The products run on onnxruntime when it loads (one MatMul graph; flowers' 4,317 × 1,280 features
// take ~0.5 s there, tfjs WebAssembly took 14 s for the same transposed product) and fall back to
// a plain loop over normalised rows otherwise.
import type * as Ort from 'onnxruntime-node';
import { loadOnnxRuntime, onnxSessionOptions } from '../onnx/onnxFeatures';
import { encodeMatMulModel } from '../onnx/onnxProto';

/** Rows per block of the product: 512 × 4,317 similarities are ~9 MB at a time. */
const BLOCK_ROWS = 512;

/** What one pass over the similarity matrix keeps. */
export interface Neighbourhood {
  n: number;
  k: number;
  /** n × k indices of each row's nearest other rows, most similar first (-1 where fewer than k exist). */
  index: Int32Array;
  /** n × k cosine similarities matching `index`. */
  similarity: Float32Array;
  /** Every pair i < j with similarity ≥ the pair threshold. */
  pairs: { i: number; j: number; similarity: number }[];
}

/** Rows of `x` (n × f) scaled to unit length (a zero row stays zero). */
export function normalizeRows(x: Float32Array, n: number, f: number): Float32Array {
  const out = new Float32Array(n * f);
  for (let r = 0; r < n; r++) {
    let s = 0;
    for (let j = 0; j < f; j++) s += x[r * f + j] * x[r * f + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < f; j++) out[r * f + j] = x[r * f + j] * inv;
  }
  return out;
}

/** Rows of `x` (n × f) minus their mean row, then scaled to unit length: cosine similarity is then a dot product. */
export function centredUnitRows(x: Float32Array, n: number, f: number): Float32Array {
  const mean = new Float64Array(f);
  for (let r = 0; r < n; r++) for (let j = 0; j < f; j++) mean[j] += x[r * f + j];
  for (let j = 0; j < f; j++) mean[j] /= Math.max(1, n);
  const centred = new Float32Array(n * f);
  for (let r = 0; r < n; r++) for (let j = 0; j < f; j++) centred[r * f + j] = x[r * f + j] - mean[j];
  return normalizeRows(centred, n, f);
}

/** A · Bᵀ for a block A (m × f) against all rows B (n × f), row-major m × n. */
type BlockProduct = (a: Float32Array, m: number) => Promise<Float32Array>;

/** The block product on onnxruntime (undefined when it cannot load), with its disposal. */
async function onnxProduct(b: Float32Array, n: number, f: number): Promise<{ product: BlockProduct; dispose(): void } | undefined> {
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') return undefined;
  // Bᵀ as an initializer, so every block is one MatMul with no transpose at run time.
  const bt = new Float32Array(f * n);
  for (let r = 0; r < n; r++) for (let j = 0; j < f; j++) bt[j * n + r] = b[r * f + j];
  const graph = encodeMatMulModel(bt, f, n, 'm');
  const session: Ort.InferenceSession = await ort.InferenceSession.create(graph, onnxSessionOptions(2));
  return {
    async product(a, m) {
      const out = await session.run({ a: new ort.Tensor('float32', a, [m, f]) });
      return out.c.data as Float32Array;
    },
    dispose: () => void session.release(),
  };
}

/** The block product as a plain loop (no onnxruntime). */
function jsProduct(b: Float32Array, n: number, f: number): BlockProduct {
  return (a, m) => {
    const out = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let r = 0; r < n; r++) {
        let s = 0;
        for (let j = 0; j < f; j++) s += a[i * f + j] * b[r * f + j];
        out[i * n + r] = s;
      }
    }
    return Promise.resolve(out);
  };
}

/**
 * The `k` nearest neighbours of every row of `x` (n × f) by centred cosine similarity, and every pair at or
 * above `pairThreshold` that `confirm` accepts. Such a pair is a near-duplicate, not a neighbour: the
 * neighbours are the k nearest *other* photos, so a copy cannot vouch for its own label or hide an
 * outlier.
 */
export async function neighbourhood(
  x: Float32Array,
  n: number,
  f: number,
  k: number,
  pairThreshold: number,
  options: {
    signal?: AbortSignal;
    useOnnx?: boolean;
    /** Whether a pair at or above `pairThreshold` is a near-duplicate after all (default: yes). */
    confirm?: (i: number, j: number, similarity: number) => boolean;
  } = {},
): Promise<Neighbourhood> {
  const unit = centredUnitRows(x, n, f);
  const onnx = options.useOnnx === false || n === 0 ? undefined : await onnxProduct(unit, n, f);
  const product = onnx?.product ?? jsProduct(unit, n, f);
  const result: Neighbourhood = {
    n,
    k,
    index: new Int32Array(n * k).fill(-1),
    similarity: new Float32Array(n * k).fill(-Infinity),
    pairs: [],
  };
  try {
    for (let start = 0; start < n; start += BLOCK_ROWS) {
      options.signal?.throwIfAborted();
      const m = Math.min(BLOCK_ROWS, n - start);
      const s = await product(unit.subarray(start * f, (start + m) * f), m);
      for (let bi = 0; bi < m; bi++) keepRow(result, start + bi, s.subarray(bi * n, (bi + 1) * n), pairThreshold, options.confirm);
    }
  } finally {
    onnx?.dispose();
  }
  return result;
}

/** Keeps row i's top k (insertion into a sorted list of k) and its pairs above the threshold. */
function keepRow(
  out: Neighbourhood,
  i: number,
  row: Float32Array,
  pairThreshold: number,
  confirm: ((i: number, j: number, similarity: number) => boolean) | undefined,
): void {
  const { k, index, similarity } = out;
  const base = i * k;
  for (let j = 0; j < row.length; j++) {
    if (j === i) continue;
    const s = row[j];
    if (s >= pairThreshold && (confirm?.(i, j, s) ?? true)) {
      if (j > i) out.pairs.push({ i, j, similarity: Math.min(1, s) });
      continue;
    }
    if (k === 0 || s <= similarity[base + k - 1]) continue;
    let p = k - 1;
    while (p > 0 && similarity[base + p - 1] < s) {
      similarity[base + p] = similarity[base + p - 1];
      index[base + p] = index[base + p - 1];
      p--;
    }
    similarity[base + p] = s;
    index[base + p] = j;
  }
}
