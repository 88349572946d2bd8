// Reading run folders for the CLI (`image-trainer runs`, `predict`): status.json reconciled with
// the model folder's own record, and a `running` run whose process is gone read as interrupted.
// The extension reads the same way (src/extension/runIndex.ts) with the same shared rules.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type ModelFolderRecord, type RunStatus } from '../../shared/runFolder';
import {
  isRunProcessAlive,
  isRunStatus,
  MODEL_JSON_HEAD_BYTES,
  parseModelCheckpoint,
  reconcileRunStatus,
  type RunReading,
} from '../../shared/runState';

/** One run folder as a listing shows it. */
export interface RunListing extends RunReading {
  runDir: string;
  name: string;
}

/** What `model/model.json` of a run folder says about itself (its first bytes only). */
export async function readModelRecord(runDir: string): Promise<ModelFolderRecord> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path.join(runDir, RUN_FILES.modelDir, 'model.json'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
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

/** True if a process with this id exists (signal 0 probes without signalling). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process `pid` started (epoch ms), where the system says (Linux /proc); undefined
 * elsewhere. Assumes the usual 100 clock ticks a second of /proc/<pid>/stat.
 */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const btime = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1];
    if (!Number.isFinite(ticks) || btime === undefined) return undefined;
    return Number(btime) * 1000 + ticks * 10;
  } catch {
    return undefined;
  }
}

/** Whether the process a `running` status names is still that run's (see isRunProcessAlive). */
export function runProcessAlive(status: RunStatus): boolean {
  if (status.pid === undefined) return false;
  return isRunProcessAlive(status, pidExists(status.pid), processStartMs(status.pid));
}

/** One run folder, reconciled; undefined when it has no readable status.json. */
export async function readRunListing(runDir: string): Promise<RunListing | undefined> {
  let status: unknown;
  try {
    status = JSON.parse(await fs.promises.readFile(path.join(runDir, RUN_FILES.status), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isRunStatus(status)) return undefined;
  const model = await readModelRecord(runDir);
  const alive = status.state === 'running' && runProcessAlive(status);
  return { runDir, name: path.basename(runDir), ...reconcileRunStatus(status, model, alive) };
}

/** Every run folder under `runsDir` with a readable status, newest first. */
export async function listRunFolders(runsDir: string): Promise<RunListing[]> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(runsDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch {
    return [];
  }
  const runs = await Promise.all(names.map((name) => readRunListing(path.join(runsDir, name))));
  return runs
    .filter((r): r is RunListing => r !== undefined)
    .sort((a, b) => b.status.startedAt.localeCompare(a.status.startedAt) || b.name.localeCompare(a.name));
}
