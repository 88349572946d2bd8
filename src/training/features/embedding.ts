// Images → feature vectors. Two routes share one decode loop: the usual one reads the feature
// cache first and embeds only the misses through the frozen base (on onnxruntime or tfjs), each
// distinct content once, however many copies of it the dataset holds; the fine-tuning one runs
// every image through the base cut in two, keeping the activations at the cut (which fine-tuning
// trains on) as well as the features, and caches nothing.
//
// A vector is filed under the hash of the bytes it was computed from (the decoder hashes what it
// decodes), never under the scan's hash alone: a file changed between the scan and its decode is
// trained on as it is now, stays on the side of the split the scan gave it, and is reported.
import type * as tfType from '@tensorflow/tfjs';
import type { Progress, SkippedFile } from '../../shared/types';
import type { DatasetItem } from '../dataset/datasetScanner';
import { decodeBatches, DecodeError, type DecodedBatch } from '../dataset/imageDecoder';
import type { PixelStats } from '../dataset/pixelStats';
import type { ActivationSet, CutModel } from '../fit/fineTune';
import type { FeatureSet } from '../fit/head';
import type { BaseModel } from '../models/baseModel';
import { RateMeter } from '../run/progressThrottle';
import { RunCancelled, throwIfCancelled } from '../util/errors';
import type { Tf } from '../util/tf';
import { applyView, type ViewName } from '../../shared/views';
import type { FeatureCache } from './featureCache';

/** What the feature stage needs of a frozen base, on tfjs or onnxruntime. */
export type FeatureExtractor = Pick<BaseModel, 'extract' | 'cacheKey' | 'featureSize' | 'inputSize'>;

/** Images decoded per inference batch. */
const EMBED_BATCH = 32;

export interface EmbedOptions {
  maxPixels: number;
  signal?: AbortSignal;
  onProgress?(p: Omit<Progress, 'stage'>): void;
  /** Told the pixel statistics of every image decoded, under the hash of its bytes (the doctor's weak-image check). */
  pixelStats?: { set(sha256: string, stats: PixelStats): void };
}

/** The images that could be embedded, in input order, with their vectors; those that could not, as skips. */
export interface EmbeddedImages {
  items: DatasetItem[];
  /** One vector per item of `items` (its first view's); emptied by `releaseVectors` once the feature sets are built. */
  vectors: Float32Array[];
  /** Per item of `items`, its vector of each view embedded (in the order of the caches given); emptied with `vectors`. */
  viewVectors: Float32Array[][];
  failed: SkippedFile[];
  /** Images decoded and embedded per second (0 when every vector came from the cache). */
  perSec: number;
  /** Images decoded and run through the base (identical files count once). */
  extracted: number;
  /** Images whose bytes at decode time differ from the ones the scan hashed: trained on as they are now. */
  changed: DatasetItem[];
  /** Activations at the cut for every item of `items`, in the same order (fine-tuning only). */
  activations?: ActivationSet;
}

/** One view's cache: where its vectors live (`viewCacheKey`), and the view. */
export interface ViewCache {
  view: ViewName;
  cache: FeatureCache;
}

/**
 * Features for every item and every view of `caches` (the first is the one `vectors` holds): from
 * the cache where possible, else decoded once and embedded in batches, each missing view of each
 * distinct content once, however many copies of it the dataset holds; leaves a pack of the dataset's
 * vectors per view.
 */
export async function embedWithCache(
  items: DatasetItem[],
  extractor: FeatureExtractor,
  caches: FeatureCache | readonly ViewCache[],
  /** The dataset's pack in the feature cache: its name (`datasetFolderKey`) and the dataset's name for the log. */
  pack: { name: string; label: string },
  opts: EmbedOptions,
): Promise<EmbeddedImages> {
  const views: readonly ViewCache[] = Array.isArray(caches) ? caches : [{ view: 'identity', cache: caches as FeatureCache }];
  const copies = new Map<string, DatasetItem[]>();
  for (const item of items) {
    const group = copies.get(item.sha256);
    if (group) group.push(item);
    else copies.set(item.sha256, [item]);
  }
  const shas = [...copies.keys()];
  const shaRow = new Map(shas.map((sha, i) => [sha, i]));
  const hits = await Promise.all(views.map(({ cache }) => cache.getMany(shas, { pack: pack.name, label: pack.label })));
  // Per item, its vector of each view; per view, the pack's vectors under the hash of the bytes they came from.
  const found = new Map<DatasetItem, (Float32Array | undefined)[]>();
  const packed = views.map(() => new Map<string, Float32Array>());
  const misses: DatasetItem[] = [];
  shas.forEach((sha, i) => {
    const vectors = views.map((_, v) => hits[v][i]);
    vectors.forEach((hit, v) => hit && packed[v].set(sha, hit));
    if (vectors.some((hit) => !hit)) misses.push(copies.get(sha)![0]);
    else for (const item of copies.get(sha)!) found.set(item, vectors);
  });
  const changed: DatasetItem[] = [];
  let extracted = 0;
  const embed = (shareWithCopies: boolean) => async (batch: DecodedBatch<DatasetItem>) => {
    const perView = await embedViewsOfBatch(batch, extractor, views, hits, shaRow);
    extracted += batch.items.length;
    for (let i = 0; i < batch.items.length; i++) {
      const item = batch.items[i];
      const decodedSha = batch.sha256s[i];
      const vectors = perView[i];
      opts.pixelStats?.set(decodedSha, batch.stats[i]);
      for (let v = 0; v < views.length; v++) {
        packed[v].set(decodedSha, vectors[v]);
        if (vectors[v] !== hits[v][shaRow.get(item.sha256)!]) await views[v].cache.put(decodedSha, vectors[v]);
      }
      if (decodedSha !== item.sha256) changed.push(item);
      for (const copy of shareWithCopies && decodedSha === item.sha256 ? copies.get(item.sha256)! : [item]) found.set(copy, vectors);
    }
  };
  const first = await forEachDecodedBatch(misses, extractor.inputSize, opts, embed(true));
  // Where the one decoded copy failed or had changed, it says nothing certain of the others: each is decoded itself.
  const rest = misses.filter((item) => !found.has(item) || changed.includes(item)).flatMap((item) => copies.get(item.sha256)!.slice(1));
  const second = rest.length ? await forEachDecodedBatch(rest, extractor.inputSize, opts, embed(false)) : { failed: [], perSec: 0 };
  const embedded = collect(items, found, [...first.failed, ...second.failed], first.perSec);
  embedded.extracted = extracted;
  embedded.changed = changed;
  // Leave a pack of this dataset's vectors for the next run, unless the pack already was exactly that.
  for (let v = 0; v < views.length; v++) {
    if (views[v].cache.packServedAll(packed[v].size)) continue;
    await views[v].cache.writePack(
      pack.name,
      [...packed[v]].map(([sha256, vec]) => ({ sha256, v: vec })),
    );
  }
  return embedded;
}

/**
 * Each image's vector of every view: the cached one where the scan's content had it (and the decode
 * read that content), else the base run on the view's pixels. Each view's missing images go through
 * the base as one batch; the decode happened once for all views.
 */
async function embedViewsOfBatch(
  batch: DecodedBatch<DatasetItem>,
  extractor: FeatureExtractor,
  views: readonly ViewCache[],
  hits: (Float32Array | undefined)[][],
  shaRow: Map<string, number>,
): Promise<Float32Array[][]> {
  const n = batch.items.length;
  const size = extractor.inputSize;
  const plane = size * size * 3;
  const f = extractor.featureSize;
  const rowOf = batch.items.map((item) => shaRow.get(item.sha256)!);
  const out: Float32Array[][] = batch.items.map(() => []);
  for (let v = 0; v < views.length; v++) {
    const need: number[] = [];
    for (let i = 0; i < n; i++) {
      const hit = batch.sha256s[i] === batch.items[i].sha256 ? hits[v][rowOf[i]] : undefined;
      if (hit) out[i][v] = hit;
      else need.push(i);
    }
    if (need.length === 0) continue;
    const pixels = new Uint8Array(need.length * plane);
    need.forEach((i, k) => pixels.set(batch.pixels.subarray(i * plane, (i + 1) * plane), k * plane));
    const input = views[v].view === 'identity' ? pixels : applyView(pixels, need.length, size, views[v].view);
    const vectors = await extractor.extract(input, need.length);
    need.forEach((i, k) => (out[i][v] = vectors.slice(k * f, (k + 1) * f)));
  }
  return out;
}

/** Activations at the cut and features of every item, through `cut.bottom` then `cut.top` (nothing cached: fine-tuning changes `top`). */
export async function embedThroughCut(
  tf: Tf,
  base: BaseModel,
  cut: CutModel,
  items: DatasetItem[],
  opts: EmbedOptions,
): Promise<EmbeddedImages> {
  const found = new Map<DatasetItem, Float32Array>();
  const acts = new Map<DatasetItem, Float32Array>();
  let actShape: number[] = [];
  const { failed, perSec } = await forEachDecodedBatch(items, base.inputSize, opts, async (batch) => {
    const n = batch.items.length;
    const [act, feat] = tf.tidy(() => {
      const size = base.inputSize;
      const x = tf.tensor4d(batch.pixels, [n, size, size, 3], 'float32');
      const scaled = x.mul(base.entry.preprocessing.scale).add(base.entry.preprocessing.offset);
      const a = cut.bottom.predict(scaled) as tfType.Tensor;
      return [a, cut.top.predict(a) as tfType.Tensor] as const;
    });
    try {
      const actData = (await act.data()) as Float32Array;
      const vectors = (await feat.data()) as Float32Array;
      actShape = act.shape.slice(1);
      const per = actData.length / n;
      const fs = base.featureSize;
      batch.items.forEach((item, i) => {
        acts.set(item, actData.slice(i * per, (i + 1) * per));
        found.set(item, vectors.slice(i * fs, (i + 1) * fs));
      });
    } finally {
      act.dispose();
      feat.dispose();
    }
  });
  const embedded = collect(items, found, failed, perSec);
  embedded.extracted = embedded.items.length + failed.length;
  const per = actShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(embedded.items.length * per);
  embedded.items.forEach((item, i) => x.set(acts.get(item)!, i * per));
  embedded.activations = {
    x,
    shape: [embedded.items.length, ...actShape],
    y: Int32Array.from(embedded.items.map((item) => item.classIndex)),
  };
  return embedded;
}

/**
 * Decodes `items` in batches and hands each batch's decoded images to `embed`; images that fail to
 * decode become skips. Reports progress with rate and ETA; an aborted signal ends it with RunCancelled.
 */
async function forEachDecodedBatch(
  items: DatasetItem[],
  size: number,
  opts: EmbedOptions,
  embed: (batch: DecodedBatch<DatasetItem>) => Promise<void>,
): Promise<{ failed: SkippedFile[]; perSec: number }> {
  const failed: SkippedFile[] = [];
  const meter = new RateMeter(items.length);
  let done = 0;
  opts.onProgress?.({ done: 0, total: items.length });
  try {
    for await (const batch of decodeBatches(items, { size, batchSize: EMBED_BATCH, maxPixels: opts.maxPixels, signal: opts.signal })) {
      throwIfCancelled(opts.signal);
      for (const f of batch.failed) {
        failed.push({ path: f.item.rel, reason: f.error instanceof DecodeError ? f.error.reason : 'corrupt', detail: f.error.message });
      }
      if (batch.items.length > 0) await embed(batch);
      done += batch.items.length + batch.failed.length;
      const { perSec, etaSec } = meter.measure(done);
      opts.onProgress?.({ done, total: items.length, imagesPerSec: perSec, etaSec });
    }
  } catch (err) {
    if (opts.signal?.aborted) throw new RunCancelled();
    throw err;
  }
  return { failed, perSec: items.length ? meter.measure(done).perSec : 0 };
}

/** The embedded items in input order (those that failed left out). */
function collect(
  items: DatasetItem[],
  found: Map<DatasetItem, Float32Array | (Float32Array | undefined)[]>,
  failed: SkippedFile[],
  perSec: number,
): EmbeddedImages {
  const kept = items.filter((item) => found.has(item));
  const all = kept.map((item) => found.get(item)!);
  const viewVectors = all.map((v) => (v instanceof Float32Array ? [v] : (v as Float32Array[])));
  return { items: kept, vectors: viewVectors.map((v) => v[0]), viewVectors, failed, perSec, extracted: 0, changed: [] };
}

/** The rows of `embedded` in `split` (all of them when undefined), as one feature matrix of view number `view`. */
export function featureSetOf(embedded: EmbeddedImages, split: 'train' | 'val' | undefined, featureSize: number, view = 0): FeatureSet {
  const rows = split ? rowsOf(embedded, split) : embedded.items.map((_, i) => i);
  const x = new Float32Array(rows.length * featureSize);
  rows.forEach((r, i) => x.set(embedded.viewVectors[r][view], i * featureSize));
  return { x, y: Int32Array.from(rows.map((r) => embedded.items[r].classIndex)), n: rows.length, featureSize };
}

/** The cut-point activations of the rows of `embedded` in `split` (fine-tuning's training and validation sets): of the first view only, unless `allViews`. */
export function activationsOf(embedded: EmbeddedImages, split: 'train' | 'val', allViews = false): ActivationSet {
  const acts = embedded.activations;
  if (!acts) throw new Error('No activations: the images were not embedded through a cut.');
  const rows = rowsOf(embedded, split);
  const stored = acts.shape.slice(1).reduce((a, b) => a * b, 1);
  // Rows of several views are [views, h, w, c]: the first view is the image as it is.
  const rowShape = acts.shape.length === 5 && !allViews ? acts.shape.slice(2) : acts.shape.slice(1);
  const per = rowShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(rows.length * per);
  rows.forEach((src, j) => x.set(acts.x.subarray(src * stored, src * stored + per), j * per));
  return { x, shape: [rows.length, ...rowShape], y: Int32Array.from(rows.map((r) => embedded.items[r].classIndex)) };
}

/** The images of `split`, in the order of their rows in `activationsOf` and the feature sets. */
export function itemsOf(embedded: EmbeddedImages, split: 'train' | 'val'): DatasetItem[] {
  return embedded.items.filter((item) => item.split === split);
}

/** Indices into `embedded.items` of the images in `split`. */
function rowsOf(embedded: EmbeddedImages, split: 'train' | 'val'): number[] {
  const rows: number[] = [];
  embedded.items.forEach((item, i) => item.split === split && rows.push(i));
  return rows;
}

/** Lets the per-image vectors go once the feature matrices hold the only copy the head needs, so memory grows by one matrix, not two. */
export function releaseVectors(embedded: EmbeddedImages): void {
  embedded.vectors = [];
  embedded.viewVectors = [];
}
