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
  const inputSize = entry.inputSize;
  const inputShape = layersModel.inputs[0].shape;
  if (inputShape.length !== 4 || inputShape[3] !== 3 || (inputShape[1] !== null && inputShape[1] !== inputSize)) {
    layersModel.dispose();
    throw new Error(`Model ${entry.id}: input shape [${inputShape.join(', ')}] does not take ${inputSize}x${inputSize} RGB images`);
  }
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 32));
  const { scale, offset } = entry.preprocessing;

  let layersRoute: tfType.LayersModel | undefined;
  const featureLayersModel = (): tfType.LayersModel => {
    if (!layersRoute) {
      let out: tfType.SymbolicTensor;
      try {
        out = layersModel.getLayer(entry.featureLayer).output as tfType.SymbolicTensor;
      } catch {
        throw new Error(`Model ${entry.id}: feature layer '${entry.featureLayer}' not found`);
      }
      layersRoute = out === layersModel.outputs[0] ? layersModel : tf.model({ inputs: layersModel.inputs, outputs: out });
    }
    return layersRoute;
  };
  const runLayers = (x: tfType.Tensor4D): tfType.Tensor2D =>
    tf.tidy(() => {
      const y = featureLayersModel().predict(x, { batchSize: x.shape[0] }) as tfType.Tensor;
      return (y.rank === 4 ? tf.mean(y, [1, 2]) : y) as tfType.Tensor2D;
    });

  let route: FeatureRoute = 'layers';
  let routeNote: string | undefined;
  let graph: FoldedGraph | undefined;
  if (opts.route === 'layers') {
    routeNote = 'layers route requested';
  } else {
    const built = buildFoldedGraph(tf, layersModel, entry.featureLayer);
    if ('unsupported' in built) {
      routeNote = `fused route unavailable: ${built.unsupported}`;
    } else {
      // Check the folded graph against the model as loaded on one synthetic image before trusting it.
      const diff = tf.tidy(() => {
        const x = syntheticInput(tf, inputSize, scale, offset);
        return tf.max(tf.abs(tf.sub(built.run(x), runLayers(x)))).dataSync()[0];
      });
      if (diff <= 1e-3) {
        graph = built;
        route = 'fused';
      } else {
        built.dispose();
        routeNote = `fused route disagrees with the layers model (max difference ${diff.toExponential(2)}); using the layers model`;
      }
    }
    if (opts.route === 'fused' && route !== 'fused') {
      layersModel.dispose();
      throw new Error(`Model ${entry.id}: ${routeNote}`);
    }
  }

  const featureSize = entry.featureSize;
  const probe = tf.tidy(
    () =>
      (graph ? graph.run(syntheticInput(tf, inputSize, scale, offset)) : runLayers(syntheticInput(tf, inputSize, scale, offset))).shape[1],
  );
  if (probe !== featureSize) {
    graph?.dispose();
    layersModel.dispose();
    throw new Error(`Model ${entry.id}: feature layer '${entry.featureLayer}' gives ${probe} values, the registry says ${featureSize}`);
  }

  const cacheKey = [entry.id, weightsDigest, `${inputSize}px`, `x*${scale}+${offset}`, entry.featureLayer, ROUTE_VERSION[route]].join('|');
  const pixelsPerImage = inputSize * inputSize * 3;

  return {
    entry,
    layersModel,
    featureSize,
    inputSize,
    cacheKey,
    route,
    routeNote,
    batchSize,
    async extract(pixels, n) {
      if (pixels.length !== n * pixelsPerImage) {
        throw new Error(`extract: expected ${n} images of ${inputSize}x${inputSize}x3 bytes (${n * pixelsPerImage}), got ${pixels.length}`);
      }
      const out = new Float32Array(n * featureSize);
      for (let start = 0; start < n; start += batchSize) {
        const count = Math.min(batchSize, n - start);
        const input = new Float32Array(count * pixelsPerImage);
        const base = start * pixelsPerImage;
        for (let i = 0; i < input.length; i++) input[i] = pixels[base + i] * scale + offset;
        const features = tf.tidy(() => {
          const x = tf.tensor4d(input, [count, inputSize, inputSize, 3]);
          return graph ? graph.run(x) : runLayers(x);
        });
        try {
          out.set(await features.data(), start * featureSize);
        } finally {
          features.dispose();
        }
      }
      return out;
    },
    dispose() {
      graph?.dispose();
      // The truncated model shares the layers (and weights) of the full one.
      layersRoute = undefined;
      layersModel.dispose();
    },
  };
}

/** A deterministic smooth-plus-noise image, preprocessed, for self-checks. */
function syntheticInput(tf: Tf, size: number, scale: number, offset: number): tfType.Tensor4D {
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
