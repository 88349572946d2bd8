// Files that readers may open while a run is going, written so that a crash or SIGKILL never leaves
// one half-written: a temporary sibling, fsync, then rename.
import * as fs from 'node:fs';

let tmpCounter = 0;

/** Writes `data` to `file` atomically: a temporary sibling, fsync, then rename. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${++tmpCounter}`;
  const handle = await fs.promises.open(tmp, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.promises.rename(tmp, file);
}

/** Writes a JSON value atomically, pretty-printed. */
export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(value, null, 2) + '\n');
}
