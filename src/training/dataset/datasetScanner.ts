import { createHash } from 'node:crypto';
import type { BigIntStats, Dirent } from 'node:fs';
import { mkdir, open, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Metadata } from 'sharp';
import { sharp } from './lazySharp';
import type { ClassSummary, DatasetReport, DuplicateGroup, SkippedFile, SkipReason } from '../../shared/types';
import { stratifiedSplit } from './datasetSplit';
import { type ImageFormat, SNIFF_BYTES, SUPPORTED_FORMATS, sniffImage } from './imageSniffer';
import { writeFileAtomic } from '../util/atomicWrite';
import { isInside } from '../util/paths';
import { countedSkipReason, SKIP_REASON_WORDS } from '../../shared/skipReasons';

/**
 * Dataset scan: turns a folder of class subfolders into a list of usable images, their split and
 * a report of everything that was left out and why. It only ever reads (no file or folder in the
 * dataset is created, modified, renamed or deleted; access times may be updated by the OS).
 *
 * Layouts
 * - `folders`: every first-level subfolder of the root is a class; class names are the folder
 *   names sorted by UTF-16 code units (locale-independent, so the class order is the same on
 *   every machine). The split is computed (see datasetSplit.ts).
 * - `explicit`: the root holds `train/` and `val/` (also accepted: `valid/`, `validation/`; names
 *   case-insensitive), optionally `test/`, each holding class folders. The class list is the union
 *   of their class folders; each image's side is its folder and `valSplit` is not used. A root with
 *   `train/` and `test/` but no validation folder is explicit too: validation is then carved out of
 *   `train/` with the seeded split.
 *
 * What counts as an image: a regular file whose first bytes are a JPEG, PNG, WebP, GIF or TIFF
 * signature (see imageSniffer.ts); names and extensions do not matter. Its header is read with
 * sharp (no pixels are decoded) to get its size; its content is hashed (sha256, streamed).
 *
 * Ignored silently and counted in `report.ignored`: hidden entries (any name starting with `.`,
 * e.g. `.DS_Store`, `.git/`), OS metadata (`Thumbs.db`, `ehthumbs.db`, `desktop.ini`,
 * `__MACOSX/`), files lying directly in the root (or in `train/`…), which belong to no class
 * (a warning says how many), other root folders in the explicit layout (with a warning), and a
 * file or folder reached a second time inside one class through a symlink.
 *
 * Reported as skipped, with a reason: `empty` (0 bytes), `not-image` (content is not one of the
 * five formats, or not a regular file: FIFO, socket, device), `corrupt` (image signature but
 * sharp cannot read the header), `too-many-pixels` (header says width × height > `maxPixels`:
 * refused without decoding, the decompression-bomb guard), `unreadable` (open/read/readdir fails,
 * e.g. EACCES), `dangling-symlink`, `symlink-loop` (a link back to a folder on its own path, or
 * links that point at each other). Truncated image data is not detectable from the header: the
 * decoder reports it (DecodeError `corrupt`) when the image is first decoded.
 * Note: permission bits do not stop root (CAP_DAC_OVERRIDE), so run as root a chmod-000 file is
 * simply read; `unreadable` appears for an ordinary user or for real I/O errors.
 *
 * The index (`ScanOptions.index`, like git's): one file per dataset root in a folder outside the
 * dataset, mapping each good image's path to what inspecting it found (hash, sizes, format) and
 * the identity its `stat` had then (device, inode, size, mtime and ctime in nanoseconds). A file
 * whose identity is unchanged is not opened again: a rescan of an unchanged dataset costs the
 * folder walk. Any write to a file changes its ctime (which no program can set back), so content
 * rewritten in place with the same size and a restored mtime is still seen. Files that could not
 * be inspected are never indexed, so their reasons are always current; `maxPixels` is applied to
 * the stored header size on every scan. A file changed less than a timestamp tick before the scan
 * began is not indexed (git's "racily clean" case: a second change within the same tick could
 * leave the same identity). A missing, unreadable or damaged index only costs time, and so does
 * one that cannot be written. Timestamps from a server whose clock is far from ours (network
 * folders) weaken that last guard; identity and size still must match.
 *
 * Nested folders inside a class are walked recursively and their images belong to that class
 * (`cats/indoor/a.jpg` is a cat), so sub-grouping within a class is harmless.
 * Symlinks are followed, to files and to folders, inside or outside the root (datasets are often
 * assembled from links). Loops cannot hang the scan: the real identity (device + inode) of every
 * folder visited while walking a class is remembered and never entered twice; a link to a folder
 * on its own path is reported as `symlink-loop`, one to a folder already walked elsewhere in the
 * class is ignored, and a file reached twice within a class (same device + inode, so hard links
 * too) is used once. Real folders and files win over links to them (links are followed after the
 * real tree of the class), so an image keeps its real path when it is reachable both ways.
 * Across classes nothing is deduplicated: the same file in two classes is kept in both and
 * reported in `report.duplicates` (identical content, usually label noise), and the split puts
 * both copies on the same side.
 *
 * Classes left without a usable image are listed in `report.emptyClasses` and dropped; fewer than
 * 2 usable classes is a `DatasetError`. Warnings: imbalance (largest class > 3× the smallest),
 * tiny classes (< 5 images), identical files within a class, the same content in train/ and
 * val/ (explicit layout), a class missing from val/.
 */

export interface DatasetItem {
  abs: string;
  /** `/`-separated, relative to the dataset root. */
  rel: string;
  classIndex: number;
  split: 'train' | 'val' | 'test';
  sha256: string;
  bytes: number;
  /** Size as displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
  format: ImageFormat;
}

export interface ScanOptions {
  /** Fraction of each class held out for validation in the `folders` layout, in [0, 1). */
  valSplit: number;
  seed: number;
  /** Images whose header claims more pixels than this are skipped as `too-many-pixels`. */
  maxPixels: number;
  /** Called after the folder walk with `done = 0` and after each file is inspected. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /**
   * Folder (outside the dataset) for the scan index, which lets a rescan skip reading files that
   * have not changed; created when missing. No index is used when it is absent or inside the dataset.
   */
  index?: string;
}

export interface ScanResult {
  report: DatasetReport;
  /** Usable classes, sorted; `DatasetItem.classIndex` indexes this. */
  classes: string[];
  /** Usable images, sorted by `rel`. */
  items: DatasetItem[];
  /** Files whose inspection was taken from the index instead of reading them (0 without an index). */
  indexHits: number;
}

/** A dataset that cannot be trained on, with a message the user can act on. */
export class DatasetError extends Error {
  /** What the scan found before giving up, when it got that far. */
  readonly report?: DatasetReport;
  constructor(message: string, report?: DatasetReport) {
    super(message);
    this.name = 'DatasetError';
    this.report = report;
  }
}

type Side = 'train' | 'val' | 'test';

/** Files that are read whole (one read, hashed and handed to sharp from memory); larger ones are streamed. */
const WHOLE_FILE_LIMIT = 4 * 1024 * 1024;
/** Files inspected at the same time: enough to keep the disk and libuv's thread pool busy. */
const INSPECT_CONCURRENCY = 16;
const OS_METADATA = new Set(['thumbs.db', 'ehthumbs.db', 'desktop.ini', '__macosx', 'icon\r']);
const SIDE_NAMES: Record<string, Side> = { train: 'train', val: 'val', valid: 'val', validation: 'val', test: 'test' };
const TINY_CLASS = 5;
const IMBALANCE_RATIO = 3;

/** Code-unit order: the same on every machine, whatever the locale. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || OS_METADATA.has(name.toLowerCase());
}

interface Entry {
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

interface Candidate {
  abs: string;
  rel: string;
  className: string;
  /** Undefined when the split is computed. */
  side?: Side;
  size: number;
  /** `dev:ino:size:mtimeNs:ctimeNs` from the walk's stat: equal identities, same content. */
  identity: string;
  ctimeNs: bigint;
}

interface Walk {
  root: string;
  skipped: SkippedFile[];
  ignored: number;
  candidates: Candidate[];
  signal?: AbortSignal;
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error));
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

// Lists one folder, following symlinks; problems with single entries become skipped files.
async function listDir(walk: Walk, abs: string, rel: string): Promise<Entry[] | undefined> {
  walk.signal?.throwIfAborted();
  let dirents: Dirent[];
  try {
    dirents = await readdir(abs, { withFileTypes: true });
  } catch (error) {
    walk.skipped.push({ path: rel || '.', reason: 'unreadable', detail: `folder cannot be read (${errnoCode(error)})` });
    return undefined;
  }
  dirents.sort((a, b) => compareNames(a.name, b.name));
  const entries = await Promise.all(
    dirents.map(async (dirent): Promise<Entry | undefined> => {
      const { name } = dirent;
      const entryAbs = path.join(abs, name);
      const entryRel = toRel(rel, name);
      if (isIgnoredName(name)) {
        walk.ignored++;
        return undefined;
      }
      const link = dirent.isSymbolicLink();
      let st: BigIntStats;
      try {
        st = await stat(entryAbs, { bigint: true });
      } catch (error) {
        const code = errnoCode(error);
        const target = link ? await readlink(entryAbs).catch(() => undefined) : undefined;
        if (code === 'ENOENT' && link) {
          walk.skipped.push({
            path: entryRel,
            reason: 'dangling-symlink',
            detail: `symlink to ${target ?? 'a missing target'}, which does not exist`,
          });
        } else if (code === 'ELOOP') {
          walk.skipped.push({
            path: entryRel,
            reason: 'symlink-loop',
            detail: `symlink${target === undefined ? '' : ` to ${target}`} never reaches a file (a chain of links that loops)`,
          });
        } else if (code !== 'ENOENT') {
          walk.skipped.push({ path: entryRel, reason: 'unreadable', detail: `cannot be read (${code})` });
        } // else: deleted between readdir and stat, nothing to report.
        return undefined;
      }
      const key = `${st.dev}:${st.ino}`;
      const base = { name, abs: entryAbs, rel: entryRel, key, stats: st, link };
      if (st.isDirectory()) return { ...base, kind: 'dir' };
      if (st.isFile()) return { ...base, kind: 'file' };
      return { ...base, kind: 'other', what: describeOther(st) };
    }),
  );
  return entries.filter((e): e is Entry => e !== undefined);
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
    });
  }
}

/** What inspecting a good image finds; the index keeps exactly this. */
interface ImageFacts {
  sha256: string;
  /** As displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
  format: ImageFormat;
  /** First page/frame as stored: what the pixel limit applies to (only that is ever decoded). */
  pixelWidth: number;
  pixelHeight: number;
}

type Inspection = { ok: true; candidate: Candidate; facts: ImageFacts } | { ok: false; skipped: SkippedFile };

function skip(candidate: Candidate, reason: SkipReason, detail: string): Inspection {
  return { ok: false, skipped: { path: candidate.rel, reason, detail } };
}

// Streams a file larger than WHOLE_FILE_LIMIT through sha256 without holding it in memory.
async function hashHandle(handle: FileHandle): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
  }
  return hash.digest('hex');
}

// Sharp's own sentence from its error ("Input buffer has corrupt header"), without the libvips text
// it appends: that buffer is shared by every thread and cleared by concurrent calls, so it comes
// and goes from run to run and would make the same file's report differ between scans.
function sharpReason(error: unknown): string {
  const first = (error instanceof Error ? error.message : String(error)).trim().split('\n')[0];
  return first.split(':')[0].trim() || 'unknown error';
}

// Sniffs, hashes and reads the header of one file; never decodes pixels. The pixel limit is
// applied afterwards (withPixelLimit), so the same facts serve any limit.
async function inspect(candidate: Candidate): Promise<Inspection> {
  if (candidate.size === 0) return skip(candidate, 'empty', 'the file is empty (0 bytes)');
  let handle: FileHandle;
  try {
    handle = await open(candidate.abs, 'r');
  } catch (error) {
    const code = errnoCode(error);
    return skip(
      candidate,
      'unreadable',
      code === 'EACCES' || code === 'EPERM' ? `permission denied (${code})` : `cannot be opened (${code})`,
    );
  }
  try {
    let whole: Buffer | undefined;
    let head: Buffer;
    try {
      if (candidate.size <= WHOLE_FILE_LIMIT) {
        whole = await handle.readFile();
        head = whole.subarray(0, SNIFF_BYTES);
      } else {
        head = Buffer.alloc(SNIFF_BYTES);
        const { bytesRead } = await handle.read(head, 0, SNIFF_BYTES, 0);
        head = head.subarray(0, bytesRead);
      }
    } catch (error) {
      return skip(candidate, 'unreadable', `cannot be read (${errnoCode(error)})`);
    }
    if (whole && whole.length === 0) return skip(candidate, 'empty', 'the file is empty (0 bytes)');
    const sniffed = sniffImage(head);
    if (!sniffed.image) return skip(candidate, 'not-image', `${sniffed.what}, not a JPEG, PNG, WebP, GIF or TIFF image`);
    let sha256: string;
    try {
      sha256 = whole ? createHash('sha256').update(whole).digest('hex') : await hashHandle(handle);
    } catch (error) {
      return skip(candidate, 'unreadable', `cannot be read (${errnoCode(error)})`);
    }
    let meta: Metadata;
    try {
      // No pixel limit here: we want the claimed size to report it; nothing is decoded.
      meta = await sharp()(whole ?? candidate.abs, { limitInputPixels: false }).metadata();
    } catch (error) {
      return skip(candidate, 'corrupt', `${sniffed.format.toUpperCase()} header cannot be read: ${sharpReason(error)}`);
    }
    if (!meta.width || !meta.height) return skip(candidate, 'corrupt', `${sniffed.format.toUpperCase()} header has no image size`);
    const facts: ImageFacts = {
      sha256,
      width: meta.autoOrient?.width ?? meta.width,
      height: meta.autoOrient?.height ?? meta.height,
      format: sniffed.format,
      pixelWidth: meta.width,
      pixelHeight: meta.pageHeight ?? meta.height,
    };
    return { ok: true, candidate, facts };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

// The decompression-bomb guard, from the header size alone.
function withPixelLimit(inspection: Inspection, maxPixels: number): Inspection {
  if (!inspection.ok) return inspection;
  const { pixelWidth, pixelHeight } = inspection.facts;
  const pixels = pixelWidth * pixelHeight;
  if (pixels <= maxPixels) return inspection;
  return skip(
    inspection.candidate,
    'too-many-pixels',
    `header claims ${pixelWidth}x${pixelHeight} = ${pixels.toLocaleString('en-US')} pixels, over the limit of ${maxPixels.toLocaleString('en-US')}: not decoded (possible decompression bomb)`,
  );
}

const INDEX_VERSION = 1;
/** Timestamps at least this far apart are distinct on a filesystem with sub-second times (a clock tick is 1-16 ms). */
const FINE_TICK_NS = 50_000_000n;
/** FAT keeps modification times to 2 s. */
const COARSE_TICK_NS = 3_000_000_000n;

/** One index entry on disk: [identity, sha256, width, height, format, pixelWidth, pixelHeight]. */
type IndexRow = [string, string, number, number, ImageFormat, number, number];

interface ScanIndex {
  /** The index file, or undefined when no index is used. */
  file?: string;
  rows: Map<string, IndexRow>;
}

function isIndexRow(row: unknown): row is IndexRow {
  return (
    Array.isArray(row) &&
    row.length === 7 &&
    typeof row[0] === 'string' &&
    typeof row[1] === 'string' &&
    /^[0-9a-f]{64}$/.test(row[1]) &&
    (SUPPORTED_FORMATS as readonly unknown[]).includes(row[4]) &&
    [row[2], row[3], row[5], row[6]].every((n) => Number.isInteger(n) && n > 0)
  );
}

// The real path of `abs`, or of its nearest existing ancestor with the rest appended.
async function realpathOfNearest(abs: string): Promise<string> {
  try {
    return await realpath(abs);
  } catch {
    const parent = path.dirname(abs);
    return parent === abs ? abs : path.join(await realpathOfNearest(parent), path.basename(abs));
  }
}

/** A short stable key of a dataset folder (its absolute path hashed) for the per-dataset files of the caches. */
export function datasetFolderKey(rootAbs: string): string {
  return createHash('sha256').update(rootAbs).digest('hex').slice(0, 32);
}

// Reads the index of one dataset root; anything wrong with it reads as an empty index.
async function readScanIndex(folder: string | undefined, rootAbs: string): Promise<ScanIndex> {
  const rows = new Map<string, IndexRow>();
  if (folder === undefined) return { rows };
  const folderAbs = path.resolve(folder);
  // Never write into the dataset, even through a link.
  if (isInside(await realpath(rootAbs).catch(() => rootAbs), await realpathOfNearest(folderAbs))) return { rows };
  const file = path.join(folderAbs, `${datasetFolderKey(rootAbs)}.json`);
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    const { version, root, entries } = (parsed ?? {}) as { version?: unknown; root?: unknown; entries?: unknown };
    if (version === INDEX_VERSION && root === rootAbs && entries && typeof entries === 'object') {
      for (const [abs, row] of Object.entries(entries)) if (isIndexRow(row)) rows.set(abs, row);
    }
  } catch {
    // Missing or unreadable: an empty index, rebuilt by this scan.
  }
  return { file, rows };
}

// Writes the index when it differs from what was read; a failure only costs the next scan time.
async function writeScanIndex(index: ScanIndex, rootAbs: string, rows: Map<string, IndexRow>, hits: number): Promise<void> {
  // Every new row that is a hit is the old row unchanged, so equal counts mean an equal index.
  if (index.file === undefined || (hits === rows.size && rows.size === index.rows.size)) return;
  try {
    await mkdir(path.dirname(index.file), { recursive: true });
    await writeFileAtomic(index.file, JSON.stringify({ version: INDEX_VERSION, root: rootAbs, entries: Object.fromEntries(rows) }));
  } catch {
    // A read-only or full cache folder: the scan result is unaffected.
  }
}

// A file last changed within a timestamp tick of the scan's start could change again with the
// same identity after it was read; such a file is inspected again next time.
function settledBefore(candidate: Candidate, scanStartNs: bigint): boolean {
  const tick = candidate.ctimeNs % 1_000_000_000n === 0n ? COARSE_TICK_NS : FINE_TICK_NS;
  return candidate.ctimeNs < scanStartNs - tick;
}

async function forEachConcurrent<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const index = next++;
      await fn(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** One line for the user, e.g. "3 files skipped: 2 not images, 1 over the pixel limit"; empty when nothing was skipped. */
export function summarizeSkipped(skipped: readonly SkippedFile[]): string {
  if (skipped.length === 0) return '';
  const counts = new Map<SkipReason, number>();
  for (const s of skipped) counts.set(s.reason, (counts.get(s.reason) ?? 0) + 1);
  const order = Object.keys(SKIP_REASON_WORDS);
  const parts = [...counts]
    .sort((a, b) => b[1] - a[1] || order.indexOf(a[0]) - order.indexOf(b[0]))
    .map(([reason, n]) => countedSkipReason(reason, n));
  return `${skipped.length} ${skipped.length === 1 ? 'file' : 'files'} skipped: ${parts.join(', ')}`;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Scans a dataset folder (read-only): classes, usable images with hash, size and split, and a report of every problem. */
export async function scanDataset(root: string, options: ScanOptions): Promise<ScanResult> {
  const { valSplit, seed, maxPixels, onProgress, signal } = options;
  const scanStartNs = BigInt(Date.now()) * 1_000_000n;
  if (!Number.isFinite(valSplit) || valSplit < 0 || valSplit >= 1)
    throw new RangeError(`valSplit must be at least 0 and below 1, got ${valSplit}`);
  const rootAbs = path.resolve(root);
  let rootStat: BigIntStats;
  try {
    rootStat = await stat(rootAbs, { bigint: true });
  } catch (error) {
    const code = errnoCode(error);
    throw new DatasetError(
      code === 'ENOENT' ? `Dataset folder not found: ${rootAbs}` : `Dataset folder cannot be read: ${rootAbs} (${code})`,
    );
  }
  if (!rootStat.isDirectory()) throw new DatasetError(`${rootAbs} is not a folder: choose the folder that holds one subfolder per class`);

  const walk: Walk = { root: rootAbs, skipped: [], ignored: 0, candidates: [], signal };
  const warnings: string[] = [];
  const top = await listDir(walk, rootAbs, '');
  if (!top) throw new DatasetError(`Dataset folder cannot be read: ${rootAbs} (${walk.skipped[0]?.detail ?? 'unknown error'})`);

  const sideDirs = new Map<Side, Entry>();
  for (const entry of top) {
    const side = SIDE_NAMES[entry.name.toLowerCase()];
    if (entry.kind === 'dir' && side && !sideDirs.has(side)) sideDirs.set(side, entry);
  }
  const explicit = sideDirs.has('train') && (sideDirs.has('val') || sideDirs.has('test'));
  const classNames = new Set<string>();
  let looseFiles = 0;
  const rootAncestors = new Map([[`${rootStat.dev}:${rootStat.ino}`, '']]);

  if (explicit) {
    const otherDirs: string[] = [];
    for (const entry of top) {
      if (entry.kind === 'dir' && [...sideDirs.values()].includes(entry)) continue;
      walk.ignored++;
      if (entry.kind === 'dir') otherDirs.push(entry.name);
      else looseFiles++;
    }
    if (otherDirs.length > 0) {
      warnings.push(`Folders ignored because the dataset uses train/ and val/ folders: ${otherDirs.join(', ')}`);
    }
    for (const side of ['train', 'val', 'test'] as const) {
      const sideDir = sideDirs.get(side);
      if (!sideDir) continue;
      const entries = await listDir(walk, sideDir.abs, sideDir.rel);
      const sideAncestors = new Map(rootAncestors).set(sideDir.key, sideDir.rel);
      for (const entry of entries ?? []) {
        if (entry.kind !== 'dir') {
          walk.ignored++;
          looseFiles++;
          continue;
        }
        classNames.add(entry.name);
        await walkClass(walk, entry, entry.name, side, sideAncestors);
      }
    }
  } else {
    for (const entry of top) {
      if (entry.kind !== 'dir') {
        walk.ignored++;
        looseFiles++;
        continue;
      }
      classNames.add(entry.name);
      await walkClass(walk, entry, entry.name, undefined, rootAncestors);
    }
  }
  if (looseFiles > 0) {
    warnings.push(
      `${plural(looseFiles, 'file')} not inside a class folder ${looseFiles === 1 ? 'was' : 'were'} not used: put each image in the subfolder of its class`,
    );
  }

  const candidates = walk.candidates.sort((a, b) => compareNames(a.rel, b.rel));
  const index = await readScanIndex(options.index, rootAbs);
  const inspections: Inspection[] = new Array(candidates.length);
  const rows: (IndexRow | undefined)[] = new Array(candidates.length);
  let indexHits = 0;
  let done = 0;
  onProgress?.(0, candidates.length);
  await forEachConcurrent(
    candidates,
    INSPECT_CONCURRENCY,
    async (candidate, i) => {
      const row = index.rows.get(candidate.abs);
      let inspection: Inspection;
      if (row && row[0] === candidate.identity) {
        const [, sha256, width, height, format, pixelWidth, pixelHeight] = row;
        inspection = { ok: true, candidate, facts: { sha256, width, height, format, pixelWidth, pixelHeight } };
        rows[i] = row;
        indexHits++;
      } else {
        inspection = await inspect(candidate);
        if (inspection.ok && settledBefore(candidate, scanStartNs)) {
          const f = inspection.facts;
          rows[i] = [candidate.identity, f.sha256, f.width, f.height, f.format, f.pixelWidth, f.pixelHeight];
        }
      }
      inspections[i] = withPixelLimit(inspection, maxPixels);
      onProgress?.(++done, candidates.length);
    },
    signal,
  );
  signal?.throwIfAborted();
  const newRows = new Map<string, IndexRow>();
  candidates.forEach((candidate, i) => rows[i] && newRows.set(candidate.abs, rows[i]));
  await writeScanIndex(index, rootAbs, newRows, indexHits);

  const skipped = [...walk.skipped];
  const usable: { candidate: Candidate; facts: ImageFacts }[] = [];
  for (const inspection of inspections) {
    if (inspection.ok) usable.push(inspection);
    else skipped.push(inspection.skipped);
  }
  skipped.sort((a, b) => compareNames(a.path, b.path));

  const allClasses = [...classNames].sort(compareNames);
  const perClass = new Map<string, number>();
  for (const u of usable) perClass.set(u.candidate.className, (perClass.get(u.candidate.className) ?? 0) + 1);
  const classes = allClasses.filter((name) => (perClass.get(name) ?? 0) > 0);
  const emptyClasses = allClasses.filter((name) => !perClass.has(name));
  const classIndex = new Map(classes.map((name, i) => [name, i]));

  // The split: folders for the explicit layout, content hash + seed otherwise (and for train/ when val/ is missing).
  const splitOf: Side[] = usable.map((u) => u.candidate.side ?? 'train');
  if (!explicit || !sideDirs.has('val')) {
    const computed = usable
      .map((u, i) => ({ i, classIndex: classIndex.get(u.candidate.className)!, sha256: u.facts.sha256 }))
      .filter(({ i }) => splitOf[i] === 'train');
    const sides = stratifiedSplit(computed, valSplit, seed);
    computed.forEach(({ i }, k) => (splitOf[i] = sides[k]));
  }

  const items: DatasetItem[] = usable.map((u, i) => ({
    abs: u.candidate.abs,
    rel: u.candidate.rel,
    classIndex: classIndex.get(u.candidate.className)!,
    split: splitOf[i],
    sha256: u.facts.sha256,
    bytes: u.candidate.size,
    width: u.facts.width,
    height: u.facts.height,
    format: u.facts.format,
  }));

  const summaries: ClassSummary[] = classes.map((name) => ({ name, train: 0, val: 0, test: 0 }));
  for (const item of items) summaries[item.classIndex][item.split]++;

  const byContent = new Map<string, DatasetItem[]>();
  for (const item of items) {
    const group = byContent.get(item.sha256);
    if (group) group.push(item);
    else byContent.set(item.sha256, [item]);
  }
  const duplicates: DuplicateGroup[] = [];
  let sameClassCopies = 0;
  let leakedContents = 0;
  for (const [sha256, group] of byContent) {
    if (group.length < 2) continue;
    const groupClasses = [...new Set(group.map((g) => g.classIndex))].sort((a, b) => a - b);
    if (groupClasses.length > 1) {
      duplicates.push({ sha256, paths: group.map((g) => g.rel).sort(compareNames), classes: groupClasses.map((c) => classes[c]) });
    }
    sameClassCopies += group.length - new Set(group.map((g) => g.classIndex)).size;
    if (explicit && new Set(group.map((g) => g.split)).size > 1) leakedContents++;
  }
  duplicates.sort((a, b) => compareNames(a.paths[0], b.paths[0]));

  if (duplicates.length > 0) {
    const files = duplicates.reduce((n, d) => n + d.paths.length, 0);
    warnings.push(
      `${plural(files, 'identical file')} in ${plural(duplicates.length, 'group')} appear in more than one class (label noise): see duplicates`,
    );
  }
  if (sameClassCopies > 0) {
    warnings.push(
      `${plural(sameClassCopies, 'file')} ${sameClassCopies === 1 ? 'is an identical copy' : 'are identical copies'} of another image in the same class (kept; copies always share a side of the split)`,
    );
  }
  if (leakedContents > 0) {
    warnings.push(
      `${plural(leakedContents, 'image')} appear${leakedContents === 1 ? 's' : ''} in more than one of train/, val/ and test/ (identical content): validation accuracy will look better than it is`,
    );
  }
  if (classes.length >= 2) {
    const counts = classes.map((name) => perClass.get(name)!);
    const largest = Math.max(...counts);
    const smallest = Math.min(...counts);
    if (largest > IMBALANCE_RATIO * smallest) {
      const big = classes[counts.indexOf(largest)];
      const small = classes[counts.indexOf(smallest)];
      warnings.push(
        `Classes are imbalanced: ${big} has ${largest} images, ${small} ${smallest} (${(largest / smallest).toFixed(1)}x): consider class weights or more images of the small classes`,
      );
    }
  }
  const tiny = classes.filter((name) => perClass.get(name)! < TINY_CLASS);
  if (tiny.length > 0) {
    warnings.push(
      `${tiny.length === 1 ? 'Class' : 'Classes'} with fewer than ${TINY_CLASS} images: ${tiny.map((n) => `${n} (${perClass.get(n)})`).join(', ')}: too few to learn or to measure reliably`,
    );
  }
  if (explicit && sideDirs.has('val')) {
    const missing = summaries.filter((s) => s.val === 0).map((s) => s.name);
    if (missing.length > 0)
      warnings.push(
        `No validation images for ${missing.join(', ')}: ${missing.length === 1 ? 'its' : 'their'} accuracy cannot be measured`,
      );
  }

  const report: DatasetReport = {
    root: rootAbs,
    name: path.basename(rootAbs),
    layout: explicit ? 'explicit' : 'folders',
    classes: summaries,
    emptyClasses,
    skipped,
    duplicates,
    ignored: walk.ignored,
    warnings,
  };

  if (classes.length < 2) {
    const found = classes.length === 0 ? 'no usable class' : `1 usable class (${classes[0]})`;
    const hints: string[] = [];
    if (emptyClasses.length > 0)
      hints.push(`${plural(emptyClasses.length, 'class folder')} without usable images: ${emptyClasses.join(', ')}`);
    if (skipped.length > 0) hints.push(summarizeSkipped(skipped));
    if (looseFiles > 0) hints.push(`${plural(looseFiles, 'file')} directly in the folder (not in a class folder)`);
    throw new DatasetError(
      `Found ${found} in ${rootAbs}: need at least 2 class folders with images${hints.length > 0 ? ` (${hints.join('; ')})` : ''}`,
      report,
    );
  }
  return { report, classes, items, indexHits };
}
