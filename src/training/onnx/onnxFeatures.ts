// The frozen base on onnxruntime-node: the fastest CPU runtime for feature extraction.
// The ONNX graph is exported by the project itself from the same TF.js weights (onnxExport.ts) and
// cached in the cache folder, keyed by model id + a hash of topology, weights, preprocessing and
// exporter version, so a second run skips the export. The cached file carries the sha256 of the
// graph's bytes in front of them and is checked on every load: a damaged graph would load and give
// wrong features (which would then be cached), so one that fails its check is exported again.
//
// onnxruntime-node is an optional dependency: when it is missing or its native library does not
// load, `loadOnnxBaseModel` returns undefined and says why, and the caller falls back to tfjs.
//
// `session.run` executes synchronously on the JS thread (onnxruntime-node wraps the native call
// in setImmediate, nothing more): while a batch runs, no JS callback fires. Decodes queued before
// the call (sharp works on libuv's thread pool) still progress, so the caller should have the next
// batch's decodes in flight before calling `extract` — `decodeBatches` prefetches for that reason.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import type * as Ort from 'onnxruntime-node';
import type { ModelEntry } from '../models/modelRegistry';
import { ONNX_EXPORTER_VERSION, exportToOnnx } from './onnxExport';
import { writeFileAtomic } from '../util/atomicWrite';
import { type CacheIssues, UNREPORTED } from '../util/cacheFolder';

/** Cached graph layout: this magic, the sha256 of the graph (32 bytes), then the ONNX graph itself. */
const GRAPH_MAGIC = Buffer.from('ITFONNX1');
const GRAPH_HEADER = GRAPH_MAGIC.length + 32;

/** The frozen base as the pipeline uses it: the shape of baseModel.ts's BaseModel, with route `onnx`. */
export interface OnnxBaseModel {
  entry: ModelEntry;
  /** The TF.js model the graph was exported from (fine-tuning and the saved classifier use it). */
  layersModel: tfType.LayersModel;
  inputSize: number;
  featureSize: number;
  /** Model id + weights hash + preprocessing + feature layer + exporter version, for the feature cache. */
  cacheKey: string;
  route: 'onnx';
  /** Which runtime computes the features, in words (for the run log and diagnostics). */
  routeNote: string;
  /** Images per `session.run` inside `extract`. */
  batchSize: number;
  /** `n * featureSize` features of `n` images given as `n * inputSize * inputSize * 3` RGB bytes; blocks the JS thread while each batch runs. */
  extract(pixels: Uint8Array, n: number): Promise<Float32Array>;
  /** Releases the session. `layersModel` stays: whoever loaded it disposes it. */
  dispose(): void;
}

export interface OnnxBaseModelOptions {
  /** Intra-op threads (default: os.availableParallelism()). */
  threads?: number;
  /** Images per `session.run` (default 32, the fastest measured here). */
  batchSize?: number;
  /** Told why onnxruntime cannot be used when the result is undefined. */
  onUnavailable?: (reason: string) => void;
  /** Told about the graph cache (hit, written, rebuilt). */
  log?: (message: string) => void;
  /** Told about a cached graph that failed its check, and about a write into the cache that failed. */
  issues?: CacheIssues;
}

type OrtModule = typeof Ort;
let ortModule: Promise<OrtModule | string> | undefined;

/** Loads onnxruntime-node once; resolves to the module, or to the reason it cannot load. */
export function loadOnnxRuntime(): Promise<OrtModule | string> {
  ortModule ??= (async () => {
    try {
      const ort = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
      // esbuild's CommonJS interop may put the module under `default`.
      const m = typeof ort.InferenceSession === 'function' ? ort : (ort.default as OrtModule);
      if (typeof m?.InferenceSession?.create !== 'function') return 'onnxruntime-node loaded without an InferenceSession';
      return m;
    } catch (error) {
      const message = (error instanceof Error ? error.message : String(error)).split('\n')[0];
      const code = (error as NodeJS.ErrnoException).code;
      return code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND'
        ? 'onnxruntime-node is not installed (optional dependency)'
        : `onnxruntime-node failed to load: ${message}`;
    }
  })();
  return ortModule;
}

/** onnxruntime-node's version as the module reports it ('' when it does not). */
export function onnxRuntimeVersion(ort: OrtModule): string {
  return ort.env.versions?.node ?? ort.env.versions?.common ?? '';
}

/** Which runtime computes something, in words for the run log: "onnxruntime-node 1.x (CPU, 1 thread, <detail>)". */
export function onnxRuntimeNote(ort: OrtModule, threads: number, detail: string): string {
  const version = onnxRuntimeVersion(ort);
  return `onnxruntime-node${version ? ` ${version}` : ''} (CPU, ${threads} thread${threads === 1 ? '' : 's'}, ${detail})`;
}

/** The session options every graph of the project runs with: CPU, sequential, fully optimised, `threads` intra-op threads. */
export function onnxSessionOptions(threads: number): Ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  };
}

/** Whether onnxruntime-node loads here: its version, or the reason it does not. */
export async function probeOnnxRuntime(): Promise<{ ok: true; version: string } | { ok: false; reason: string }> {
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') return { ok: false, reason: ort };
  return { ok: true, version: onnxRuntimeVersion(ort) || 'unknown' };
}

/** Hash of what determines the exported graph: topology, weights, preprocessing, exporter version. */
export function onnxGraphHash(layersModel: tfType.LayersModel, entry: ModelEntry): string {
  const h = createHash('sha256');
  h.update(
    `exporter=${ONNX_EXPORTER_VERSION};input=${entry.inputSize};scale=${entry.preprocessing.scale};offset=${entry.preprocessing.offset};features=${entry.featureLayer};`,
  );
  h.update(JSON.stringify(layersModel.toJSON(null, false)));
  for (const w of layersModel.weights) {
    const data = w.read().dataSync() as Float32Array;
    h.update(w.originalName ?? w.name);
    h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return h.digest('hex');
}

/** Path of the cached ONNX graph of `entry` for weights with hash `hash` (the graph behind a checksum header, hence not `.onnx`). */
export function onnxGraphPath(cacheDir: string, entry: ModelEntry, hash: string): string {
  return path.join(cacheDir, 'onnx', `${entry.id.replace(/[^A-Za-z0-9_.-]/g, '_')}-${hash.slice(0, 16)}.graph`);
}

/** The cached file of an exported graph: its checksum header, then the graph. */
export function sealGraph(graph: Uint8Array): Buffer {
  return Buffer.concat([GRAPH_MAGIC, createHash('sha256').update(graph).digest(), graph]);
}

/** The graph inside a cached file, or undefined when the file fails its check. */
export function unsealGraph(file: Uint8Array): Uint8Array | undefined {
  const data = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (data.length <= GRAPH_HEADER || !data.subarray(0, GRAPH_MAGIC.length).equals(GRAPH_MAGIC)) return undefined;
  const graph = data.subarray(GRAPH_HEADER);
  return createHash('sha256').update(graph).digest().equals(data.subarray(GRAPH_MAGIC.length, GRAPH_HEADER)) ? graph : undefined;
}

/** The base model on onnxruntime-node, exporting (or reusing the cached) ONNX graph; undefined, with the reason told to `onUnavailable`, when onnxruntime cannot be used. Without `cacheDir` nothing is cached. */
export async function loadOnnxBaseModel(
  layersModel: tfType.LayersModel,
  entry: ModelEntry,
  cacheDir: string | undefined,
  opts: OnnxBaseModelOptions = {},
): Promise<OnnxBaseModel | undefined> {
  const unavailable = (reason: string): undefined => {
    opts.onUnavailable?.(reason);
    return undefined;
  };
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') return unavailable(ort);

  const threads = Math.max(1, Math.floor(opts.threads ?? os.availableParallelism()));
  let hash: string;
  let graphFile: string | undefined;
  try {
    hash = onnxGraphHash(layersModel, entry);
    graphFile = cacheDir === undefined ? undefined : onnxGraphPath(cacheDir, entry, hash);
  } catch (error) {
    return unavailable(`cannot hash the model weights: ${(error as Error).message}`);
  }
  const graph = new OnnxFeatureGraph(ort, layersModel, entry, hash, graphFile, onnxSessionOptions(threads), unavailable, {
    log: opts.log,
    issues: opts.issues ?? UNREPORTED,
  });

  // A graph in the cache loaded before: open it when the first image needs features (a warm
  // rerun finds every vector in the feature cache and never does). Otherwise export it now, so
  // that a model onnxruntime cannot run falls back to tfjs before the run starts.
  let session: Promise<Ort.InferenceSession> | undefined;
  if (graphFile === undefined || !fs.existsSync(graphFile)) {
    const created = await graph.exportAndOpen();
    if (!created) return undefined;
    session = Promise.resolve(created);
  }

  const size = entry.inputSize;
  const imageBytes = size * size * 3;
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 32));
  const { scale, offset } = entry.preprocessing;
  let disposed = false;
  return {
    entry,
    layersModel,
    inputSize: size,
    featureSize: entry.featureSize,
    cacheKey: [entry.id, hash.slice(0, 16), `${size}px`, `x*${scale}+${offset}`, entry.featureLayer, `onnx-v${ONNX_EXPORTER_VERSION}`].join(
      '|',
    ),
    route: 'onnx',
    routeNote: onnxRuntimeNote(ort, threads, 'BatchNorm folded'),
    batchSize,
    async extract(pixels: Uint8Array, n: number): Promise<Float32Array> {
      if (disposed) throw new Error('the ONNX base model was disposed');
      if (pixels.length < n * imageBytes) throw new RangeError(`extract: ${n} images need ${n * imageBytes} bytes, got ${pixels.length}`);
      return runFeatureBatches(ort, await (session ??= graph.openCached()), entry, batchSize, pixels, n);
    },
    dispose(): void {
      if (disposed) return;
      disposed = true;
      void session?.then((s) => s.release()).catch(() => undefined);
    },
  };
}

/** The base's ONNX graph for one set of weights: exported and cached, or reopened from the cache. */
class OnnxFeatureGraph {
  constructor(
    private readonly ort: OrtModule,
    private readonly layersModel: tfType.LayersModel,
    private readonly entry: ModelEntry,
    private readonly hash: string,
    /** Where the graph is cached; undefined when nothing is. */
    private readonly graphFile: string | undefined,
    private readonly sessionOptions: Ort.InferenceSession.SessionOptions,
    /** Told why onnxruntime cannot run this model; returns undefined for the caller to return. */
    private readonly unavailable: (reason: string) => undefined,
    private readonly report: { log?: (message: string) => void; issues: CacheIssues },
  ) {}

  private log(message: string): void {
    this.report.log?.(message);
  }

  /** Exports the graph, opens it and caches it; undefined (with the reason told) when that fails. */
  async exportAndOpen(): Promise<Ort.InferenceSession | undefined> {
    const { entry, graphFile } = this;
    let bytes: Uint8Array;
    try {
      bytes = exportToOnnx(this.layersModel, {
        inputSize: entry.inputSize,
        preprocessing: entry.preprocessing,
        includePreprocessing: true,
        inputType: 'uint8',
        outputLayer: entry.featureLayer,
        outputName: 'features',
        metadata: { model_id: entry.id, weights_sha256: this.hash },
      });
    } catch (error) {
      return this.unavailable(`the model cannot be exported to ONNX: ${(error as Error).message}`);
    }
    let created: Ort.InferenceSession;
    try {
      created = await this.ort.InferenceSession.create(bytes, this.sessionOptions);
    } catch (error) {
      return this.unavailable(`onnxruntime rejected the exported graph: ${(error as Error).message.split('\n')[0]}`);
    }
    if (graphFile === undefined || !this.report.issues.writable) return created;
    try {
      await fs.promises.mkdir(path.dirname(graphFile), { recursive: true });
      await writeFileAtomic(graphFile, sealGraph(bytes));
      this.log(`ONNX graph of ${entry.id} exported to ${graphFile} (${(bytes.length / 1e6).toFixed(1)} MB)`);
    } catch (error) {
      // A read-only or full cache only costs the export next time.
      this.report.issues.writeFailed(error);
    }
    return created;
  }

  /** Opens the cached graph once it passes its check, or exports it again when it fails it or does not load. */
  async openCached(): Promise<Ort.InferenceSession> {
    const { entry, graphFile } = this;
    if (graphFile !== undefined) {
      const graph = await fs.promises.readFile(graphFile).then(unsealGraph, () => undefined);
      if (!graph) {
        this.report.issues.damaged(`ONNX graph ${graphFile} failed its checksum: discarded, exported again`);
      } else {
        try {
          const cached = await this.ort.InferenceSession.create(graph, this.sessionOptions);
          this.log(`ONNX graph of ${entry.id} reused from the cache (${graphFile})`);
          return cached;
        } catch (error) {
          this.log(`cached ONNX graph ${graphFile} does not load (${(error as Error).message.split('\n')[0]}); exporting it again`);
        }
      }
    }
    const again = await this.exportAndOpen();
    if (!again) throw new Error(`onnxruntime cannot run the features of ${entry.id}: see the log`);
    return again;
  }
}

/** Features of `n` images of raw RGB bytes, `batchSize` images per `session.run`. */
async function runFeatureBatches(
  ort: OrtModule,
  session: Ort.InferenceSession,
  entry: ModelEntry,
  batchSize: number,
  pixels: Uint8Array,
  n: number,
): Promise<Float32Array> {
  const { inputSize: size, featureSize } = entry;
  const imageBytes = size * size * 3;
  const [inputName, outputName] = [session.inputNames[0], session.outputNames[0]];
  const out = new Float32Array(n * featureSize);
  for (let start = 0; start < n; start += batchSize) {
    const count = Math.min(batchSize, n - start);
    const input = new ort.Tensor('uint8', pixels.subarray(start * imageBytes, (start + count) * imageBytes), [count, size, size, 3]);
    const result = await session.run({ [inputName]: input });
    const features = result[outputName].data as Float32Array;
    if (features.length !== count * featureSize)
      throw new Error(`the ONNX graph gave ${features.length / count} features per image, the registry says ${featureSize}`);
    out.set(features, start * featureSize);
  }
  return out;
}
