// A quick health check of one dataset for the tree: files that are empty or not images (by their
// first bytes, not their name), empty or tiny classes, strong imbalance, and identical files in
// different classes (same size, then same sha256). Cheap enough to run in the background when a
// dataset appears; the engine's scan before training remains the authoritative report. Both apply
// the rules and speak the sentences of src/shared/datasetRules.ts, so the tree and the run report
// agree about the same folder; the quick check only reads less (no image headers, no symlinks:
// those inside the dataset are passed over, those leading out of it are reported, never opened).
import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  type ClassCount,
  datasetWarnings,
  type DatasetWarning,
  EMPTY_FILE_DETAIL,
  externalLinkDetail,
  imbalanceOf,
  isIgnoredName,
  notImageDetail,
  SNIFF_BYTES,
  sniffImage,
  TINY_CLASS_IMAGES,
  tinyClassesOf,
} from '../shared/datasetRules';
import type { DiscoveredDataset } from './datasetDiscovery';

export interface FileProblem {
  /** Relative to the dataset root, `/`-separated. */
  path: string;
  className: string;
  reason: 'empty' | 'not-image' | 'unreadable' | 'external-symlink';
  detail: string;
}

export interface DuplicateFiles {
  /** Relative paths of identical files. */
  paths: string[];
  classes: string[];
}

export interface DatasetHealth {
  /** Files looked at (hidden files and OS metadata excluded). */
  files: number;
  /** Files whose bytes say JPEG, PNG, WebP, GIF or TIFF, per class. */
  imagesPerClass: Record<string, number>;
  fileProblems: FileProblem[];
  emptyClasses: string[];
  tinyClasses: string[];
  /** Largest class over smallest non-empty class, when above the threshold. */
  imbalance?: { ratio: number; largest: string; smallest: string };
  duplicates: DuplicateFiles[];
  /** The dataset's warnings by kind, with the classes they name (what `warnings` says, less the truncation note). */
  findings: DatasetWarning[];
  /** What is wrong with each class, in words (classes without problems are absent). */
  classWarnings: Record<string, string[]>;
  /** What is wrong with the dataset, in words, one line each; empty when healthy. */
  warnings: string[];
  /** True when `maxFiles` stopped the check before every file was read. */
  truncated: boolean;
}

export interface HealthOptions {
  concurrency?: number;
  /** Files read at most (the rest are counted as unchecked). */
  maxFiles?: number;
  signal?: AbortSignal;
}

interface FileEntry {
  abs: string;
  rel: string;
  className: string;
  size: number;
}

async function listFiles(dir: string, depth: number, out: string[], links: string[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (isIgnoredName(e.name)) continue;
    const abs = path.join(dir, e.name);
    if (e.isFile()) out.push(abs);
    else if (e.isSymbolicLink()) links.push(abs);
    else if (e.isDirectory() && depth < 4) await listFiles(abs, depth + 1, out, links);
  }
}

// Opened without following a link: a file swapped for a symlink since it was listed is not read through it.
const NO_FOLLOW = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0);

async function readHead(file: string): Promise<Uint8Array> {
  const handle = await fs.open(file, NO_FOLLOW);
  try {
    const buffer = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, SNIFF_BYTES, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function sha256Of(file: string): Promise<string> {
  const handle = await fs.open(file, NO_FOLLOW);
  try {
    const hash = createHash('sha256');
    for await (const chunk of handle.createReadStream({ autoClose: false })) hash.update(chunk as Buffer);
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length && !signal?.aborted) {
      const item = items[next++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// Every file under the class folders, hidden files and OS metadata left out; symlinks that lead
// out of the dataset as problems of their own (their targets are resolved, never opened).
async function collectFiles(dataset: DiscoveredDataset): Promise<{ files: FileEntry[]; external: FileProblem[] }> {
  const files: FileEntry[] = [];
  const external: FileProblem[] = [];
  const rootReal = await fs.realpath(dataset.root).catch(() => path.resolve(dataset.root));
  for (const cls of dataset.classes) {
    for (const folder of cls.folders) {
      const found: string[] = [];
      const links: string[] = [];
      await listFiles(folder, 0, found, links);
      const relOf = (abs: string) => path.relative(dataset.root, abs).split(path.sep).join('/');
      for (const abs of found) files.push({ abs, rel: relOf(abs), className: cls.name, size: -1 });
      for (const abs of links) {
        const real = await fs.realpath(abs).catch(() => undefined);
        if (real === undefined || isInsideFolder(rootReal, real)) continue;
        const target = await fs.readlink(abs).catch(() => undefined);
        external.push({ path: relOf(abs), className: cls.name, reason: 'external-symlink', detail: externalLinkDetail(target) });
      }
    }
  }
  return { files, external };
}

function isInsideFolder(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

// Sorts files into images (counted per class) and problems, by their size and first bytes.
async function sortFiles(
  files: readonly FileEntry[],
  imagesPerClass: Record<string, number>,
  options: HealthOptions,
): Promise<{ images: FileEntry[]; fileProblems: FileProblem[] }> {
  const fileProblems: FileProblem[] = [];
  const images: FileEntry[] = [];
  const problem = (file: FileEntry, reason: FileProblem['reason'], detail: string): void => {
    fileProblems.push({ path: file.rel, className: file.className, reason, detail });
  };
  const sortOne = async (file: FileEntry): Promise<void> => {
    try {
      file.size = (await fs.lstat(file.abs)).size;
      if (file.size === 0) return problem(file, 'empty', EMPTY_FILE_DETAIL);
      const sniffed = sniffImage(await readHead(file.abs));
      if (!sniffed.image) return problem(file, 'not-image', notImageDetail(sniffed.what));
      imagesPerClass[file.className]++;
      images.push(file);
    } catch (error) {
      problem(file, 'unreadable', (error as Error).message);
    }
  };
  await forEachLimited(files, options.concurrency ?? 16, sortOne, options.signal);
  fileProblems.sort((a, b) => a.path.localeCompare(b.path));
  return { images, fileProblems };
}

// Identical images in different classes: only files sharing a size with a file of another class are hashed.
async function crossClassDuplicates(images: readonly FileEntry[], options: HealthOptions): Promise<DuplicateFiles[]> {
  const bySize = new Map<number, FileEntry[]>();
  for (const image of images) bySize.set(image.size, [...(bySize.get(image.size) ?? []), image]);
  const candidates = [...bySize.values()].filter((group) => new Set(group.map((f) => f.className)).size > 1).flat();
  const byHash = new Map<string, FileEntry[]>();
  const hashOne = async (file: FileEntry): Promise<void> => {
    try {
      const key = `${file.size}:${await sha256Of(file.abs)}`;
      byHash.set(key, [...(byHash.get(key) ?? []), file]);
    } catch {
      // vanished meanwhile; the next check sees it
    }
  };
  await forEachLimited(candidates, Math.min(options.concurrency ?? 16, 4), hashOne, options.signal);
  return [...byHash.values()]
    .filter((group) => new Set(group.map((f) => f.className)).size > 1)
    .map((group) => ({
      paths: group.map((f) => f.rel).sort(),
      classes: [...new Set(group.map((f) => f.className))].sort(),
    }))
    .sort((a, b) => a.paths[0].localeCompare(b.paths[0]));
}

// What is wrong with each class, in words, for the class's tooltip.
function classWarningsOf(
  counts: readonly ClassCount[],
  fileProblems: readonly FileProblem[],
  duplicates: readonly DuplicateFiles[],
): Record<string, string[]> {
  const classWarnings: Record<string, string[]> = {};
  const warn = (cls: string, message: string): void => {
    (classWarnings[cls] ??= []).push(message);
  };
  for (const problem of fileProblems) warn(problem.className, `${problem.path}: ${problem.detail}`);
  for (const c of counts) if (c.images === 0) warn(c.name, 'no images: the class cannot be learned');
  for (const c of tinyClassesOf(counts)) warn(c.name, `only ${plural(c.images, 'image')} (fewer than ${TINY_CLASS_IMAGES})`);
  const imbalance = imbalanceOf(counts);
  if (imbalance) warn(imbalance.smallest.name, `${imbalance.ratio.toFixed(1)}× fewer images than ${imbalance.largest.name}`);
  for (const group of duplicates) {
    for (const cls of group.classes) warn(cls, `identical files in ${group.classes.join(' and ')}: ${group.paths.join(', ')}`);
  }
  return classWarnings;
}

/** Checks a discovered dataset's files; never writes anything. */
export async function checkDatasetHealth(dataset: DiscoveredDataset, options: HealthOptions = {}): Promise<DatasetHealth> {
  const maxFiles = options.maxFiles ?? 50_000;
  const { files, external } = await collectFiles(dataset);
  const truncated = files.length > maxFiles;
  const checked = truncated ? files.slice(0, maxFiles) : files;

  const imagesPerClass: Record<string, number> = Object.fromEntries(dataset.classes.map((c) => [c.name, 0]));
  const sorted = await sortFiles(checked, imagesPerClass, options);
  const { images } = sorted;
  const fileProblems = [...sorted.fileProblems, ...external].sort((a, b) => a.path.localeCompare(b.path));
  const duplicates = await crossClassDuplicates(images, options);
  const counts = dataset.classes.map((c) => ({ name: c.name, images: imagesPerClass[c.name] }));
  const findings = datasetWarnings({ classes: counts, skipped: fileProblems, duplicates });
  const imbalance = imbalanceOf(counts);

  const warnings = findings.map((f) => f.text);
  if (truncated) warnings.push(`Quick check stopped after ${maxFiles} files; training checks every file`);
  return {
    files: checked.length,
    imagesPerClass,
    fileProblems,
    emptyClasses: counts.filter((c) => c.images === 0).map((c) => c.name),
    tinyClasses: tinyClassesOf(counts).map((c) => c.name),
    imbalance: imbalance && { ratio: imbalance.ratio, largest: imbalance.largest.name, smallest: imbalance.smallest.name },
    duplicates,
    findings,
    classWarnings: classWarningsOf(counts, fileProblems, duplicates),
    warnings,
    truncated,
  };
}
