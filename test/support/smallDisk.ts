// A small real file system that fills up: a tmpfs mounted for one test (tests run as root in CI).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { tempDir } from './tempDirs';

/**
 * Mounts a tmpfs of `sizeKb` KiB (read-only when asked) for the rest of test `t` and returns its
 * folder, or skips `t` with the reason and returns undefined where mounting is not possible.
 */
export function smallDisk(t: TestContext, sizeKb: number, readOnly = false): string | undefined {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to mount a small tmpfs (a disk that fills up); run the tests as root, as CI does');
    return undefined;
  }
  const dir = path.join(tempDir('small-disk-'), 'disk');
  fs.mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKb}k${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    t.skip(`cannot mount a tmpfs here: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  t.after(() => execFileSync('umount', ['-l', dir], { stdio: 'pipe' }));
  return dir;
}
