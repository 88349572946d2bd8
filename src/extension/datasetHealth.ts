// A quick health check of one dataset for the tree: files that are empty or not images (by their
// first bytes, not their name), empty or tiny classes, strong imbalance, and identical files in
// different classes (same size, then same sha256). Cheap enough to run in the background when a
// dataset appears; the engine's scan before training remains the authoritative report.
import { createHash } from 'node:crypto';
import { createReadStream, type Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { DiscoveredDataset } from './datasetDiscovery';

export interface FileProblem {
  /** Relative to the dataset root, `/`-separated. */
  path: string;
  className: string;
  reason: 'empty' | 'not-image' | 'unreadable';
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
  /** What is wrong with each class, in words (classes without problems are absent). */
  classWarnings: Record<string, string[]>;
  /** What is wrong with the dataset, in words, one line each; empty when healthy. */
  warnings: string[];
  /** True when `maxFiles` stopped the check before every file was read. */
  truncated: boolean;
}

export interface HealthOptions {
  /** Classes with fewer images are called tiny. */
  tinyClassSize?: number;
  /** Largest/smallest class ratio above which the dataset is called imbalanced. */
  imbalanceRatio?: number;
  concurrency?: number;
  /** Files read at most (the rest are counted as unchecked). */
  maxFiles?: number;
  signal?: AbortSignal;
}

const OS_METADATA = new Set(['thumbs.db', 'desktop.ini', 'ehthumbs.db']);

function startsWith(head: Uint8Array, bytes: readonly number[]): boolean {
  return head.length >= bytes.length && bytes.every((b, i) => head[i] === b);
}

/** Names the image format from a file's first 12 bytes, or undefined when they are not one the engine decodes. */
export function imageFormatOf(head: Uint8Array): 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | undefined {
  const ascii = (from: number, to: number): string => String.fromCharCode(...head.subarray(from, to));
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a') return 'gif';
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(head, [0x49, 0x49, 0x2b, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  return undefined;
}

interface FileEntry {
  abs: string;
  rel: string;
  className: string;
  size: number;
}

async function listFiles(dir: string, depth: number, out: string[]): Promise<void> {
  let entries: Dirent[];
  try {
    entries = await fs.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name.startsWith('.') || OS_METADATA.has(e.name.toLowerCase())) continue;
    const abs = path.join(dir, e.name);
    if (e.isFile()) out.push(abs);
    else if (e.isDirectory() && depth < 4) await listFiles(abs, depth + 1, out);
  }
}

async function readHead(file: string): Promise<Uint8Array> {
  const handle = await fs.open(file, 'r');
  try {
    const buffer = Buffer.alloc(16);
    const { bytesRead } = await handle.read(buffer, 0, 16, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

function sha256Of(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
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

/** Checks a discovered dataset's files; never writes anything. */
export async function checkDatasetHealth(dataset: DiscoveredDataset, options: HealthOptions = {}): Promise<DatasetHealth> {
  const tinyClassSize = options.tinyClassSize ?? 10;
  const imbalanceRatio = options.imbalanceRatio ?? 3;
  const concurrency = options.concurrency ?? 16;
  const maxFiles = options.maxFiles ?? 50_000;

  const files: FileEntry[] = [];
  for (const cls of dataset.classes) {
    for (const folder of cls.folders) {
      const found: string[] = [];
      await listFiles(folder, 0, found);
      for (const abs of found)
        files.push({ abs, rel: path.relative(dataset.root, abs).split(path.sep).join('/'), className: cls.name, size: -1 });
    }
  }
  const truncated = files.length > maxFiles;
  const checked = truncated ? files.slice(0, maxFiles) : files;

  const imagesPerClass: Record<string, number> = Object.fromEntries(dataset.classes.map((c) => [c.name, 0]));
  const fileProblems: FileProblem[] = [];
  const images: FileEntry[] = [];
  await forEachLimited(
    checked,
    concurrency,
    async (file) => {
      try {
        const stat = await fs.stat(file.abs);
        file.size = stat.size;
        if (stat.size === 0) {
          fileProblems.push({ path: file.rel, className: file.className, reason: 'empty', detail: 'an empty file (0 bytes)' });
          return;
        }
        const format = imageFormatOf(await readHead(file.abs));
        if (!format) {
          fileProblems.push({
            path: file.rel,
            className: file.className,
            reason: 'not-image',
            detail: 'not a JPEG, PNG, WebP, GIF or TIFF image',
          });
          return;
        }
        imagesPerClass[file.className]++;
        images.push(file);
      } catch (error) {
        fileProblems.push({ path: file.rel, className: file.className, reason: 'unreadable', detail: (error as Error).message });
      }
    },
    options.signal,
  );
  fileProblems.sort((a, b) => a.path.localeCompare(b.path));

  // Duplicates: only files sharing a size with a file of another class are hashed.
  const bySize = new Map<number, FileEntry[]>();
  for (const image of images) bySize.set(image.size, [...(bySize.get(image.size) ?? []), image]);
  const candidates = [...bySize.values()].filter((group) => new Set(group.map((f) => f.className)).size > 1).flat();
  const byHash = new Map<string, FileEntry[]>();
  await forEachLimited(
    candidates,
    Math.min(concurrency, 4),
    async (file) => {
      try {
        const key = `${file.size}:${await sha256Of(file.abs)}`;
        byHash.set(key, [...(byHash.get(key) ?? []), file]);
      } catch {
        // vanished meanwhile; the next check sees it
      }
    },
    options.signal,
  );
  const duplicates: DuplicateFiles[] = [...byHash.values()]
    .filter((group) => new Set(group.map((f) => f.className)).size > 1)
    .map((group) => ({
      paths: group.map((f) => f.rel).sort(),
      classes: [...new Set(group.map((f) => f.className))].sort(),
    }))
    .sort((a, b) => a.paths[0].localeCompare(b.paths[0]));

  const names = dataset.classes.map((c) => c.name);
  const emptyClasses = names.filter((n) => imagesPerClass[n] === 0);
  const tinyClasses = names.filter((n) => imagesPerClass[n] > 0 && imagesPerClass[n] < tinyClassSize);
  const nonEmpty = names.filter((n) => imagesPerClass[n] > 0);
  let imbalance: DatasetHealth['imbalance'];
  if (nonEmpty.length >= 2) {
    const largest = nonEmpty.reduce((a, b) => (imagesPerClass[b] > imagesPerClass[a] ? b : a));
    const smallest = nonEmpty.reduce((a, b) => (imagesPerClass[b] < imagesPerClass[a] ? b : a));
    const ratio = imagesPerClass[largest] / imagesPerClass[smallest];
    if (ratio > imbalanceRatio) imbalance = { ratio, largest, smallest };
  }

  const classWarnings: Record<string, string[]> = {};
  const warn = (cls: string, message: string): void => {
    (classWarnings[cls] ??= []).push(message);
  };
  for (const problem of fileProblems) warn(problem.className, `${problem.path}: ${problem.detail}`);
  for (const cls of emptyClasses) warn(cls, 'no images: the class cannot be learned');
  for (const cls of tinyClasses) warn(cls, `only ${plural(imagesPerClass[cls], 'image')} (fewer than ${tinyClassSize})`);
  if (imbalance) {
    warn(imbalance.smallest, `${imbalance.ratio.toFixed(1)}× fewer images than ${imbalance.largest}`);
  }
  for (const group of duplicates) {
    for (const cls of group.classes) warn(cls, `identical files in ${group.classes.join(' and ')}: ${group.paths.join(', ')}`);
  }

  const warnings: string[] = [];
  if (fileProblems.length > 0) {
    const empty = fileProblems.filter((p) => p.reason === 'empty').length;
    const notImage = fileProblems.filter((p) => p.reason === 'not-image').length;
    const unreadable = fileProblems.filter((p) => p.reason === 'unreadable').length;
    const parts = [
      empty && `${empty} empty`,
      notImage && `${notImage} not ${notImage === 1 ? 'an image' : 'images'}`,
      unreadable && `${unreadable} unreadable`,
    ].filter(Boolean);
    warnings.push(`${plural(fileProblems.length, 'file')} will be skipped: ${parts.join(', ')}`);
  }
  if (emptyClasses.length > 0) warnings.push(`${plural(emptyClasses.length, 'empty class', 'empty classes')}: ${emptyClasses.join(', ')}`);
  if (tinyClasses.length > 0)
    warnings.push(`${plural(tinyClasses.length, 'class', 'classes')} with fewer than ${tinyClassSize} images: ${tinyClasses.join(', ')}`);
  if (imbalance) {
    warnings.push(
      `Imbalanced: ${imbalance.largest} has ${imbalance.ratio.toFixed(1)}× the images of ${imbalance.smallest} (consider the classWeights setting)`,
    );
  }
  if (duplicates.length > 0) warnings.push(`${plural(duplicates.length, 'file')} duplicated across classes (label noise)`);
  if (truncated) warnings.push(`Quick check stopped after ${maxFiles} files; training checks every file`);

  return {
    files: checked.length,
    imagesPerClass,
    fileProblems,
    emptyClasses,
    tinyClasses,
    imbalance,
    duplicates,
    classWarnings,
    warnings,
    truncated,
  };
}
