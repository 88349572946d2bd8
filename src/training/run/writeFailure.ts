// A write that failed in the run folder (full disk, quota, permissions, I/O error) told in words:
// which file, why, and what the run leaves that is still usable.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_FILES, type RunStatus } from '../../shared/runFolder';
import { TrainerError } from '../util/errors';
import { isInside } from '../util/paths';

// The causes a user can act on (free space, fix permissions, change disks), in words.
const WRITE_FAILURES: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large for the file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
};

/** What survived of a run in `runDir`: the checkpoint that status.json last recorded, if its model folder holds one. */
export function survivingCheckpoint(runDir: string, statusOnDisk: RunStatus | undefined): string {
  if (!fs.existsSync(path.join(runDir, RUN_FILES.modelDir, 'model.json'))) return 'No checkpoint had been saved.';
  const use = `\`image-trainer predict ${runDir} <image-or-folder>\` can use it.`;
  if (!statusOnDisk?.hasCheckpoint || !statusOnDisk.bestEpoch) return `A checkpoint survived in ${RUN_FILES.modelDir}/: ${use}`;
  const acc = statusOnDisk.valAccuracy !== undefined ? ` (validation accuracy ${(100 * statusOnDisk.valAccuracy).toFixed(1)}%)` : '';
  return `The checkpoint of epoch ${statusOnDisk.bestEpoch}${acc} survived: ${use}`;
}

/**
 * `err` as a `disk` TrainerError naming the file, the cause and the surviving checkpoint when it is
 * a failed write inside `runDir`; anything else is returned unchanged.
 */
export function describeWriteFailure(err: unknown, runDir: string, statusOnDisk: RunStatus | undefined): unknown {
  if (err instanceof TrainerError || !(err instanceof Error)) return err;
  const { code, path: file } = err as NodeJS.ErrnoException;
  const reason = code !== undefined ? WRITE_FAILURES[code] : undefined;
  if (!reason || !file || !isInside(runDir, file)) return err;
  // The temporary name says nothing to a user; the file it was going to become does.
  const rel = path.relative(runDir, file.replace(/\.tmp-\d+-\d+$/, '')) || '.';
  return new TrainerError('disk', `${rel} in the run folder ${runDir}: ${reason} (${code}). ${survivingCheckpoint(runDir, statusOnDisk)}`, {
    cause: err,
  });
}
