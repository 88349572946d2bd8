// The run's cache folder, checked once per run by the first stage that needs it (the scan, so a
// `--cache` that is a file is said before any work): every stage then caches through it, and a
// folder that cannot be used, or stops taking writes, only turns caching off.
import { datasetFolderKey } from '../dataset/datasetScanner';
import { PixelStatsCache } from '../features/pixelStatsCache';
import { CacheFolder } from '../util/cacheFolder';
import type { RunContext } from './runContext';

const folders = new WeakMap<RunContext, Promise<CacheFolder>>();

/** The cache folder of this run (probed, swept of stale temporary files, warnings to the run log). */
export function runCacheFolder(ctx: RunContext): Promise<CacheFolder> {
  let folder = folders.get(ctx);
  if (!folder) {
    folder = CacheFolder.open(ctx.request.cacheDir, (message) => ctx.log('warn', message));
    folders.set(ctx, folder);
  }
  return folder;
}

const pixelStats = new WeakMap<RunContext, Promise<PixelStatsCache>>();

/**
 * The run's pixel-statistics cache for its dataset, read (and verified) once per run: the features
 * stage fills it while decoding, the split and the doctor read the same instance, so the file is
 * read once and a damaged one is reported once.
 */
export function runPixelStats(ctx: RunContext): Promise<PixelStatsCache> {
  let cache = pixelStats.get(ctx);
  if (!cache) {
    cache = runCacheFolder(ctx).then((folder) =>
      PixelStatsCache.open(folder.dir, datasetFolderKey(ctx.datasetRoot), ctx.need('model').extractor.inputSize, folder),
    );
    pixelStats.set(ctx, cache);
  }
  return cache;
}
