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
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { TrainOptions } from '../../shared/types';
import type { DatasetItem } from '../dataset/datasetScanner';
import type { LoopResult } from '../fit/trainingLoop';
import { writeFileAtomic } from '../util/atomicWrite';
import type { CacheFolder } from '../util/cacheFolder';
import { checksum64, seedOf } from '../util/checksum';

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

interface Header {
  key: string;
  result: LoopResult;
  weights: number[];
  features?: { train: number; val: number; featureSize: number };
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

const fileOf = (dir: string, key: string) => path.join(dir, 'fine-tune', `${key.slice(0, 32)}.bin`);

/** The arrays a file stores after its header, in order. */
function arraysOf(r: FineTuneResult): Float32Array[] {
  return r.features ? [...r.weights, r.features.train, r.features.val] : r.weights;
}

/** checksum, newline, header JSON, newline, then the float32 arrays back to back. */
function encode(key: string, r: FineTuneResult): Uint8Array {
  const header: Header = {
    key,
    result: r.result,
    weights: r.weights.map((w) => w.length),
    features: r.features && { train: r.features.train.length, val: r.features.val.length, featureSize: r.features.featureSize },
  };
  const arrays = arraysOf(r);
  const headerBytes = Buffer.from(`${JSON.stringify(header)}\n`, 'utf8');
  const body = Buffer.alloc(headerBytes.length + arrays.reduce((a, w) => a + w.byteLength, 0));
  headerBytes.copy(body, 0);
  let at = headerBytes.length;
  for (const w of arrays) {
    body.set(new Uint8Array(w.buffer, w.byteOffset, w.byteLength), at);
    at += w.byteLength;
  }
  return Buffer.concat([Buffer.from(`${checksum64(body, seedOf(key))}\n`, 'utf8'), body]);
}

function decode(key: string, bytes: Buffer): FineTuneResult | undefined {
  if (bytes.length < 17 || bytes[16] !== 0x0a) return undefined;
  const body = bytes.subarray(17);
  if (checksum64(body, seedOf(key)) !== bytes.subarray(0, 16).toString('utf8')) return undefined;
  const end = body.indexOf(0x0a);
  const header = JSON.parse(body.subarray(0, end).toString('utf8')) as Header;
  if (header.key !== key) return undefined;
  const f = header.features;
  const lengths = [...header.weights, ...(f ? [f.train, f.val] : [])];
  // A copy: its own buffer, so the float32 views are aligned.
  const copy = new Uint8Array(body.subarray(end + 1));
  if (copy.length !== lengths.reduce((a, n) => a + 4 * n, 0)) return undefined;
  let at = 0;
  const arrays = lengths.map((n) => {
    const a = new Float32Array(copy.buffer, copy.byteOffset + at, n);
    at += 4 * n;
    return a;
  });
  const weights = arrays.slice(0, header.weights.length);
  const features = f && { train: arrays[header.weights.length], val: arrays[header.weights.length + 1], featureSize: f.featureSize };
  return { result: header.result, weights, features };
}

/** The cached result of `key` whose weights have the shapes of `start`, or undefined (absent, or damaged: reported and removed). */
export async function readFineTune(folder: CacheFolder, key: string, start: readonly Float32Array[]): Promise<FineTuneResult | undefined> {
  if (!folder.dir) return undefined;
  const file = fileOf(folder.dir, key);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    return undefined;
  }
  let found: FineTuneResult | undefined;
  try {
    found = decode(key, bytes);
  } catch {
    found = undefined;
  }
  if (found && found.weights.length === start.length && found.weights.every((w, i) => w.length === start[i].length)) return found;
  folder.damaged(`fine-tuning result ${file} failed its checksum: discarded, the top of the base is trained again`);
  await fs.rm(file, { force: true }).catch(() => undefined);
  return undefined;
}

/** Stores a fine-tuning's result under `key` (atomically; a failure only costs the next run the training). */
export async function writeFineTune(folder: CacheFolder, key: string, r: FineTuneResult): Promise<void> {
  if (!folder.dir || !folder.writable) return;
  const file = fileOf(folder.dir, key);
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, encode(key, r));
  } catch (error) {
    folder.writeFailed(error);
  }
}
