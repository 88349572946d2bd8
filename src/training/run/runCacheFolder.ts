// The run's cache folder, checked once per run by the first stage that needs it (the scan, so a
// `--cache` that is a file is said before any work): every stage then caches through it, and a
// folder that cannot be used, or stops taking writes, only turns caching off.
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
