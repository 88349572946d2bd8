// The frozen base network: loaded from files on disk (no `file://`, which needs tfjs-node), its
// pinned checksums verified, and wrapped in a fast feature extractor. Extraction runs the folded
// graph (BatchNorm folded, activations fused, see foldedGraph.ts) when the topology allows and
// the layers model truncated at the feature layer otherwise; the route is part of the cache key.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';
import { buildFoldedGraph, type FoldedGraph } from './foldedGraph';
import type { ModelEntry } from './modelRegistry';

export type FeatureRoute = 'fused' | 'layers';

export interface BaseModel {
  entry: ModelEntry;
  /** The Keras-layer model as loaded, used for export and fine-tuning. */
  layersModel: tfType.LayersModel;
  featureSize: number;
  inputSize: number;
  /** Stable key of model id + weights + preprocessing + extraction route version, for the feature cache. */
  cacheKey: string;
  /** Which implementation `extract` runs, and why not the fused one when it is `layers`. */
  route: FeatureRoute;
  routeNote?: string;
  /** Images per inference batch inside `extract`. */
  batchSize: number;
  /** `n * featureSize` features from raw RGB pixels 0..255, `n * inputSize * inputSize * 3` bytes. */
  extract(pixels: Uint8Array, n: number): Promise<Float32Array>;
  dispose(): void;
}

export interface LoadBaseModelOptions {
  /** Folder holding the extension's package.json (for embedded models); found from this file when omitted. */
  extensionRoot?: string;
  /** Folder holding model.json and its shards; overrides the entry's source (downloaded and custom models). */
  modelDir?: string;
  /** `auto` (default): fused when the topology allows; `layers` forces the model as loaded (the naive route). */
  route?: 'auto' | FeatureRoute;
  /** Images per inference batch (default 32). */
  batchSize?: number;
  /** Builds the fused graph (default `buildFoldedGraph`); a test hands over one that fails its self-check. */
  buildGraph?: typeof buildFoldedGraph;
}

// Bump when the extraction code changes what it computes, so old cache entries are not reused.
const ROUTE_VERSION: Record<FeatureRoute, string> = { fused: 'fused-v1', layers: 'layers-v1' };

interface ModelFiles {
  modelTopology: object;
  weightSpecs: tfType.io.WeightsManifestEntry[];
  weightData: ArrayBuffer;
}

/** Reads model.json and every weight shard it lists from `dir`. */
function readModelFiles(dir: string): ModelFiles {
  const jsonPath = path.join(dir, 'model.json');
  let json: { modelTopology?: object; weightsManifest?: tfType.io.WeightsManifestConfig };
  try {
    json = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `No model.json in ${dir}` : `Cannot read ${jsonPath}: ${e.message}`, { cause: err });
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new Error(`${jsonPath} is not a TensorFlow.js LayersModel (modelTopology or weightsManifest missing)`);
  }
  const root = path.resolve(dir);
  const weightSpecs: tfType.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const rel of group.paths) {
      const file = path.resolve(root, rel);
      // A downloaded model.json must not make us read files outside its folder.
      if (path.relative(root, file).startsWith('..') || path.isAbsolute(path.relative(root, file))) {
        throw new Error(`${jsonPath} lists a weight file outside its folder: ${rel}`);
      }
      try {
        buffers.push(fs.readFileSync(file));
      } catch {
        throw new Error(`Weight file ${rel} listed in ${jsonPath} is missing or unreadable`);
      }
    }
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  return { modelTopology: json.modelTopology, weightSpecs, weightData };
}

/** Loads a TF.js LayersModel from a folder by reading model.json and its shards (no `file://`). */
export async function loadLayersModelFromDir(tf: Tf, dir: string): Promise<tfType.LayersModel> {
  const files = readModelFiles(dir);
  return tf.loadLayersModel(tf.io.fromMemory(files));
}

/** Walks up from this file to the folder whose package.json is named image-trainer. */
export function findExtensionRoot(start: string = __dirname): string {
  for (let dir = path.resolve(start); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'image-trainer') return dir;
      } catch {
        // An unreadable package.json on the way up is not ours; keep walking.
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`Cannot find the image-trainer package folder above ${start}`);
  }
}

/** The folder holding `entry`'s model.json. */
export function modelDirOf(entry: ModelEntry, opts: LoadBaseModelOptions = {}): string {
  if (opts.modelDir) return opts.modelDir;
  switch (entry.source.kind) {
    case 'embedded':
      return path.join(opts.extensionRoot ?? findExtensionRoot(), entry.source.folder);
    case 'folder':
      return entry.source.path;
    case 'url':
      throw new Error(`Model ${entry.id} is downloaded from ${entry.source.url}: pass the folder it was downloaded to`);
  }
}

/** Checks the sizes and sha256 the registry pins for files in `dir`; throws naming the file on a mismatch. */
export function verifyModelFiles(entry: ModelEntry, dir: string): void {
  for (const f of entry.files ?? []) {
    const file = path.join(dir, f.path);
    let data: Buffer;
    try {
      data = fs.readFileSync(file);
    } catch {
      throw new Error(`Model ${entry.id}: ${f.path} is missing from ${dir}`);
    }
    if (f.bytes !== undefined && data.length !== f.bytes) {
      throw new Error(
        `Model ${entry.id}: ${f.path} has ${data.length} bytes, expected ${f.bytes} — the file is damaged; reinstall or re-download the model`,
      );
    }
    if (f.sha256) {
      const actual = createHash('sha256').update(data).digest('hex');
      if (actual !== f.sha256.toLowerCase()) {
        throw new Error(
          `Model ${entry.id}: sha256 mismatch for ${f.path} (got ${actual}, expected ${f.sha256}) — the file is damaged or not the expected model; reinstall or re-download it`,
        );
      }
    }
  }
}

/** Loads the base model `entry` (verified), ready to turn raw pixels into feature vectors. */
export async function loadBaseModel(tf: Tf, entry: ModelEntry, opts: LoadBaseModelOptions = {}): Promise<BaseModel> {
  const dir = modelDirOf(entry, opts);
  verifyModelFiles(entry, dir);
  const files = readModelFiles(dir);
  const weightsDigest = createHash('sha256').update(new Uint8Array(files.weightData)).digest('hex').slice(0, 16);
  const layersModel = await tf.loadLayersModel(tf.io.fromMemory(files));
  const layers = new LayersFeatures(tf, layersModel, entry);
  let graph: FoldedGraph | undefined;
  try {
    checkInputShape(layersModel, entry);
    const choice = chooseFeatureRoute(tf, layers, entry, opts.route ?? 'auto', opts.buildGraph ?? buildFoldedGraph);
    graph = choice.graph;
    const run = graph ? graph.run.bind(graph) : layers.run.bind(layers);
    checkFeatureSize(tf, run, entry);
    const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 32));
    return {
      entry,
      layersModel,
      featureSize: entry.featureSize,
      inputSize: entry.inputSize,
      cacheKey: featureCacheKey(entry, weightsDigest, choice.route),
      route: choice.route,
      routeNote: choice.routeNote,
      batchSize,
      extract: batchedExtractor(tf, entry, batchSize, run),
      dispose() {
        graph?.dispose();
        layers.dispose();
      },
    };
  } catch (err) {
    graph?.dispose();
    layers.dispose();
    throw err;
  }
}

/** The model as loaded, truncated at the feature layer and pooled to vectors: the `layers` route, and the reference the fused one is checked against. */
class LayersFeatures {
  private truncated: tfType.LayersModel | undefined;

  constructor(
    private readonly tf: Tf,
    readonly model: tfType.LayersModel,
    private readonly entry: ModelEntry,
  ) {}

  /** Feature vectors `[batch, features]` for preprocessed input; the caller owns the result. */
  run(x: tfType.Tensor4D): tfType.Tensor2D {
    return this.tf.tidy(() => {
      const y = this.featureModel().predict(x, { batchSize: x.shape[0] }) as tfType.Tensor;
      return (y.rank === 4 ? this.tf.mean(y, [1, 2]) : y) as tfType.Tensor2D;
    });
  }

  dispose(): void {
    // The truncated model shares the layers (and weights) of the full one.
    this.truncated = undefined;
    this.model.dispose();
  }

  /** Built on first use: the fused route usually makes it unnecessary. */
  private featureModel(): tfType.LayersModel {
    if (!this.truncated) {
      const { model, entry } = this;
      let out: tfType.SymbolicTensor;
      try {
        out = model.getLayer(entry.featureLayer).output as tfType.SymbolicTensor;
      } catch {
        throw new Error(`Model ${entry.id}: feature layer '${entry.featureLayer}' not found`);
      }
      this.truncated = out === model.outputs[0] ? model : this.tf.model({ inputs: model.inputs, outputs: out });
    }
    return this.truncated;
  }
}

/** Throws unless the model takes `entry.inputSize`-pixel RGB images. */
function checkInputShape(layersModel: tfType.LayersModel, entry: ModelEntry): void {
  const inputSize = entry.inputSize;
  const inputShape = layersModel.inputs[0].shape;
  if (inputShape.length !== 4 || inputShape[3] !== 3 || (inputShape[1] !== null && inputShape[1] !== inputSize)) {
    throw new Error(`Model ${entry.id}: input shape [${inputShape.join(', ')}] does not take ${inputSize}x${inputSize} RGB images`);
  }
}

/**
 * The fused route when its graph builds and agrees with the layers model on a synthetic image,
 * else the layers route with the reason; throws when `fused` was required and is not possible.
 */
function chooseFeatureRoute(
  tf: Tf,
  layers: LayersFeatures,
  entry: ModelEntry,
  wanted: 'auto' | FeatureRoute,
  buildGraph: typeof buildFoldedGraph,
): { route: FeatureRoute; routeNote?: string; graph?: FoldedGraph } {
  if (wanted === 'layers') return { route: 'layers', routeNote: 'layers route requested' };
  let routeNote: string;
  const built = buildGraph(tf, layers.model, entry.featureLayer);
  if ('unsupported' in built) {
    routeNote = `fused route unavailable: ${built.unsupported}`;
  } else {
    const problem = foldedGraphProblem(tf, built, layers, entry);
    if (problem === undefined) return { route: 'fused', graph: built };
    built.dispose();
    routeNote = `${problem}; using the layers model`;
  }
  if (wanted === 'fused') throw new Error(`Model ${entry.id}: ${routeNote}`);
  return { route: 'layers', routeNote };
}

/**
 * Why the folded graph cannot be trusted, or undefined: it is run against the model as loaded on
 * one synthetic image, and a graph that cannot even run (a topology the builder misread) fails too.
 */
function foldedGraphProblem(tf: Tf, graph: FoldedGraph, layers: LayersFeatures, entry: ModelEntry): string | undefined {
  let diff: number;
  try {
    diff = tf.tidy(() => {
      const x = syntheticInput(tf, entry);
      return tf.max(tf.abs(tf.sub(graph.run(x), layers.run(x)))).dataSync()[0];
    });
  } catch (err) {
    return `fused route failed its self-check (${err instanceof Error ? err.message : String(err)})`;
  }
  // `!(diff <= …)` so that a NaN difference fails too.
  if (!(diff <= 1e-3)) return `fused route disagrees with the layers model (max difference ${diff.toExponential(2)})`;
  return undefined;
}

/** Throws unless `run` gives as many features per image as the registry says. */
function checkFeatureSize(tf: Tf, run: (x: tfType.Tensor4D) => tfType.Tensor2D, entry: ModelEntry): void {
  const probe = tf.tidy(() => run(syntheticInput(tf, entry)).shape[1]);
  if (probe !== entry.featureSize) {
    throw new Error(
      `Model ${entry.id}: feature layer '${entry.featureLayer}' gives ${probe} values, the registry says ${entry.featureSize}`,
    );
  }
}

/** Everything the features depend on, so a cached vector is reused only when it would come out the same. */
function featureCacheKey(entry: ModelEntry, weightsDigest: string, route: FeatureRoute): string {
  const { scale, offset } = entry.preprocessing;
  return [entry.id, weightsDigest, `${entry.inputSize}px`, `x*${scale}+${offset}`, entry.featureLayer, ROUTE_VERSION[route]].join('|');
}

/** `BaseModel.extract` over `run`: preprocesses raw pixels and runs them `batchSize` images at a time. */
function batchedExtractor(
  tf: Tf,
  entry: ModelEntry,
  batchSize: number,
  run: (x: tfType.Tensor4D) => tfType.Tensor2D,
): BaseModel['extract'] {
  const { inputSize, featureSize } = entry;
  const { scale, offset } = entry.preprocessing;
  const pixelsPerImage = inputSize * inputSize * 3;
  return async (pixels, n) => {
    if (pixels.length !== n * pixelsPerImage) {
      throw new Error(`extract: expected ${n} images of ${inputSize}x${inputSize}x3 bytes (${n * pixelsPerImage}), got ${pixels.length}`);
    }
    const out = new Float32Array(n * featureSize);
    for (let start = 0; start < n; start += batchSize) {
      const count = Math.min(batchSize, n - start);
      const input = new Float32Array(count * pixelsPerImage);
      const base = start * pixelsPerImage;
      for (let i = 0; i < input.length; i++) input[i] = pixels[base + i] * scale + offset;
      const features = tf.tidy(() => run(tf.tensor4d(input, [count, inputSize, inputSize, 3])));
      try {
        out.set(await features.data(), start * featureSize);
      } finally {
        features.dispose();
      }
    }
    return out;
  };
}

/** A deterministic smooth-plus-noise image, preprocessed as `entry` says, for self-checks. */
function syntheticInput(tf: Tf, entry: ModelEntry): tfType.Tensor4D {
  const size = entry.inputSize;
  const { scale, offset } = entry.preprocessing;
  const data = new Float32Array(size * size * 3);
  let seed = 12345;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        const v = 127 + 100 * Math.sin((x + 7 * c) / 9) * Math.cos(y / 13) + ((seed >>> 16) % 40) - 20;
        data[(y * size + x) * 3 + c] = Math.min(255, Math.max(0, v)) * scale + offset;
      }
    }
  }
  return tf.tensor4d(data, [1, size, size, 3]);
}
