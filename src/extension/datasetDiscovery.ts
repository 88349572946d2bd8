// Finds the folders of a workspace that look like image datasets (class subfolders holding images,
// or the train/ + val/ layout), asynchronously and without blocking the extension host: bounded
// concurrent readdir, a yield to the event loop between directories, a depth cap, and never a walk
// into node_modules, .git, hidden folders or the extension's own `.image-trainer` folder.
// Images are counted by file extension here (fast enough for a tree); the engine's scan, which
// reads the bytes, is authoritative.
import type { Dirent } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/** File extensions of the formats the engine decodes (JPEG, PNG, WebP, GIF, TIFF). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff']);

/** Folder names never walked, whatever their depth. */
export const EXCLUDED_FOLDER_NAMES: ReadonlySet<string> = new Set([
  'node_modules',
  '.git',
  '.image-trainer',
  '__pycache__',
  'bower_components',
]);

/** Subfolder names of the explicit split layout. */
export const SPLIT_FOLDER_NAMES = ['train', 'val', 'test'] as const;

export interface DiscoveredClass {
  name: string;
  /** Images (by extension) in the class folder and its subfolders; summed over train/val/test in the explicit layout. */
  imageCount: number;
  /** Images directly in the class folder(s): what makes a folder look like a class. */
  directImageCount: number;
  /** Absolute folders that hold this class (one, or one per split). */
  folders: string[];
}

export interface DiscoveredDataset {
  root: string;
  name: string;
  layout: 'folders' | 'explicit';
  /** Sorted by name, as the engine orders classes. */
  classes: DiscoveredClass[];
  imageCount: number;
}

export interface DiscoveryOptions {
  /** Deepest folder level walked below each root (root = 0). */
  maxDepth?: number;
  /** Concurrent directory reads. */
  concurrency?: number;
  /** Absolute folders not to walk (e.g. custom runs and cache folders). */
  excludeFolders?: readonly string[];
  signal?: AbortSignal;
}

export interface DiscoveryResult {
  datasets: DiscoveredDataset[];
  foldersRead: number;
  filesSeen: number;
  /** True when the depth cap stopped the walk somewhere. */
  truncated: boolean;
}

/** True if the file name has an image extension the engine decodes. */
export function isImageFileName(name: string): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(name).toLowerCase());
}

/** True for a folder name discovery never enters. */
export function isExcludedFolderName(name: string): boolean {
  return name.startsWith('.') || EXCLUDED_FOLDER_NAMES.has(name);
}

interface FolderNode {
  dir: string;
  depth: number;
  /** Images directly in this folder. */
  images: number;
  /** Child folders that were (or will be) walked. */
  children: FolderNode[];
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Walks `root` and returns the datasets under it (the root itself included), outermost only. */
export async function discoverDatasets(root: string, options: DiscoveryOptions = {}): Promise<DiscoveryResult> {
  const maxDepth = options.maxDepth ?? 6;
  const concurrency = Math.max(1, options.concurrency ?? 8);
  const excluded = new Set((options.excludeFolders ?? []).map((f) => path.resolve(f)));
  const rootNode: FolderNode = { dir: path.resolve(root), depth: 0, images: 0, children: [] };
  const queue: FolderNode[] = [rootNode];
  let foldersRead = 0;
  let filesSeen = 0;
  let truncated = false;

  async function readFolder(node: FolderNode): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await fs.readdir(node.dir, { withFileTypes: true });
    } catch {
      return; // unreadable or vanished meanwhile: not a dataset
    }
    foldersRead++;
    for (const entry of entries) {
      if (entry.isFile()) {
        filesSeen++;
        if (isImageFileName(entry.name)) node.images++;
      } else if (entry.isDirectory() && !isExcludedFolderName(entry.name)) {
        const dir = path.join(node.dir, entry.name);
        if (excluded.has(dir)) continue;
        if (node.depth + 1 > maxDepth) {
          truncated = true;
          continue;
        }
        const child: FolderNode = { dir, depth: node.depth + 1, images: 0, children: [] };
        node.children.push(child);
        queue.push(child);
      }
      // Symbolic links are not followed: they can loop, and a dataset is real files.
    }
  }

  // A pool of `concurrency` reads in flight; each read is followed by a turn of the event loop so
  // that a workspace of many small folders never holds the extension host for long.
  await new Promise<void>((resolve, reject) => {
    let active = 0;
    const pump = (): void => {
      if (options.signal?.aborted) {
        if (active === 0) resolve();
        return;
      }
      while (active < concurrency && queue.length > 0) {
        const node = queue.shift() as FolderNode;
        active++;
        readFolder(node)
          .then(yieldToEventLoop)
          .then(() => {
            active--;
            pump();
          }, reject);
      }
      if (active === 0 && queue.length === 0) resolve();
    };
    pump();
  });
  if (options.signal?.aborted) throw new DiscoveryAbortedError();

  const datasets: DiscoveredDataset[] = [];
  const collect = (node: FolderNode): void => {
    const dataset = datasetOf(node);
    if (dataset) {
      datasets.push(dataset);
      return; // a dataset's class folders are not datasets of their own
    }
    for (const child of node.children) collect(child);
  };
  collect(rootNode);
  datasets.sort((a, b) => a.root.localeCompare(b.root));
  return { datasets, foldersRead, filesSeen, truncated };
}

/** Thrown when discovery is aborted through its signal. */
export class DiscoveryAbortedError extends Error {
  constructor() {
    super('Dataset discovery was cancelled.');
    this.name = 'DiscoveryAbortedError';
  }
}

function totalImages(node: FolderNode): number {
  let n = node.images;
  for (const child of node.children) n += totalImages(child);
  return n;
}

function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function datasetOf(node: FolderNode): DiscoveredDataset | undefined {
  const name = path.basename(node.dir);
  const splits = new Map(node.children.map((c) => [path.basename(c.dir).toLowerCase(), c] as const));
  const train = splits.get('train');
  const val = splits.get('val') ?? splits.get('validation');
  if (train && val) {
    const classes = new Map<string, DiscoveredClass>();
    for (const split of [train, val, splits.get('test')]) {
      for (const classNode of split?.children ?? []) {
        const className = path.basename(classNode.dir);
        const entry = classes.get(className) ?? { name: className, imageCount: 0, directImageCount: 0, folders: [] };
        entry.imageCount += totalImages(classNode);
        entry.directImageCount += classNode.images;
        entry.folders.push(classNode.dir);
        classes.set(className, entry);
      }
    }
    const list = [...classes.values()].sort(byName);
    if (list.filter((c) => c.directImageCount > 0).length >= 2) {
      return { root: node.dir, name, layout: 'explicit', classes: list, imageCount: sum(list) };
    }
  }
  const classes = node.children
    .map((c) => ({ name: path.basename(c.dir), imageCount: totalImages(c), directImageCount: c.images, folders: [c.dir] }))
    .sort(byName);
  // Images directly inside at least two subfolders: a parent of datasets (whose images sit deeper) is not one.
  if (classes.filter((c) => c.directImageCount > 0).length >= 2) {
    // Folders without images (e.g. `_meta`, `docs`) are not classes, except where they sit among
    // image classes as an obviously empty class; the engine reports empty classes, and so do we.
    const withImages = classes.filter((c) => c.imageCount > 0);
    const empty = classes.filter((c) => c.imageCount === 0 && !looksLikeNonClassFolder(c.name));
    const list = [...withImages, ...empty].sort(byName);
    return { root: node.dir, name, layout: 'folders', classes: list, imageCount: sum(list) };
  }
  return undefined;
}

function looksLikeNonClassFolder(name: string): boolean {
  return name.startsWith('_') || /^(docs?|meta|metadata|scripts?|src|out|dist|build|runs|models?|cache)$/i.test(name);
}

function sum(classes: readonly DiscoveredClass[]): number {
  return classes.reduce((n, c) => n + c.imageCount, 0);
}
