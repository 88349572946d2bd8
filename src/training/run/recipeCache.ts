// The recipe search's result in the cache folder, so a warm rerun neither reads the sample's views
// nor cross-validates again. Like every cache artifact it is a pure function of its key — the
// sample (content hashes and classes, in order), the feature key, the head's options and seed, the
// candidates and the search's settings — and carries a checksum: a file that fails it, or that
// answers another key, is reported and the search runs again.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { RecipeCandidate, TrainOptions } from '../../shared/types';
import type { DatasetItem } from '../dataset/datasetScanner';
import { writeJsonAtomic } from '../util/atomicWrite';
import type { CacheFolder } from '../util/cacheFolder';
import { checksumOfText, seedOf } from '../util/checksum';

// 2: candidates carry their paired counts against plain.
const FORMAT = 2;

export interface RecipeSearchKey {
  featureKey: string;
  sample: readonly DatasetItem[];
  options: TrainOptions;
  /** Where the head's steps run (onnxruntime and tfjs round differently). */
  runtime: string;
  search: { folds: number; epochs: number; candidates: readonly string[] };
}

/** What a search found: each candidate's score, on how many images (those of the sample that decoded). */
export interface RecipeSearchResult {
  candidates: RecipeCandidate[];
  images: number;
}

interface RecipeCacheFile extends RecipeSearchResult {
  key: string;
  checksum: string;
}

/** The hash that names a search's result. */
export function recipeSearchKey(k: RecipeSearchKey): string {
  const o = k.options;
  const head = [o.seed, o.hiddenUnits, o.dropout, o.learningRate, o.batchSize, o.classWeights, o.patience, o.lrPatience, o.lrFactor];
  const h = createHash('sha256').update(
    JSON.stringify({ format: FORMAT, featureKey: k.featureKey, head, runtime: k.runtime, search: k.search }),
  );
  for (const item of k.sample) h.update(`${item.sha256}:${item.classIndex}\n`);
  return h.digest('hex');
}

const fileOf = (dir: string, key: string) => path.join(dir, 'recipes', `${key.slice(0, 32)}.json`);
const checksumOf = (key: string, r: RecipeSearchResult) =>
  checksumOfText(JSON.stringify({ key, candidates: r.candidates, images: r.images }), seedOf(key));

/** The cached result of `key`, or undefined (absent, or damaged: reported and removed). */
export async function readRecipeSearch(folder: CacheFolder, key: string): Promise<RecipeSearchResult | undefined> {
  if (!folder.dir) return undefined;
  const file = fileOf(folder.dir, key);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as RecipeCacheFile;
    if (parsed.key === key && Array.isArray(parsed.candidates) && parsed.checksum === checksumOf(key, parsed))
      return { candidates: parsed.candidates, images: parsed.images };
  } catch {
    // Not JSON: damaged like any other mismatch.
  }
  folder.damaged(`recipe search result ${file} failed its checksum: discarded, the candidates are cross-validated again`);
  await fs.rm(file, { force: true }).catch(() => undefined);
  return undefined;
}

/** Stores a search's result under `key` (atomically; a failure only costs the next run the search). */
export async function writeRecipeSearch(folder: CacheFolder, key: string, result: RecipeSearchResult): Promise<void> {
  if (!folder.dir || !folder.writable) return;
  const file = fileOf(folder.dir, key);
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeJsonAtomic(file, { key, ...result, checksum: checksumOf(key, result) } satisfies RecipeCacheFile);
  } catch (error) {
    folder.writeFailed(error);
  }
}
