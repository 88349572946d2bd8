// The scan index, like git's: one file per dataset root, in a folder outside the dataset, that lets
// a rescan take an unchanged file's inspection from it instead of reading the file again. What
// "unchanged" means and why it is safe is in docs/dataset.md. Each row ends with a checksum of the
// row and its file's path, so a row edited or damaged on disk (an altered sha256, hashes swapped
// between two files) is discarded with a warning and its file read again, never trusted.
import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { type ImageFormat, SUPPORTED_FORMATS } from '../../shared/datasetRules';
import { writeFileAtomic } from '../util/atomicWrite';
import { type CacheIssues, UNREPORTED } from '../util/cacheFolder';
import { checksumOfText } from '../util/checksum';
import { isInside, realPathOfNearest } from '../util/paths';
import type { Candidate } from './datasetWalk';
import type { ImageFacts, Inspection } from './imageInspection';

/** Version 2 added the row checksum; an index of another version is ignored (rebuilt by the scan). */
const INDEX_VERSION = 2;
/** Timestamps at least this far apart are distinct on a filesystem with sub-second times (a clock tick is 1-16 ms). */
const FINE_TICK_NS = 50_000_000n;
/** FAT keeps modification times to 2 s. */
const COARSE_TICK_NS = 3_000_000_000n;

/** One index entry in memory: [identity, sha256, width, height, format, pixelWidth, pixelHeight]. */
export type IndexRow = [string, string, number, number, ImageFormat, number, number];
/** One index entry on disk: the row, then `rowChecksum` of it and its file's path. */
type StoredRow = [...IndexRow, string];

/** Where the scan keeps its index, and who hears about a damaged row or a failed write. */
export interface ScanIndexPlace {
  folder: string;
  issues: CacheIssues;
}

/** The rows read from one dataset root's index file. */
export interface ScanIndex {
  /** The index file, or undefined when no index is used. */
  file?: string;
  rows: Map<string, IndexRow>;
  issues: CacheIssues;
}

/** The checksum that ties a row to its file's path: a changed field or a row under another path no longer matches. */
function rowChecksum(abs: string, row: IndexRow): string {
  // NUL separates the fields: no path or field contains one.
  return checksumOfText(`${abs}\0${row.join('\0')}`);
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

/** A short stable key of a dataset folder (its absolute path hashed) for the per-dataset files of the caches. */
export function datasetFolderKey(rootAbs: string): string {
  return createHash('sha256').update(rootAbs).digest('hex').slice(0, 32);
}

/** Reads the index of one dataset root; anything wrong with it reads as an empty index, and rows that fail their checksum are reported and left out. */
export async function readScanIndex(place: string | ScanIndexPlace | undefined, rootAbs: string): Promise<ScanIndex> {
  const rows = new Map<string, IndexRow>();
  const issues = typeof place === 'object' ? place.issues : UNREPORTED;
  const folder = typeof place === 'object' ? place.folder : place;
  if (folder === undefined) return { rows, issues };
  const folderAbs = path.resolve(folder);
  // Never write into the dataset, even through a link.
  if (isInside(await realpath(rootAbs).catch(() => rootAbs), await realPathOfNearest(folderAbs))) return { rows, issues };
  const file = path.join(folderAbs, `${datasetFolderKey(rootAbs)}.json`);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    // Missing or unreadable: an empty index, rebuilt by this scan.
    return { file, rows, issues };
  }
  let parsed: { version?: unknown; root?: unknown; entries?: unknown };
  try {
    parsed = (JSON.parse(text) ?? {}) as typeof parsed;
  } catch {
    parsed = {};
  }
  const { version, root, entries } = parsed;
  if (typeof version === 'number' && version !== INDEX_VERSION) return { file, rows, issues };
  if (version !== INDEX_VERSION || root !== rootAbs || !entries || typeof entries !== 'object') {
    issues.damaged(`scan index of ${rootAbs} (${file}) is damaged: discarded, every file read again`);
    return { file, rows, issues };
  }
  let damaged = 0;
  for (const [abs, stored] of Object.entries(entries)) {
    const row = Array.isArray(stored) ? (stored.slice(0, 7) as unknown) : undefined;
    if (isIndexRow(row) && (stored as unknown[]).length === 8 && (stored as StoredRow)[7] === rowChecksum(abs, row)) rows.set(abs, row);
    else damaged++;
  }
  if (damaged > 0) {
    issues.damaged(
      `${damaged} scan-index row${damaged === 1 ? '' : 's'} of ${rootAbs} failed ${damaged === 1 ? 'its' : 'their'} checksum: discarded, ${damaged === 1 ? 'its file' : 'those files'} read again`,
    );
  }
  return { file, rows, issues };
}

/** Writes the index when it differs from what was read; a failure only costs the next scan time (and is reported). */
export async function writeScanIndex(index: ScanIndex, rootAbs: string, rows: Map<string, IndexRow>, hits: number): Promise<void> {
  // Every new row that is a hit is the old row unchanged, so equal counts mean an equal index.
  if (index.file === undefined || !index.issues.writable || (hits === rows.size && rows.size === index.rows.size)) return;
  const entries: Record<string, StoredRow> = {};
  for (const [abs, row] of rows) entries[abs] = [...row, rowChecksum(abs, row)];
  try {
    await mkdir(path.dirname(index.file), { recursive: true });
    await writeFileAtomic(index.file, JSON.stringify({ version: INDEX_VERSION, root: rootAbs, entries }));
  } catch (error) {
    // A read-only or full cache folder: the scan result is unaffected.
    index.issues.writeFailed(error);
  }
}

/**
 * False for a file last changed within a timestamp tick of the scan's start: it could change again
 * with the same identity after it was read, so it is not indexed and is inspected again next time.
 */
export function settledBefore(candidate: Candidate, scanStartNs: bigint): boolean {
  const tick = candidate.ctimeNs % 1_000_000_000n === 0n ? COARSE_TICK_NS : FINE_TICK_NS;
  return candidate.ctimeNs < scanStartNs - tick;
}

/** The inspection the index holds for `candidate` when the file's identity is unchanged since it was indexed. */
export function indexedInspection(index: ScanIndex, candidate: Candidate): { inspection: Inspection; row: IndexRow } | undefined {
  const row = index.rows.get(candidate.abs);
  if (!row || row[0] !== candidate.identity) return undefined;
  const [, sha256, width, height, format, pixelWidth, pixelHeight] = row;
  return { inspection: { ok: true, candidate, facts: { sha256, width, height, format, pixelWidth, pixelHeight } }, row };
}

/** The index row of a freshly inspected image. */
export function toIndexRow(candidate: Candidate, facts: ImageFacts): IndexRow {
  return [candidate.identity, facts.sha256, facts.width, facts.height, facts.format, facts.pixelWidth, facts.pixelHeight];
}
