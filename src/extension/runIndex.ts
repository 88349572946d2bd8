// Reads the run folders under a runs folder (their status.json, reconciled with the model folder's
// own record), for the tree, Classify Image and Open Run Report, and repairs the status of a run
// whose process died without saying so. The CLI reads the same way (src/training/run/runFolderReader.ts).
import type { Dirent } from 'node:fs';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { isObject } from '../shared/protocol/guards';
import { RUN_FILES } from '../shared/runFolder';
import type { TrainOptions } from '../shared/types';
import type { ModelFolderRecord, RunStatus } from '../shared/runFolder';
import { isRunProcessAlive, isRunStatus, MODEL_JSON_HEAD_BYTES, parseModelCheckpoint, reconcileRunStatus } from '../shared/runState';

export interface RunEntry {
  runDir: string;
  /** Folder name, `<dataset>-<YYYYMMDD-HHMMSS>`. */
  name: string;
  /** status.json, with the model folder's epoch, accuracy and checkpoint flag where they differ. */
  status: RunStatus;
  /** `running` on disk but its process is gone: the run was interrupted. */
  interrupted: boolean;
  /** The options its config.json records (absent: none readable). */
  options?: Partial<TrainOptions>;
}

/**
 * True if a process with this id exists (signal 0 probes without signalling) and, given the run's
 * `startedAt`, is the run's own: where the system tells when it started (Linux), a process that
 * started after the run did got the pid after the run's process died (see isRunProcessAlive).
 */
export function isProcessAlive(pid: number, startedAt?: string): boolean {
  let exists: boolean;
  try {
    process.kill(pid, 0);
    exists = true;
  } catch (error) {
    exists = (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!exists || startedAt === undefined) return exists;
  return isRunProcessAlive({ pid, startedAt }, true, processStartMs(pid));
}

/** When `pid` started (epoch ms) from Linux /proc (assuming 100 clock ticks a second); undefined elsewhere. */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: count fields after its last ')'.
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1];
    return Number.isFinite(ticks) && btime !== undefined ? Number(btime) * 1000 + ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}

/** What `model/model.json` of a run folder says about itself (its first bytes only, never the whole model). */
export async function readModelRecord(runDir: string): Promise<ModelFolderRecord> {
  let handle: fs.FileHandle;
  try {
    // Non-blocking: a FIFO put in place of model.json must not hang the tree.
    handle = await fs.open(path.join(runDir, RUN_FILES.modelDir, 'model.json'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return { hasModel: false };
  }
  try {
    if (!(await handle.stat()).isFile()) return { hasModel: false };
    const buffer = Buffer.alloc(MODEL_JSON_HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return { hasModel: true, checkpoint: parseModelCheckpoint(buffer.subarray(0, bytesRead).toString('utf8')) };
  } finally {
    await handle.close();
  }
}

/** The parsed status.json of one run folder, or undefined when missing or malformed. */
export async function readRunStatus(runDir: string): Promise<RunStatus | undefined> {
  try {
    const parsed: unknown = JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.status), 'utf8'));
    return isRunStatus(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Every run folder under `runsDir` with a readable status, newest first. */
export async function listRuns(runsDir: string): Promise<RunEntry[]> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(runsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const runs = await Promise.all(
    entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map(async (e): Promise<RunEntry | undefined> => {
        const runDir = path.join(runsDir, e.name);
        const onDisk = await readRunStatus(runDir);
        if (!onDisk) return undefined;
        const alive = onDisk.state === 'running' && onDisk.pid !== undefined && isProcessAlive(onDisk.pid, onDisk.startedAt);
        const { state, status } = reconcileRunStatus(onDisk, await readModelRecord(runDir), alive);
        const options = await readRunOptions(runDir);
        return { runDir, name: e.name, status, interrupted: state === 'interrupted', ...(options ? { options } : {}) };
      }),
  );
  return runs
    .filter((r): r is RunEntry => r !== undefined)
    .sort((a, b) => b.status.startedAt.localeCompare(a.status.startedAt) || b.name.localeCompare(a.name));
}

/** True if both paths name the same folder (case-insensitive on Windows and macOS file systems). */
export function samePath(a: string, b: string): boolean {
  const na = path.resolve(a);
  const nb = path.resolve(b);
  return process.platform === 'linux' ? na === nb : na.toLowerCase() === nb.toLowerCase();
}

/** True if `child` is `parent` or inside it. */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** The runs of one dataset, newest first. */
export function runsOfDataset(runs: readonly RunEntry[], datasetRoot: string): RunEntry[] {
  return runs.filter((r) => samePath(r.status.datasetRoot, datasetRoot));
}

/** The newest finished run that has a model, if any. */
export function latestFinishedRun(runs: readonly RunEntry[]): RunEntry | undefined {
  return runs.find((r) => r.status.state === 'finished' && r.status.hasCheckpoint);
}

/** Runs that ended (finished, cancelled, failed or interrupted) and whose model folder holds a checkpoint to classify with. */
export function runsWithModel(runs: readonly RunEntry[]): RunEntry[] {
  return runs.filter((r) => r.status.hasCheckpoint && (r.status.state !== 'running' || r.interrupted));
}

/**
 * Marks a run that its process left `running` as ended (`failed`, or `cancelled` when the user
 * asked), written atomically like the engine writes it. Returns false when the status was already final.
 */
export async function closeInterruptedRun(runDir: string, state: 'failed' | 'cancelled', message: string): Promise<boolean> {
  const status = await readRunStatus(runDir);
  if (!status || status.state !== 'running') return false;
  const next: RunStatus = { ...status, state, message, updatedAt: new Date().toISOString() };
  delete next.pid;
  const file = path.join(runDir, RUN_FILES.status);
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, `${JSON.stringify(next, null, 2)}\n`);
  await fs.rename(tmp, file);
  return true;
}

/** One-line description of a run for a tree item or a QuickPick: accuracy, state, main settings. */
export function describeRun(run: RunEntry): string {
  const acc = run.status.valAccuracy;
  const accText = typeof acc === 'number' && Number.isFinite(acc) ? `val ${(acc * 100).toFixed(1)}%` : undefined;
  const state = run.interrupted ? 'interrupted' : run.status.state;
  return [accText, state, mainSettings(run.options)].filter(Boolean).join(' · ');
}

/** The options a run folder's config.json records (undefined when it has none). */
export async function readRunOptions(runDir: string): Promise<Partial<TrainOptions> | undefined> {
  try {
    const config: unknown = JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.config), 'utf8'));
    return isObject(config) && isObject(config.options) ? (config.options as Partial<TrainOptions>) : undefined;
  } catch {
    return undefined;
  }
}

/** "mobilenet_v2_0.35 · 20 epochs · seed 42 · fine-tune 20": the settings a tree item shows. */
export function mainSettings(options: Partial<TrainOptions> | undefined): string {
  if (!options) return '';
  return [
    options.model,
    options.epochs !== undefined ? `${options.epochs} epochs` : undefined,
    options.seed !== undefined ? `seed ${options.seed}` : undefined,
    options.fineTuneLayers ? `fine-tune ${options.fineTuneLayers}` : undefined,
  ]
    .filter(Boolean)
    .join(' · ');
}
