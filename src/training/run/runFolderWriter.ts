// Writing and reading a run folder. Every file a reader may open is written to a temporary name
// and renamed, so a crash or SIGKILL never leaves a half-written status, config or model.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type RunStatus } from '../../shared/runFolder';
import type { EpochMetrics } from '../../shared/types';
import { writeJsonAtomic } from '../util/atomicWrite';
import { isInside } from '../util/paths';

/** `<name>-YYYYMMDD-HHMMSS` from a date, in local time (what a user reads in a folder list). */
export function runFolderName(datasetName: string, date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const stamp = `${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
  const safe = datasetName.replace(/[^A-Za-z0-9._-]+/g, '_') || 'dataset';
  return `${safe}-${stamp}`;
}

/** Creates a fresh run folder under `runsDir` (never inside the dataset) and returns its path. */
export async function createRunFolder(runsDir: string, datasetRoot: string, datasetName: string, now: Date): Promise<string> {
  const realRoot = await fs.promises.realpath(datasetRoot);
  if (isInside(realRoot, await realpathOfNearest(runsDir))) {
    throw new Error(
      `The runs folder ${runsDir} is inside the dataset ${datasetRoot}; Image Trainer never writes into a dataset folder. Choose another runs folder (--out).`,
    );
  }
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

/** The real path of `p`, or of its nearest existing ancestor joined with the rest. */
async function realpathOfNearest(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fs.promises.realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await realpathOfNearest(parent), path.basename(abs));
  }
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
  private logStream: fs.WriteStream;

  constructor(
    readonly dir: string,
    initial: Omit<RunStatus, 'updatedAt'>,
  ) {
    this.status = { ...initial, updatedAt: new Date().toISOString() };
    this.logStream = fs.createWriteStream(path.join(dir, RUN_FILES.log), { flags: 'a' });
  }

  /** Path of a file in the run folder. */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  /** Merges `patch` into status.json. */
  async updateStatus(patch: Partial<RunStatus>): Promise<void> {
    this.status = { ...this.status, ...patch, updatedAt: new Date().toISOString() };
    await writeJsonAtomic(this.file(RUN_FILES.status), this.status);
  }

  get currentStatus(): RunStatus {
    return this.status;
  }

  /** Appends one epoch's metrics to metrics.jsonl (a line is small enough to be written whole). */
  async appendMetrics(m: EpochMetrics): Promise<void> {
    await fs.promises.appendFile(this.file(RUN_FILES.metrics), JSON.stringify(m) + '\n');
  }

  /** Appends a line to train.log. */
  log(line: string): void {
    this.logStream.write(`${new Date().toISOString()} ${line}\n`);
  }

  /** Flushes and closes the log. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.logStream.end(resolve));
  }
}
