// Validates image paths that come back from the (untrusted) webview before the host touches a file:
// a path must be a plain relative `/`-separated path, name an image of the run shown, and resolve
// (symlinks included) to a file inside the run's dataset root. The root itself must be one of the
// datasets the workspace's discovery knows: a run folder's files are not trusted to say where a
// dataset is. A move is checked when it is proposed and again right before it happens (after the
// confirmation dialog), so a link swapped in meanwhile cannot redirect it. No `vscode` import: unit-tested.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SPLIT_FOLDER_NAMES } from '../shared/datasetRules';

/** On success, `absolutePath` is the real path that was verified (links resolved), never the path as given. */
export type GuardResult = { ok: true; relativePath: string; absolutePath: string } | { ok: false; reason: string };

/** A move as checked before the confirmation: the real source file and the verified target. */
export interface PlannedMove {
  relativePath: string;
  from: string;
  target: { relativePath: string; absolutePath: string };
}

/** The dataset roots the workspace's discovery knows (the tree's datasets), and any the user chose for a live run. */
export type TrustedRoots = () => readonly string[] | Promise<readonly string[]>;

export const UNKNOWN_ROOT_REASON = "the run's dataset folder is not one of the workspace's datasets";

const CASE_INSENSITIVE = process.platform === 'win32' || process.platform === 'darwin';

function comparable(p: string): string {
  return CASE_INSENSITIVE ? p.toLowerCase() : p;
}

/** True if `child` is strictly inside `parent` (both absolute, already resolved). */
export function isStrictlyInside(parent: string, child: string): boolean {
  const relative = path.relative(comparable(parent), comparable(child));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

/**
 * Why `candidate` is not a plain relative path (absolute, `..`, `.`, empty segments, backslashes,
 * drive letters, control characters, over-long), or undefined when it is one.
 */
export function relativePathProblem(candidate: unknown): string | undefined {
  if (typeof candidate !== 'string') return 'not a string';
  if (candidate.length === 0 || candidate.length > 4096) return 'empty or too long';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(candidate)) return 'control characters';
  if (candidate.includes('\\')) return 'backslash';
  if (candidate.startsWith('/') || path.posix.isAbsolute(candidate) || path.win32.isAbsolute(candidate) || /^[a-zA-Z]:/.test(candidate))
    return 'absolute path';
  const segments = candidate.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return 'not normalised (empty, "." or ".." segment)';
  if (path.posix.normalize(candidate) !== candidate) return 'not normalised';
  return undefined;
}

/** Checks paths from the webview against one run: its dataset root and the images it evaluated. */
export class ImagePathGuard {
  private readonly known: Set<string>;

  /**
   * `datasetRoot` is where the run says its images are; it is used only when it is one of
   * `trustedRoots` (compared after resolving links), which come from the workspace, not the run.
   */
  constructor(
    readonly datasetRoot: string,
    knownPaths: Iterable<string>,
    private readonly trustedRoots: TrustedRoots,
  ) {
    this.known = new Set(knownPaths);
  }

  /** Replaces the set of images the run knows (e.g. when its evaluation arrives). */
  setKnownPaths(paths: Iterable<string>): void {
    this.known.clear();
    for (const p of paths) this.known.add(p);
  }

  /** Adds a path the host itself created (an image moved by the panel). */
  allow(relativePath: string): void {
    this.known.add(relativePath);
  }

  /** True if the path is one the run knows (no file-system check). */
  knows(relativePath: string): boolean {
    return this.known.has(relativePath);
  }

  /** Resolves a path from the webview to an absolute file inside the dataset root, or says why not. */
  async resolve(candidate: unknown): Promise<GuardResult> {
    const problem = relativePathProblem(candidate);
    if (problem) return { ok: false, reason: problem };
    const relativePath = candidate as string;
    if (!this.known.has(relativePath)) return { ok: false, reason: 'not an image of this run' };
    const root = await this.resolvedRoot();
    if (typeof root !== 'string') return root;
    const joined = path.join(root, ...relativePath.split('/'));
    let real: string;
    try {
      real = await fs.realpath(joined);
    } catch {
      return { ok: false, reason: 'file not found' };
    }
    if (!isStrictlyInside(root, real)) return { ok: false, reason: 'outside the dataset root (after resolving links)' };
    try {
      if (!(await fs.stat(real)).isFile()) return { ok: false, reason: 'not a file' };
    } catch {
      return { ok: false, reason: 'file not found' };
    }
    return { ok: true, relativePath, absolutePath: real };
  }

  /**
   * Where "Move to class folder…" would put `relativePath` (true class `fromClass`) for class
   * `toClass`: the same split folder (for a train/val layout), the target class folder, the same
   * file name. Refuses unknown classes, a missing or linked-out class folder and an existing file.
   */
  async moveTarget(relativePath: string, fromClass: string, toClass: string, classes: readonly string[]): Promise<GuardResult> {
    if (!classes.includes(toClass)) return { ok: false, reason: 'unknown class' };
    if (toClass === fromClass) return { ok: false, reason: 'already in that class' };
    if (relativePathProblem(toClass) || toClass.includes('/')) return { ok: false, reason: 'class is not a folder name' };
    const segments = relativePath.split('/');
    const classIndex = classFolderIndex(segments, fromClass);
    if (classIndex === undefined) return { ok: false, reason: 'cannot tell the class folder of this image' };
    const targetRelative = [...segments.slice(0, classIndex), toClass, segments[segments.length - 1]!].join('/');
    const root = await this.resolvedRoot();
    if (typeof root !== 'string') return root;
    const folder = path.join(root, ...targetRelative.split('/').slice(0, -1));
    let realFolder: string;
    try {
      realFolder = await fs.realpath(folder);
      if (!isStrictlyInside(root, realFolder) || !(await fs.stat(realFolder)).isDirectory())
        return { ok: false, reason: 'class folder outside the dataset root' };
    } catch {
      return { ok: false, reason: `class folder ${toClass} not found` };
    }
    const absolutePath = path.join(realFolder, segments[segments.length - 1]!);
    try {
      await fs.lstat(absolutePath);
      return { ok: false, reason: `${targetRelative} already exists` };
    } catch {
      return { ok: true, relativePath: targetRelative, absolutePath };
    }
  }

  /** Checks a move before the user confirms it: the image (resolved) and where it would go. */
  async planMove(
    relativePath: string,
    fromClass: string,
    toClass: string,
    classes: readonly string[],
  ): Promise<{ ok: true; plan: PlannedMove } | { ok: false; reason: string }> {
    const from = await this.resolve(relativePath);
    if (!from.ok) return from;
    const target = await this.moveTarget(relativePath, fromClass, toClass, classes);
    if (!target.ok) return target;
    return { ok: true, plan: { relativePath, from: from.absolutePath, target } };
  }

  /**
   * The same checks again, right before the move: the image and the target must still resolve to
   * the very paths that were checked (a symlink swapped in during the dialog refuses the move).
   */
  async recheckMove(plan: PlannedMove, fromClass: string, toClass: string, classes: readonly string[]): Promise<GuardResult> {
    const again = await this.planMove(plan.relativePath, fromClass, toClass, classes);
    if (!again.ok) return { ok: false, reason: `${again.reason} (changed since the move was confirmed)` };
    if (again.plan.from !== plan.from || again.plan.target.absolutePath !== plan.target.absolutePath)
      return { ok: false, reason: 'the image or its class folder changed since the move was confirmed' };
    return { ok: true, relativePath: plan.target.relativePath, absolutePath: plan.target.absolutePath };
  }

  /**
   * Where "Move out of the dataset" would put `relativePath`: `folder` (links resolved) must be an
   * existing folder that is neither the dataset root nor inside it, and hold no file of that name.
   * `relativePath` in the result is the image's path; `absolutePath` is the target.
   */
  async moveOutTarget(relativePath: string, folder: string): Promise<GuardResult & { from?: string }> {
    const from = await this.resolve(relativePath);
    if (!from.ok) return from;
    const root = await this.resolvedRoot();
    if (typeof root !== 'string') return root;
    let realFolder: string;
    try {
      realFolder = await fs.realpath(folder);
      if (!(await fs.stat(realFolder)).isDirectory()) return { ok: false, reason: 'not a folder' };
    } catch {
      return { ok: false, reason: 'folder not found' };
    }
    if (comparable(realFolder) === comparable(root) || isStrictlyInside(root, realFolder))
      return { ok: false, reason: 'the folder is inside the dataset (choose one outside it)' };
    const absolutePath = path.join(realFolder, path.basename(from.absolutePath));
    try {
      await fs.lstat(absolutePath);
      return { ok: false, reason: `${path.basename(absolutePath)} already exists in that folder` };
    } catch {
      return { ok: true, relativePath, absolutePath, from: from.absolutePath };
    }
  }

  // The trusted root that is the run's dataset folder (after resolving links), else why there is none.
  // Asked each time: the workspace's datasets change, and a root that stopped being one stops counting.
  private async resolvedRoot(): Promise<string | { ok: false; reason: string }> {
    const claimed = await fs.realpath(this.datasetRoot).catch(() => undefined);
    if (!claimed) return { ok: false, reason: 'dataset root not found' };
    for (const trusted of await this.trustedRoots()) {
      const real = await fs.realpath(trusted).catch(() => undefined);
      if (real !== undefined && comparable(real) === comparable(claimed)) return real;
    }
    return { ok: false, reason: UNKNOWN_ROOT_REASON };
  }
}

/** Index of the class folder in an image's path: first in the folders layout, second below a split folder (train/, val/ …). */
function classFolderIndex(segments: readonly string[], fromClass: string): number | undefined {
  if (segments.length < 2) return undefined;
  if (segments.length >= 3 && SPLIT_FOLDER_NAMES.includes(segments[0].toLowerCase()) && segments[1] === fromClass) return 1;
  if (segments[0] === fromClass) return 0;
  return undefined;
}
