// Where a run's base model comes from: a registry id or the folder of a user's own LayersModel,
// and the folder its files are read from (embedded, downloaded into the cache, or the user's).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Progress } from '../../shared/types';
import { RunCancelled, TrainerError } from '../util/errors';
import { CUSTOM_MODEL_DESCRIPTOR_FILE, readCustomModel } from './customModel';
import { ensureModel, ModelDownloadError } from './modelDownload';
import { DEFAULT_MODEL_ID, findModel, MODEL_REGISTRY, type ModelEntry } from './modelRegistry';

/** True when `model` names a folder of the user's own model rather than a registry id. */
function isModelFolder(model: string): boolean {
  return /[\\/]/.test(model) || fs.existsSync(path.join(model, CUSTOM_MODEL_DESCRIPTOR_FILE));
}

/** Refuses a `model` option that is neither a registry id nor a folder, before anything is read or written. */
export function checkModelOption(model: string): void {
  if (findModel(model) || isModelFolder(model)) return;
  throw new TrainerError(
    'options',
    `Unknown base model "${model}"; known: ${MODEL_REGISTRY.map((m) => m.id).join(', ')}, or the folder of your own TF.js LayersModel with ${CUSTOM_MODEL_DESCRIPTOR_FILE}.`,
  );
}

/** A registry id, or the folder of a user's own LayersModel with its descriptor file (read once a backend runs: reading it loads the model). */
export async function resolveModelEntry(model: string): Promise<ModelEntry> {
  const known = findModel(model);
  if (known) return known;
  checkModelOption(model);
  return readCustomModel(path.resolve(model));
}

export interface ModelFolderOptions {
  /** Folder that holds downloaded models (`<folder>/models/<id>`). */
  cacheDir: string;
  extensionRoot?: string;
  signal?: AbortSignal;
  onProgress?(p: Omit<Progress, 'stage'>): void;
  /** Told why a download failed when the run falls back to the embedded default. */
  onFallback?(reason: string, fallback: ModelEntry): void;
}

/**
 * The folder of the base model's files: embedded ones as shipped (undefined), hosted ones
 * downloaded into the cache, a user's folder as it is. When a download fails, the run continues on
 * the embedded default and says why; a cancel during the download aborts it, leaving nothing
 * half-written in the cache.
 */
export async function resolveModelFolder(
  entry: ModelEntry,
  opts: ModelFolderOptions,
): Promise<{ entry: ModelEntry; dir: string | undefined }> {
  if (entry.source.kind === 'embedded') return { entry, dir: undefined };
  if (entry.source.kind === 'folder') return { entry, dir: entry.source.path };
  try {
    const dir = await ensureModel(entry, opts.cacheDir, {
      extensionRoot: opts.extensionRoot,
      signal: opts.signal,
      onProgress: (p) => opts.onProgress?.({ done: p.bytes, total: p.total ?? Math.max(p.bytes, 1) }),
    });
    return { entry, dir };
  } catch (err) {
    if (opts.signal?.aborted) throw new RunCancelled();
    const fallback = findModel(DEFAULT_MODEL_ID)!;
    if (!(err instanceof ModelDownloadError) || fallback.id === entry.id) throw err;
    opts.onFallback?.(err.message, fallback);
    return { entry: fallback, dir: undefined };
  }
}
