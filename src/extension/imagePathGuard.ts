// Validates image paths that come back from the (untrusted) webview before the host touches a file:
// a path must be a plain relative `/`-separated path, name an image of the run shown, and resolve
// (symlinks included) to a file inside the run's dataset root. No `vscode` import: unit-tested.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

export type GuardResult = { ok: true; relativePath: string; absolutePath: string } | { ok: false; reason: string };

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
  private realRoot: string | undefined;

  constructor(
    readonly datasetRoot: string,
    knownPaths: Iterable<string>,
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
    if (!root) return { ok: false, reason: 'dataset root not found' };
    const joined = path.join(this.datasetRoot, ...relativePath.split('/'));
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
    return { ok: true, relativePath, absolutePath: joined };
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
    const classIndex = segments.indexOf(fromClass);
    if (classIndex < 0 || classIndex > 1 || classIndex === segments.length - 1)
      return { ok: false, reason: 'cannot tell the class folder of this image' };
    const targetRelative = [...segments.slice(0, classIndex), toClass, segments[segments.length - 1]!].join('/');
    const root = await this.resolvedRoot();
    if (!root) return { ok: false, reason: 'dataset root not found' };
    const folder = path.join(this.datasetRoot, ...targetRelative.split('/').slice(0, -1));
    try {
      const realFolder = await fs.realpath(folder);
      if (!isStrictlyInside(root, realFolder) || !(await fs.stat(realFolder)).isDirectory())
        return { ok: false, reason: 'class folder outside the dataset root' };
    } catch {
      return { ok: false, reason: `class folder ${toClass} not found` };
    }
    const absolutePath = path.join(this.datasetRoot, ...targetRelative.split('/'));
    try {
      await fs.lstat(absolutePath);
      return { ok: false, reason: `${targetRelative} already exists` };
    } catch {
      return { ok: true, relativePath: targetRelative, absolutePath };
    }
  }

  private async resolvedRoot(): Promise<string | undefined> {
    if (this.realRoot === undefined) this.realRoot = await fs.realpath(this.datasetRoot).catch(() => undefined);
    return this.realRoot;
  }
}
