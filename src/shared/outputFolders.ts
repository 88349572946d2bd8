// The one rule about where a run may write: never inside the dataset, or in the dataset folder
// itself. A folder that *contains* the dataset is fine (a workspace's `.image-trainer` holds the runs
// of the datasets beside it). The engine and the extension each resolve real paths (symlinks
// resolved) with their own file-system access and ask this module; the words are the same for both.

/** A folder a run writes into. */
export type OutputFolderRole = 'runs' | 'cache' | 'model cache';

/** A folder as given and as the file system resolves it. */
export interface ResolvedFolder {
  /** The path as the user or a setting gave it (absolute). */
  given: string;
  /** Its real path: symlinks resolved; for a folder not created yet, its nearest existing parent's real path plus the rest. */
  real: string;
}

// Windows paths (a drive letter or a UNC prefix) use either separator and ignore case.
function isWindowsPath(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

function normalised(p: string, windows: boolean): string {
  const unified = windows ? p.replace(/\//g, '\\').toLowerCase() : p;
  const sep = windows ? '\\' : '/';
  // A root ("/", "C:\") keeps its separator; anything else loses a trailing one.
  return unified.length > 1 && unified.endsWith(sep) && !/^[a-z]:\\$/.test(unified) ? unified.slice(0, -1) : unified;
}

/** True when the real path `child` is `parent` or lies inside it (both absolute real paths; case-insensitive for Windows paths or when asked). */
export function isSameOrInsideRealPath(parent: string, child: string, caseInsensitive = false): boolean {
  const windows = isWindowsPath(parent) || isWindowsPath(child);
  let p = normalised(parent, windows);
  let c = normalised(child, windows);
  if (caseInsensitive) {
    p = p.toLowerCase();
    c = c.toLowerCase();
  }
  if (c === p) return true;
  const sep = windows ? '\\' : '/';
  return c.startsWith(p.endsWith(sep) ? p : p + sep);
}

/**
 * Why `folder` may not be written by a run on `dataset` (inside it or the dataset folder itself),
 * as one sentence naming both; undefined when it may.
 */
export function outputFolderProblem(
  role: OutputFolderRole,
  folder: ResolvedFolder,
  dataset: ResolvedFolder,
  caseInsensitive = false,
): string | undefined {
  if (!isSameOrInsideRealPath(dataset.real, folder.real, caseInsensitive)) return undefined;
  const same = isSameOrInsideRealPath(folder.real, dataset.real, caseInsensitive);
  // Through a symbolic link the given path does not show why; the real one does.
  const real = folder.real !== folder.given ? ` (really ${folder.real})` : '';
  const where = same ? `is the dataset ${dataset.given} itself` : `is inside the dataset ${dataset.given}`;
  return `The ${role} folder ${folder.given}${real} ${where}: choose a folder outside it (nothing was written).`;
}
