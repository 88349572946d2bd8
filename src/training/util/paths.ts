// Paths the engine compares and the checks of the folders a run writes into, made before anything
// is written so that a wrong folder is refused in words, not met later as EEXIST or ENOTDIR.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { outputFolderProblem, type OutputFolderRole } from '../../shared/outputFolders';
import { TrainerError } from './errors';

/** True when `child` is `parent` or lies inside it. */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(path.resolve(parent), path.resolve(child));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// Case-insensitive file systems are the default there; a false "outside" would let a run write into the dataset.
const CASE_INSENSITIVE = process.platform === 'win32' || process.platform === 'darwin';

/** The nearest path at or above `p` that exists, with what it is. */
export async function nearestExisting(p: string): Promise<{ path: string; stat: fs.Stats }> {
  let current = path.resolve(p);
  for (;;) {
    const stat = await fs.promises.stat(current).catch(() => undefined);
    if (stat) return { path: current, stat };
    const parent = path.dirname(current);
    if (parent === current) throw new TrainerError('options', `No part of ${p} exists.`);
    current = parent;
  }
}

/** The real path of `p` (symlinks resolved); for a path that does not exist yet, the real path of its nearest existing parent joined with the rest. */
export async function realPathOfNearest(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fs.promises.realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await realPathOfNearest(parent), path.basename(abs));
  }
}

/** Throws an `options` TrainerError when `folder` is the dataset or inside it, compared by real path. */
export async function refuseFolderInDataset(role: OutputFolderRole, folder: string, datasetRoot: string): Promise<void> {
  const given = path.resolve(folder);
  const dataset = path.resolve(datasetRoot);
  const problem = outputFolderProblem(
    role,
    { given, real: await realPathOfNearest(given) },
    { given: dataset, real: await realPathOfNearest(dataset) },
    CASE_INSENSITIVE,
  );
  if (problem) throw new TrainerError('options', problem);
}

/**
 * Checks a folder a run will write into before anything is written: never the dataset or inside it.
 * A folder the run needs (`mustBeWritable`: the runs folder) must also not be a file, not lie under
 * a file, and be writable (its nearest existing folder). An optional one (the caches) is only
 * refused inside the dataset: when it cannot be used the run goes on without it, with a warning.
 */
export async function checkOutputFolder(
  role: OutputFolderRole,
  folder: string,
  datasetRoot: string,
  mustBeWritable: boolean,
): Promise<void> {
  await refuseFolderInDataset(role, folder, datasetRoot);
  if (!mustBeWritable) return;
  const given = path.resolve(folder);
  const nearest = await nearestExisting(given);
  if (!nearest.stat.isDirectory()) {
    if (nearest.path === given) {
      throw new TrainerError('options', `The ${role} folder ${given} is a file, not a folder: choose a folder (nothing was written).`);
    }
    // A disk-kind failure, as the mkdir under a file it replaces was.
    throw new TrainerError(
      'disk',
      `ENOTDIR: the ${role} folder ${given} cannot be created because ${nearest.path} is a file, not a folder (nothing was written).`,
    );
  }
  try {
    await fs.promises.access(nearest.path, fs.constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    const reason = code === 'EROFS' ? 'read-only file system' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code;
    const where = nearest.path === given ? '' : ` (${nearest.path}, where it would be created)`;
    throw new TrainerError(
      'options',
      `The ${role} folder ${given} cannot be written${where}: ${reason} (${code}). Choose a folder you can write to (nothing was written).`,
      { cause: err },
    );
  }
}
