// Writing and reading a run folder. Every file a reader may open is written to a temporary name
// and renamed, so a crash or SIGKILL never leaves a half-written status, config or model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type RunStatus } from '../../shared/runFolder';
import type { EpochMetrics } from '../../shared/types';
import { removeStaleTempFiles, withFilePath, writeJsonAtomic } from '../util/atomicWrite';
import { isInside, refuseFolderInDataset } from '../util/paths';

/** `<name>-YYYYMMDD-HHMMSS` from a date, in local time (what a user reads in a folder list). */
export function runFolderName(datasetName: string, date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  const safe = datasetName.replace(/[^A-Za-z0-9._-]+/g, '_') || 'dataset';
  return `${safe}-${stamp}`;
}

/** Creates a fresh run folder under `runsDir` (never inside the dataset, compared by real path) and returns its path. */
export async function createRunFolder(runsDir: string, datasetRoot: string, datasetName: string, now: Date): Promise<string> {
  await refuseFolderInDataset('runs', runsDir, datasetRoot);
  await fs.promises.mkdir(runsDir, { recursive: true });
  const base = runFolderName(datasetName, now);
  for (let i = 0; ; i++) {
    const dir = path.join(runsDir, i === 0 ? base : `${base}-${i + 1}`);
    try {
      await fs.promises.mkdir(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/**
 * Removes the temporary files that crashed runs left in the run folders under `runsDir` (and their
 * model folders): only names `writeFileAtomic` writes, and only of processes that are gone.
 * Returns the paths removed.
 */
export async function removeCrashedRunsTempFiles(runsDir: string): Promise<string[]> {
  const entries = await fs.promises.readdir(runsDir, { withFileTypes: true }).catch(() => [] as fs.Dirent[]);
  const removed: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const runDir = path.join(runsDir, entry.name);
    // Only folders that are run folders: a stranger's folder under the runs folder is left alone.
    if (!fs.existsSync(path.join(runDir, RUN_FILES.status))) continue;
    for (const dir of [runDir, path.join(runDir, RUN_FILES.modelDir)]) {
      for (const name of await removeStaleTempFiles(dir)) removed.push(path.join(dir, name));
    }
  }
  return removed;
}

/** The default runs folder for a dataset: `<base>/.image-trainer/runs`, moved next to the dataset if `base` is inside it. */
export function defaultRunsDir(base: string, datasetRoot: string): string {
  const root = isInside(datasetRoot, base) ? path.dirname(path.resolve(datasetRoot)) : base;
  return path.join(root, '.image-trainer', 'runs');
}

/** The default feature cache folder, next to the default runs folder. */
export function defaultCacheDir(base: string, datasetRoot: string): string {
  return path.join(path.dirname(defaultRunsDir(base, datasetRoot)), 'cache');
}

/** Writes and updates the files of one run. */
export class RunFolderWriter {
  private status: RunStatus;
  private written: RunStatus | undefined;
  private logStream: fs.WriteStream;
  private logError: Error | undefined;

  constructor(
    readonly dir: string,
    initial: Omit<RunStatus, 'updatedAt'>,
  ) {
    this.status = { ...initial, updatedAt: new Date().toISOString() };
    this.logStream = fs.createWriteStream(path.join(dir, RUN_FILES.log), { flags: 'a' });
    // A full disk must cost the log, not the process (an unhandled stream error would kill it).
    this.logStream.on('error', (err) => (this.logError ??= err));
  }

  /** Path of a file in the run folder. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Merges `patch` into status.json. */
  async updateStatus(patch: Partial<RunStatus>): Promise<void> {
    this.status = { ...this.status, ...patch, updatedAt: new Date().toISOString() };
    const status = this.status;
    await writeJsonAtomic(this.file(RUN_FILES.status), status);
    this.written = status;
  }

  /**
   * Merges `patch` into status.json as the run's last word: atomically if it can, else in place,
   * which on a full disk reuses the file's own space. Says whether it was written.
   */
  async writeFinalStatus(patch: Partial<RunStatus>): Promise<boolean> {
    try {
      await this.updateStatus(patch);
      return true;
    } catch {
      try {
        await fs.promises.writeFile(this.file(RUN_FILES.status), JSON.stringify(this.status, null, 2) + '\n');
        this.written = this.status;
        return true;
      } catch {
        return false;
      }
    }
  }

  get currentStatus(): RunStatus {
    return this.status;
  }

  /** The status as status.json last recorded it (what a reader of the folder sees), if it was ever written. */
  get statusOnDisk(): RunStatus | undefined {
    return this.written;
  }

  /** Appends one epoch's metrics to metrics.jsonl (a line is small enough to be written whole). */
  async appendMetrics(m: EpochMetrics): Promise<void> {
    const file = this.file(RUN_FILES.metrics);
    try {
      await fs.promises.appendFile(file, JSON.stringify(m) + '\n');
    } catch (err) {
      throw withFilePath(err, file);
    }
  }

  /** Appends a line to train.log (dropped once the log could not be written). */
  log(line: string): void {
    if (this.logError || this.logStream.destroyed) return;
    this.logStream.write(`${new Date().toISOString()} ${line}\n`);
  }

  /** Flushes and closes the log. */
  async close(): Promise<void> {
    if (this.logStream.destroyed) return;
    await new Promise<void>((resolve) => this.logStream.end(() => resolve()));
  }
}
