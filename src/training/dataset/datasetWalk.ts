// The walk of a dataset folder: which layout it has, which class folders it holds, and every file
// in them that may be an image (a candidate), with what was left out on the way. Reads folder
// listings and `stat` only; no file is opened here. See docs/dataset.md for the rules.
import type { BigIntStats, Dirent } from 'node:fs';
import { readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { externalLinkDetail, isIgnoredName } from '../../shared/datasetRules';
import type { SkippedFile } from '../../shared/types';
import { throwIfCancelled } from '../util/errors';
import { isInside } from '../util/paths';
import { forEachConcurrent } from './boundedConcurrency';

export type Side = 'train' | 'val' | 'test';

const SIDE_NAMES: Record<string, Side> = { train: 'train', val: 'val', valid: 'val', validation: 'val', test: 'test' };
/** Entries of one folder stat'ed at the same time: keeps libuv's pool busy without queueing a whole 20,000-file folder at once. */
const STAT_CONCURRENCY = 64;

/** Code-unit order: the same on every machine, whatever the locale. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The errno code of a failed file operation, or its message. */
export function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error));
}

export interface Entry {
  name: string;
  abs: string;
  rel: string;
  kind: 'dir' | 'file' | 'other';
  /** `dev:ino` of the target (symlinks followed). */
  key: string;
  /** Of the target (symlinks followed). */
  stats: BigIntStats;
  /** The entry itself is a symlink. */
  link: boolean;
  /** For `other`: what it is. */
  what?: string;
}

/** A file found in a class folder, not yet opened. */
export interface Candidate {
  abs: string;
  rel: string;
  className: string;
  /** Undefined when the split is computed. */
  side?: Side;
  size: number;
  /** `dev:ino:size:mtimeNs:ctimeNs` from the walk's stat: equal identities, same content. */
  identity: string;
  ctimeNs: bigint;
  /** The dataset folder's real path when the file must stay inside it (external links not followed): checked again before it is opened. */
  within?: string;
}

/** What the walk found and left out; filled in as it goes. */
export interface Walk {
  skipped: SkippedFile[];
  ignored: number;
  candidates: Candidate[];
  /** Every class folder met, empty ones included. */
  classNames: Set<string>;
  /** Files where a class folder was expected (the root, or directly in train/ …): they belong to no class. */
  looseFiles: number;
  /** Root folders left out because the layout is explicit. */
  otherDirs: string[];
  signal?: AbortSignal;
  /** The dataset folder's real path, when symlinks out of it are not followed. */
  within?: string;
}

/** An empty walk; with `within` (the root's real path), symlinks leading out of it are skipped as `external-symlink`. */
export function newWalk(signal?: AbortSignal, within?: string): Walk {
  return { skipped: [], ignored: 0, candidates: [], classNames: new Set(), looseFiles: 0, otherDirs: [], signal, within };
}

function describeOther(st: BigIntStats): string {
  if (st.isFIFO()) return 'a named pipe (FIFO)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device file';
  return 'not a regular file';
}

function toRel(parentRel: string, name: string): string {
  return parentRel ? `${parentRel}/${name}` : name;
}

/** Lists one folder sorted by name, following symlinks; problems with single entries become skipped files. */
export async function listDir(walk: Walk, abs: string, rel: string): Promise<Entry[] | undefined> {
  throwIfCancelled(walk.signal);
  let dirents: Dirent[];
  try {
    dirents = await readdir(abs, { withFileTypes: true });
  } catch (error) {
    walk.skipped.push({ path: rel || '.', reason: 'unreadable', detail: `folder cannot be read (${errnoCode(error)})` });
    return undefined;
  }
  dirents.sort((a, b) => compareNames(a.name, b.name));
  const entries: (Entry | undefined)[] = new Array(dirents.length);
  const statOne = async (dirent: Dirent, i: number): Promise<void> => {
    entries[i] = await toEntry(walk, dirent, abs, rel);
  };
  await forEachConcurrent(dirents, STAT_CONCURRENCY, statOne, walk.signal);
  return entries.filter((e): e is Entry => e !== undefined);
}

// One folder entry with its target's stat, or undefined when it is ignored or cannot be followed.
async function toEntry(walk: Walk, dirent: Dirent, parentAbs: string, parentRel: string): Promise<Entry | undefined> {
  const { name } = dirent;
  if (isIgnoredName(name)) {
    walk.ignored++;
    return undefined;
  }
  const abs = path.join(parentAbs, name);
  const rel = toRel(parentRel, name);
  const link = dirent.isSymbolicLink();
  if (link && walk.within !== undefined && !(await staysInside(walk, abs, rel, walk.within))) return undefined;
  let st: BigIntStats;
  try {
    st = await stat(abs, { bigint: true });
  } catch (error) {
    await reportStatError(walk, abs, rel, link, error);
    return undefined;
  }
  const base = { name, abs, rel, key: `${st.dev}:${st.ino}`, stats: st, link };
  if (st.isDirectory()) return { ...base, kind: 'dir' };
  if (st.isFile()) return { ...base, kind: 'file' };
  return { ...base, kind: 'other', what: describeOther(st) };
}

// True when the symlink `abs` resolves inside `within`; otherwise it is reported (outside, dangling
// or looping) without its target ever being stat'ed or opened.
async function staysInside(walk: Walk, abs: string, rel: string, within: string): Promise<boolean> {
  let real: string;
  try {
    real = await realpath(abs);
  } catch (error) {
    await reportStatError(walk, abs, rel, true, error);
    return false;
  }
  if (isInside(within, real)) return true;
  const target = await readlink(abs).catch(() => undefined);
  walk.skipped.push({ path: rel, reason: 'external-symlink', detail: externalLinkDetail(target) });
  return false;
}

async function reportStatError(walk: Walk, abs: string, rel: string, link: boolean, error: unknown): Promise<void> {
  const code = errnoCode(error);
  const target = link ? await readlink(abs).catch(() => undefined) : undefined;
  if (code === 'ENOENT' && link) {
    walk.skipped.push({
      path: rel,
      reason: 'dangling-symlink',
      detail: `symlink to ${target ?? 'a missing target'}, which does not exist`,
    });
  } else if (code === 'ELOOP') {
    walk.skipped.push({
      path: rel,
      reason: 'symlink-loop',
      detail: `symlink${target === undefined ? '' : ` to ${target}`} never reaches a file (a chain of links that loops)`,
    });
  } else if (code !== 'ENOENT') {
    walk.skipped.push({ path: rel, reason: 'unreadable', detail: `cannot be read (${code})` });
  } // else: deleted between readdir and stat, nothing to report.
}

// Walks one class folder recursively, collecting candidate files. Real folders and files come
// first and symlinks after, so an image reachable both ways keeps its real path.
async function walkClass(walk: Walk, dir: Entry, className: string, side: Side | undefined, ancestors: Map<string, string>): Promise<void> {
  const ancestor = ancestors.get(dir.key);
  if (ancestor !== undefined) {
    walk.skipped.push({ path: dir.rel, reason: 'symlink-loop', detail: `links back to ${ancestor || 'the dataset folder'}: not followed` });
    return;
  }
  const visitedDirs = new Set<string>([...ancestors.keys(), dir.key]);
  const files: Entry[] = [];
  const linkedDirs: { entry: Entry; onPath: Map<string, string> }[] = [];
  const visit = async (folder: Entry, onPath: Map<string, string>): Promise<void> => {
    const entries = await listDir(walk, folder.abs, folder.rel);
    for (const entry of entries ?? []) {
      if (entry.kind === 'file') files.push(entry);
      else if (entry.kind === 'other')
        walk.skipped.push({ path: entry.rel, reason: 'not-image', detail: `${entry.what}, not an image file` });
      else if (entry.link) linkedDirs.push({ entry, onPath });
      else if (!visitedDirs.has(entry.key)) {
        visitedDirs.add(entry.key);
        await visit(entry, new Map(onPath).set(entry.key, entry.rel));
      } else walk.ignored++; // a bind mount or hard-linked folder seen before
    }
  };
  await visit(dir, new Map(ancestors).set(dir.key, dir.rel));
  // Followed only after every real folder of the class is known; following may find more links.
  for (let i = 0; i < linkedDirs.length; i++) {
    const { entry, onPath } = linkedDirs[i];
    const target = onPath.get(entry.key);
    if (target !== undefined) {
      walk.skipped.push({
        path: entry.rel,
        reason: 'symlink-loop',
        detail: `links back to ${target || 'the dataset folder'}, a folder on its own path: not followed`,
      });
    } else if (visitedDirs.has(entry.key)) {
      walk.ignored++;
    } else {
      visitedDirs.add(entry.key);
      await visit(entry, new Map(onPath).set(entry.key, entry.rel));
    }
  }
  const seenFiles = new Set<string>();
  for (const file of [...files.filter((f) => !f.link), ...files.filter((f) => f.link)]) {
    if (seenFiles.has(file.key)) {
      walk.ignored++;
      continue;
    }
    seenFiles.add(file.key);
    const st = file.stats;
    walk.candidates.push({
      abs: file.abs,
      rel: file.rel,
      className,
      side,
      size: Number(st.size),
      identity: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
      ctimeNs: st.ctimeNs,
      ...(walk.within !== undefined ? { within: walk.within } : {}),
    });
  }
}

/** How the root is organised: class folders, or train/ + val/ (+ test/) holding class folders. */
export interface Layout {
  explicit: boolean;
  /** The first train/, val/ and test/ folder (by name, any accepted spelling) of the root. */
  sideDirs: Map<Side, Entry>;
}

/** Explicit when the root holds train/ and a val/ or test/ folder; otherwise every first-level folder is a class. */
export function detectLayout(top: readonly Entry[]): Layout {
  const sideDirs = new Map<Side, Entry>();
  for (const entry of top) {
    const side = SIDE_NAMES[entry.name.toLowerCase()];
    if (entry.kind === 'dir' && side && !sideDirs.has(side)) sideDirs.set(side, entry);
  }
  return { explicit: sideDirs.has('train') && (sideDirs.has('val') || sideDirs.has('test')), sideDirs };
}

/** Walks every class folder of the layout below the root's entries `top`; `rootKey` is the root's `dev:ino`. */
export async function walkDataset(walk: Walk, top: readonly Entry[], layout: Layout, rootKey: string): Promise<void> {
  const rootAncestors = new Map([[rootKey, '']]);
  if (!layout.explicit) return walkClassFolders(walk, top, undefined, rootAncestors);
  const sideDirs = [...layout.sideDirs.values()];
  for (const entry of top) {
    if (entry.kind === 'dir' && sideDirs.includes(entry)) continue;
    walk.ignored++;
    if (entry.kind === 'dir') walk.otherDirs.push(entry.name);
    else walk.looseFiles++;
  }
  for (const side of ['train', 'val', 'test'] as const) {
    const sideDir = layout.sideDirs.get(side);
    if (!sideDir) continue;
    const entries = await listDir(walk, sideDir.abs, sideDir.rel);
    await walkClassFolders(walk, entries ?? [], side, new Map(rootAncestors).set(sideDir.key, sideDir.rel));
  }
}

// Each folder among `entries` is a class; anything else there belongs to no class.
async function walkClassFolders(
  walk: Walk,
  entries: readonly Entry[],
  side: Side | undefined,
  ancestors: Map<string, string>,
): Promise<void> {
  for (const entry of entries) {
    if (entry.kind !== 'dir') {
      walk.ignored++;
      walk.looseFiles++;
      continue;
    }
    walk.classNames.add(entry.name);
    await walkClass(walk, entry, entry.name, side, ancestors);
  }
}
