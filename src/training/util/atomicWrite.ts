// Files that readers may open while a run is going, written so that a crash or SIGKILL never leaves
// one half-written: a temporary sibling, fsync, then rename. A failed write removes its temporary
// file (on a full disk it holds the space the next write needs); a crash leaves it, and
// `removeStaleTempFiles` removes it later once its process is gone.
import * as fs from 'node:fs';
import * as path from 'node:path';

let tmpCounter = 0;

// `<file>.tmp-<pid>-<n>`: the only names this module writes, so the only ones it ever removes.
const TEMP_NAME = /^.+\.tmp-([1-9]\d*)-([1-9]\d*)$/;

/** The pid that wrote a temporary file of `writeFileAtomic`, or undefined when `name` is not one. */
export function tempFileWriter(name: string): number | undefined {
  const m = TEMP_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** True while a process with this pid exists (one we may not signal exists too). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporary files of `writeFileAtomic` in `dir` whose writer is `onlyPid`, or, without
 * it, whose writer is no longer alive (a crashed run's). Returns the names removed.
 */
export async function removeStaleTempFiles(dir: string, onlyPid?: number): Promise<string[]> {
  const names = await fs.promises.readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    const pid = tempFileWriter(name);
    if (pid === undefined) continue;
    if (onlyPid !== undefined ? pid !== onlyPid : isProcessAlive(pid)) continue;
    try {
      await fs.promises.rm(path.join(dir, name));
      removed.push(name);
    } catch {
      // Gone already, or not ours to remove: either way nothing to do.
    }
  }
  return removed;
}

/**
 * `err` with `file` as its path when Node left it out, as it does for writes through a handle
 * ("ENOSPC: no space left on device, write"): a user needs to know which file, the run which folder.
 */
export function withFilePath(err: unknown, file: string): unknown {
  const e = err as NodeJS.ErrnoException | undefined;
  if (e instanceof Error && typeof e.code === 'string' && e.path === undefined) {
    e.path = file;
    e.message = `${e.message} '${file}'`;
  }
  return err;
}

/** Writes `data` to `file` atomically: a temporary sibling, fsync, then rename; on failure the temporary file is removed and the error names `file`. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${++tmpCounter}`;
  try {
    const handle = await fs.promises.open(tmp, 'w');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw withFilePath(err, file);
  }
}

/** Writes a JSON value atomically, pretty-printed. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
