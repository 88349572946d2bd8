// Fine-tuning's result in the cache folder, so a warm rerun with nothing changed does not train the
// top of the base again (5 epochs on flowers: ~60 s, against ~5 s for the rest of a warm run).
// Like the recipe search's result (recipeCache.ts) it is a pure function of its key: the feature
// key and the cut (which activations), the training and validation images in order with their
// classes, every training option, where the steps run, and the weights fine-tuning starts from
// (the head just trained and the top of the base) — so any change upstream, a different head
// included, misses. A run stopped by a cancel or a time limit stores nothing: where it stopped
// depends on the clock.
// The file holds the loop's result (epochs, history, best epoch), the trained weights and the
// kept top's features of the training and validation images, which evaluation, calibration and
// unknown detection read; it carries a checksum over all of it, and one that fails it is
// reported, removed and trained again.
import { createHash } from 'node:crypto';
import type { TrainOptions } from '../../shared/types';
import type { DatasetItem } from '../dataset/datasetScanner';
import type { LoopResult } from '../fit/trainingLoop';
import { readArrayArtifact, writeArrayArtifact } from '../util/arrayArtifact';
import type { CacheFolder } from '../util/cacheFolder';

const FORMAT = 1;

export interface FineTuneKey {
  featureKey: string;
  cutLayer: string;
  /** Which views of each image the cut activations hold. */
  views: string;
  train: readonly DatasetItem[];
  val: readonly DatasetItem[];
  options: TrainOptions;
  runtime: string;
  /** The weights fine-tuning starts from (top of the base, then the head), in their order. */
  start: readonly Float32Array[];
}

/** What a fine-tuning produced. `weights` in the order of `FineTuneKey.start`; `features` only when it was kept. */
export interface FineTuneResult {
  result: LoopResult;
  weights: Float32Array[];
  features?: { train: Float32Array; val: Float32Array; featureSize: number };
}

/** The hash that names a fine-tuning's result. */
export function fineTuneKey(k: FineTuneKey): string {
  // Where and under what name the run writes changes nothing that is trained.
  const options = { ...k.options, timeLimitMinutes: 0 };
  const h = createHash('sha256').update(
    JSON.stringify({ format: FORMAT, featureKey: k.featureKey, cut: k.cutLayer, views: k.views, options, runtime: k.runtime }),
  );
  for (const [side, items] of [
    ['train', k.train],
    ['val', k.val],
  ] as const) {
    h.update(`${side}:${items.length}\n`);
    for (const item of items) h.update(`${item.sha256}:${item.classIndex}\n`);
  }
  for (const w of k.start) h.update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
  return h.digest('hex');
}

const KIND = 'fine-tune';

interface Header {
  result: LoopResult;
  weights: number;
  featureSize?: number;
}

/** The cached result of `key` whose weights have the shapes of `start`, or undefined (absent, or damaged: reported and removed). */
export async function readFineTune(folder: CacheFolder, key: string, start: readonly Float32Array[]): Promise<FineTuneResult | undefined> {
  const found = await readArrayArtifact<Header>(
    folder,
    KIND,
    key,
    { what: 'fine-tuning result', then: 'the top of the base is trained again' },
    ({ header, arrays }) =>
      header.weights === start.length &&
      arrays.length === start.length + (header.featureSize ? 2 : 0) &&
      arrays.every((a) => a instanceof Float32Array) &&
      start.every((w, i) => arrays[i].length === w.length),
  );
  if (!found) return undefined;
  const arrays = found.arrays as Float32Array[];
  const { result, weights, featureSize } = found.header;
  const features = featureSize ? { train: arrays[weights], val: arrays[weights + 1], featureSize } : undefined;
  return { result, weights: arrays.slice(0, weights), features };
}

/** Stores a fine-tuning's result under `key` (atomically; a failure only costs the next run the training). */
export async function writeFineTune(folder: CacheFolder, key: string, r: FineTuneResult): Promise<void> {
  const header: Header = { result: r.result, weights: r.weights.length, featureSize: r.features?.featureSize };
  const arrays = r.features ? [...r.weights, r.features.train, r.features.val] : r.weights;
  await writeArrayArtifact(folder, KIND, key, { header, arrays });
}
