// Activations at the fine-tuning cut, computed by onnxruntime and cached like feature vectors,
// for each view of each image (the photo itself flipped: see fit/activationViews.ts for why not
// the activations flipped), decoded once.
//
// Fine-tuning trains only the layers above the cut, so the frozen bottom runs once per image and
// its output (e.g. 7×7×56 floats at block_14_expand: 11 KB an image) is all an epoch reads. The
// bottom is exported to ONNX from the same TF.js weights (onnxExport.ts `exportCutToOnnx`) and runs
// on onnxruntime, 4–8× faster than the tfjs layers on WebAssembly; its outputs go through the same
// decode loop, content-hash keys, checksummed entries and per-dataset pack as the features
// (embedding.ts `embedWithCache`, featureCache.ts), under a key naming the model's weights, the
// preprocessing, the cut and the exporter, so a second run computes no activation and a damaged
// entry is recomputed with a log line. The graph is exported only when an activation is missing.
import * as os from 'node:os';
import type * as Ort from 'onnxruntime-node';
import type { DatasetItem } from '../dataset/datasetScanner';
import type { ActivationSet, CutModel } from '../fit/fineTune';
import type { ModelEntry } from '../models/modelRegistry';
import { exportCutToOnnx, ONNX_EXPORTER_VERSION } from '../onnx/onnxExport';
import { loadOnnxRuntime, onnxGraphHash, onnxSessionOptions } from '../onnx/onnxFeatures';
import type { CacheIssues } from '../util/cacheFolder';
import type * as tfType from '@tensorflow/tfjs';
import { viewActivations } from '../fit/activationViews';
import { embedWithCache, type EmbedOptions, type EmbeddedImages, type FeatureExtractor } from './embedding';
import { FeatureCache } from './featureCache';

/** The frozen bottom of a cut on onnxruntime, in the shape the feature loop embeds with: one "vector" per image holds the activations of each of its views, back to back. */
export interface CutExtractor extends FeatureExtractor {
  /** Activation shape of one view of one image, NHWC without the batch axis. */
  rowShape: number[];
  /** The views of each image (activationViews.ts bits), the identity first. */
  views: readonly number[];
  /** Name of the layer whose output the cut takes. */
  cutSource: string;
  dispose(): void;
}

/** The layer whose output is the input of `cut.top` (the bottom's output). */
export function cutSourceOf(cut: CutModel): string {
  return cut.bottom.outputs[0].sourceLayer.name;
}

/** The bottom of `cut` on onnxruntime; the reason in words when onnxruntime cannot load. */
export async function loadCutExtractor(
  layersModel: tfType.LayersModel,
  entry: ModelEntry,
  cut: CutModel,
  opts: { threads?: number; views?: readonly number[] } = {},
): Promise<CutExtractor | string> {
  const threads = opts.threads ?? os.availableParallelism();
  const views = opts.views ?? [0];
  if (views[0] !== 0) return 'the first view must be the identity';
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') return ort;
  const rowShape = cut.bottom.outputs[0].shape.slice(1) as number[];
  if (rowShape.some((d) => typeof d !== 'number')) return `the activations at ${cut.cutLayer} have an unknown shape`;
  const cutSource = cutSourceOf(cut);
  const hash = onnxGraphHash(layersModel, entry);
  const { scale, offset } = entry.preprocessing;
  const size = entry.inputSize;
  const per = rowShape.reduce((a, b) => a * b, 1);
  let session: Promise<Ort.InferenceSession> | undefined;
  // Exported on the first miss only: a run whose activations are all cached never builds the graph.
  const open = () =>
    ort.InferenceSession.create(
      exportCutToOnnx(layersModel, cutSource, { inputSize: size, preprocessing: entry.preprocessing, metadata: { weights_sha256: hash } }),
      onnxSessionOptions(threads),
    );
  const image = size * size * 3;
  const key = [entry.id, hash.slice(0, 16), `${size}px`, `x*${scale}+${offset}`, `cut@${cutSource}`, `views=${views.join(',')}`];
  return {
    rowShape,
    views,
    cutSource,
    inputSize: size,
    featureSize: per * views.length,
    cacheKey: [...key, `onnx-v${ONNX_EXPORTER_VERSION}`].join('|'),
    async extract(pixels: Uint8Array, n: number): Promise<Float32Array> {
      const s = await (session ??= open());
      // Image-major: image 0's views, then image 1's, so each image's activations come out back to back.
      const input = views.length === 1 ? pixels.subarray(0, n * image) : viewsOf(pixels, n, size, views);
      const total = n * views.length;
      const out = new Float32Array(total * per);
      for (let start = 0; start < total; start += CUT_BATCH) {
        const count = Math.min(CUT_BATCH, total - start);
        const batch = new ort.Tensor('uint8', input.subarray(start * image, (start + count) * image), [count, size, size, 3]);
        const acts = (await s.run({ [s.inputNames[0]]: batch }))[s.outputNames[0]].data as Float32Array;
        if (acts.length !== count * per) throw new Error(`the cut graph gave ${acts.length / count} values per image, expected ${per}`);
        out.set(acts, start * per);
      }
      return out;
    },
    dispose(): void {
      void session?.then((s) => s.release()).catch(() => undefined);
    },
  };
}

/** Images per `session.run` of the cut graph. */
const CUT_BATCH = 32;

/** The views of `n` RGB images of `size`², image-major. */
function viewsOf(pixels: Uint8Array, n: number, size: number, views: readonly number[]): Uint8Array {
  const image = size * size * 3;
  const out = new Uint8Array(n * views.length * image);
  for (let i = 0; i < n; i++) {
    const src = pixels.subarray(i * image, (i + 1) * image);
    views.forEach((view, v) =>
      viewActivations(src, size, size, 3, view, out.subarray((i * views.length + v) * image, (i * views.length + v + 1) * image)),
    );
  }
  return out;
}

/** What `embedCutActivations` did, for the log and the tests. */
export interface CutActivationStats {
  hits: number;
  misses: number;
  computed: number;
  perSec: number;
  bytes: number;
}

/**
 * The cut activations of every view of every item of `embedded` (the images whose features were
 * computed; shape [n, views, h, w, c], or [n, h, w, c] for the identity alone), from
 * the activation cache where it holds them, else decoded and run through `extractor`; stored as
 * `embedded.activations`, aligned with `embedded.items` (an image that fails to decode now is
 * dropped from both).
 */
export async function embedCutActivations(
  embedded: EmbeddedImages,
  extractor: CutExtractor,
  cache: { dir: string; issues: CacheIssues; pack: { name: string; label: string } },
  opts: EmbedOptions,
): Promise<CutActivationStats> {
  const actCache = new FeatureCache(cache.dir, extractor.cacheKey, extractor.featureSize, cache.issues);
  const acts = await embedWithCache(embedded.items, extractor, actCache, cache.pack, opts);
  const byItem = new Map<DatasetItem, Float32Array>(acts.items.map((item, i) => [item, acts.vectors[i]]));
  const keep = embedded.items.map((item) => byItem.has(item));
  embedded.items = embedded.items.filter((_, i) => keep[i]);
  embedded.vectors = embedded.vectors.filter((_, i) => keep[i]);
  const per = extractor.featureSize;
  const x = new Float32Array(embedded.items.length * per);
  embedded.items.forEach((item, i) => x.set(byItem.get(item)!, i * per));
  embedded.activations = {
    x,
    shape: [embedded.items.length, ...(extractor.views.length > 1 ? [extractor.views.length] : []), ...extractor.rowShape],
    y: Int32Array.from(embedded.items.map((item) => item.classIndex)),
  } satisfies ActivationSet;
  return { hits: actCache.hits, misses: actCache.misses, computed: acts.extracted, perSec: acts.perSec, bytes: x.byteLength };
}
