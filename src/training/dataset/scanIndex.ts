// The scan index, like git's: one file per dataset root, in a folder outside the dataset, that lets
// a rescan take an unchanged file's inspection from it instead of reading the file again. What
// "unchanged" means and why it is safe is in docs/dataset.md.
import { createHash } from 'node:crypto';
import { mkdir, readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { type ImageFormat, SUPPORTED_FORMATS } from '../../shared/datasetRules';
import { writeFileAtomic } from '../util/atomicWrite';
import { isInside } from '../util/paths';
import type { Candidate } from './datasetWalk';
import type { ImageFacts, Inspection } from './imageInspection';

const INDEX_VERSION = 1;
/** Timestamps at least this far apart are distinct on a filesystem with sub-second times (a clock tick is 1-16 ms). */
const FINE_TICK_NS = 50_000_000n;
/** FAT keeps modification times to 2 s. */
const COARSE_TICK_NS = 3_000_000_000n;

/** One index entry on disk: [identity, sha256, width, height, format, pixelWidth, pixelHeight]. */
export type IndexRow = [string, string, number, number, ImageFormat, number, number];

/** The rows read from one dataset root's index file. */
export interface ScanIndex {
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

/** Reads the index of one dataset root; anything wrong with it reads as an empty index. */
export async function readScanIndex(folder: string | undefined, rootAbs: string): Promise<ScanIndex> {
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

/** Writes the index when it differs from what was read; a failure only costs the next scan time. */
export async function writeScanIndex(index: ScanIndex, rootAbs: string, rows: Map<string, IndexRow>, hits: number): Promise<void> {
  // Every new row that is a hit is the old row unchanged, so equal counts mean an equal index.
  if (index.file === undefined || (hits === rows.size && rows.size === index.rows.size)) return;
  try {
    await mkdir(path.dirname(index.file), { recursive: true });
    await writeFileAtomic(index.file, JSON.stringify({ version: INDEX_VERSION, root: rootAbs, entries: Object.fromEntries(rows) }));
  } catch {
    // A read-only or full cache folder: the scan result is unaffected.
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
