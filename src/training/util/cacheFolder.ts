// The cache folder (`--cache`, `imageTrainer.cacheFolder`) is an optimisation: the scan index,
// feature vectors and packs, exported ONNX graphs and downloaded models only save time. So a
// folder that cannot be used (a file, read-only, full) turns caching off for the run with one
// warning instead of failing it, and what a crashed run left half-written is swept at the next start.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** Where the cache's users report what went wrong with it; nothing here ever fails a run. */
export interface CacheIssues {
  /** Whether writing into the cache is still on. */
  readonly writable: boolean;
  /** A cached artifact failed its verification and was discarded; `message` names it and what was done. */
  damaged(message: string): void;
  /** A write into the cache failed: caching stops for the rest of the run (said once). */
  writeFailed(error: unknown): void;
}

/** Issues nobody listens to (tests and tools that use a cache directly): damage is only recomputed, writes keep being tried. */
export const UNREPORTED: CacheIssues = { writable: true, damaged: () => undefined, writeFailed: () => undefined };

/** Names of the product's temporary files: `<name>.<pid>.<8 hex>.tmp` (feature cache, probes) and `<name>.tmp-<pid>-<n>` (atomicWrite). */
const TEMP_NAMES = [/^.+\.(\d+)\.[0-9a-f]{8}\.tmp$/, /^.+\.tmp-(\d+)-\d+$/];
/** A temporary file this old has no live writer, whatever its pid says (pids are reused): a write takes seconds. */
const STALE_TEMP_MS = 60 * 60 * 1000;
/** Feature-cache folders are named by 24 hex digits of their key's hash (featureCache.ts). */
const FEATURE_ROOT = /^[0-9a-f]{24}$/;

/** A file-system error in words: "permission denied (EACCES)". */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const words: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'not permitted',
    EROFS: 'read-only file system',
    ENOSPC: 'no space left on the disk',
    EDQUOT: 'disk quota exceeded',
    ENOTDIR: 'a part of its path is a file, not a folder',
    EEXIST: 'a file is in the way',
  };
  if (code && words[code]) return `${words[code]} (${code})`;
  return code ?? (error instanceof Error ? error.message.split('\n')[0] : String(error));
}

/** The run's cache folder: `dir` while caching is on, undefined once it is off. */
export class CacheFolder implements CacheIssues {
  private off = false;

  private constructor(
    private readonly folder: string,
    private readonly warn: (message: string) => void,
  ) {}

  /**
   * Checks that `folder` can hold the cache (creating it, writing and removing a probe) and sweeps
   * the temporary files of crashed runs; when it cannot, the run goes on without caching and `warn`
   * is told once why.
   */
  static async open(folder: string, warn: (message: string) => void): Promise<CacheFolder> {
    const cache = new CacheFolder(path.resolve(folder), warn);
    const problem = await probe(cache.folder);
    if (problem) cache.turnOff(problem);
    else await removeStaleTemps(cache.folder).catch(() => undefined);
    return cache;
  }

  /** The folder, or undefined when caching is off. */
  get dir(): string | undefined {
    return this.off ? undefined : this.folder;
  }

  get writable(): boolean {
    return !this.off;
  }

  damaged(message: string): void {
    this.warn(message);
  }

  writeFailed(error: unknown): void {
    if (!this.off) this.turnOff(describeFsError(error));
  }

  private turnOff(reason: string): void {
    this.off = true;
    this.warn(
      `Cache folder ${this.folder} cannot be used: ${reason}. Continuing without caching (scan index, features, ONNX graph, downloaded models).`,
    );
  }
}

// Why `folder` cannot hold the cache, or undefined when it can.
async function probe(folder: string): Promise<string | undefined> {
  const st = await fs.stat(folder).catch(() => undefined);
  if (st && !st.isDirectory()) return 'it is a file, not a folder';
  try {
    await fs.mkdir(folder, { recursive: true });
  } catch (error) {
    return describeFsError(error);
  }
  const file = path.join(folder, `.probe.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    // A few pages, so that a disk with only crumbs left reads as full.
    await fs.writeFile(file, Buffer.alloc(64 * 1024));
  } catch (error) {
    return describeFsError(error);
  } finally {
    await fs.rm(file, { force: true }).catch(() => undefined);
  }
  return undefined;
}

/** Whether process `pid` is alive (EPERM: alive, another user's). */
function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `name` is one of the product's temporary files left by a writer that is gone: its pid is not alive, or it is older than any write. */
export function isStaleTemp(name: string, mtimeMs: number, now = Date.now()): boolean {
  const pid = TEMP_NAMES.map((re) => re.exec(name)?.[1]).find((p) => p !== undefined);
  if (pid === undefined) return false;
  return now - mtimeMs > STALE_TEMP_MS || !alive(Number(pid));
}

/** Removes the temporary files of crashed runs from the folders of the cache that hold them; returns how many. */
export async function removeStaleTemps(folder: string): Promise<number> {
  const top = await fs.readdir(folder).catch(() => [] as string[]);
  const dirs = [folder, path.join(folder, 'scan'), path.join(folder, 'onnx')];
  for (const name of top.filter((n) => FEATURE_ROOT.test(n))) dirs.push(path.join(folder, name, 'tmp'), path.join(folder, name, 'packs'));
  let removed = 0;
  for (const dir of dirs) {
    for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
      const file = path.join(dir, name);
      const st = await fs.lstat(file).catch(() => undefined);
      if (!st?.isFile() || !isStaleTemp(name, st.mtimeMs)) continue;
      await fs.rm(file, { force: true }).then(
        () => removed++,
        () => undefined,
      );
    }
  }
  return removed;
}
