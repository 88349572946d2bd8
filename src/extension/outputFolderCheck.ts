// The extension's side of "nothing is ever written inside a dataset": it resolves the real paths
// of the runs and cache folders its settings give and asks the shared rule (src/shared/outputFolders)
// before it starts a run. The engine asks the same rule again before it writes anything, so a run
// started any other way is refused in the same words. No `vscode` here, so it is unit-tested.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { outputFolderProblem, type OutputFolderRole } from '../shared/outputFolders';

// Case-insensitive file systems are the default there; a false "outside" would let a run write into the dataset.
const CASE_INSENSITIVE = process.platform === 'win32' || process.platform === 'darwin';

/** The real path of `p`; for a folder not created yet, the real path of its nearest existing parent joined with the rest. */
export async function realPathOfNearest(p: string): Promise<string> {
  const abs = path.resolve(p);
  try {
    return await fs.realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await realPathOfNearest(parent), path.basename(abs));
  }
}

/** A folder a run would write into, and the setting that chose it. */
export interface OutputFolder {
  role: OutputFolderRole;
  folder: string;
  setting: string;
}

/** The first of `folders` that is the dataset or inside it (by real path), with the message that says so; undefined when none is. */
export async function folderInsideDataset(
  datasetRoot: string,
  folders: readonly OutputFolder[],
): Promise<{ message: string; setting: string } | undefined> {
  const dataset = { given: path.resolve(datasetRoot), real: await realPathOfNearest(datasetRoot) };
  for (const f of folders) {
    const given = path.resolve(f.folder);
    const problem = outputFolderProblem(f.role, { given, real: await realPathOfNearest(given) }, dataset, CASE_INSENSITIVE);
    if (problem) return { message: `${problem} Setting: ${f.setting}.`, setting: f.setting };
  }
  return undefined;
}
