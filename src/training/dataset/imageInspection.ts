// Inspection of one candidate file: is it an image (by its first bytes), its sha256 and the size
// its header claims. Never decodes pixels. See docs/dataset.md for what each outcome means.
import { createHash } from 'node:crypto';
import { lstat, open, realpath } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Metadata } from 'sharp';
import { EMPTY_FILE_DETAIL, type ImageFormat, notImageDetail, SNIFF_BYTES, sniffImage } from '../../shared/datasetRules';
import type { SkippedFile, SkipReason } from '../../shared/types';
import { throwIfCancelled } from '../util/errors';
import { isInside } from '../util/paths';
import type { Candidate } from './datasetWalk';
import { errnoCode } from './datasetWalk';
import { sharp } from './lazySharp';

/** Files that are read whole (one read, hashed and handed to sharp from memory); larger ones are streamed. */
const WHOLE_FILE_LIMIT = 4 * 1024 * 1024;

/** What inspecting a good image finds; the index keeps exactly this. */
export interface ImageFacts {
  sha256: string;
  /** As displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
  format: ImageFormat;
  /** First page/frame as stored: what the pixel limit applies to (only that is ever decoded). */
  pixelWidth: number;
  pixelHeight: number;
}

/** A usable image with its facts, or the reason it is skipped. */
export type Inspection = { ok: true; candidate: Candidate; facts: ImageFacts } | { ok: false; skipped: SkippedFile };

function skip(candidate: Candidate, reason: SkipReason, detail: string): Inspection {
  return { ok: false, skipped: { path: candidate.rel, reason, detail } };
}

// Streams a file larger than WHOLE_FILE_LIMIT through sha256 without holding it in memory.
async function hashHandle(handle: FileHandle, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1024 * 1024);
  let position = 0;
  for (;;) {
    throwIfCancelled(signal);
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

/**
 * Sniffs, hashes and reads the header of one file; never decodes pixels. The pixel limit is
 * applied afterwards (withPixelLimit), so the same facts serve any limit. Rejects with
 * `RunCancelled` when `signal` aborts while a large file is being hashed.
 */
export async function inspect(candidate: Candidate, signal?: AbortSignal): Promise<Inspection> {
  if (candidate.size === 0) return skip(candidate, 'empty', EMPTY_FILE_DETAIL);
  let source = candidate.abs;
  let handle: FileHandle;
  try {
    if (candidate.within !== undefined) {
      // The walk saw this path inside the dataset; a link swapped in since must not make us open what it points to.
      source = await realpath(candidate.abs);
      if (!isInside(candidate.within, source)) return skip(candidate, 'external-symlink', `${movedOutDetail(source)}: not opened`);
    }
    handle = await open(source, 'r');
  } catch (error) {
    const code = errnoCode(error);
    return skip(
      candidate,
      'unreadable',
      code === 'EACCES' || code === 'EPERM' ? `permission denied (${code})` : `cannot be opened (${code})`,
    );
  }
  try {
    if (candidate.within !== undefined && !(await sameFile(handle, source))) {
      return skip(candidate, 'external-symlink', `${movedOutDetail(source)} while it was being opened: not read`);
    }
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
    if (whole && whole.length === 0) return skip(candidate, 'empty', EMPTY_FILE_DETAIL);
    const sniffed = sniffImage(head);
    if (!sniffed.image) return skip(candidate, 'not-image', notImageDetail(sniffed.what));
    let sha256: string;
    try {
      sha256 = whole ? createHash('sha256').update(whole).digest('hex') : await hashHandle(handle, signal);
    } catch (error) {
      throwIfCancelled(signal);
      return skip(candidate, 'unreadable', `cannot be read (${errnoCode(error)})`);
    }
    let meta: Metadata;
    // Outside the try: a decoder that cannot load fails the run, it does not make every image corrupt.
    const readHeader = sharp();
    try {
      // No pixel limit here: we want the claimed size to report it; nothing is decoded.
      meta = await readHeader(whole ?? source, { limitInputPixels: false }).metadata();
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

function movedOutDetail(real: string): string {
  return `the path now leads to ${real}, outside the dataset folder`;
}

// True when the open handle is the file at `real` itself (no link put in its place meanwhile).
async function sameFile(handle: FileHandle, real: string): Promise<boolean> {
  try {
    const [opened, atPath] = await Promise.all([handle.stat({ bigint: true }), lstat(real, { bigint: true })]);
    return opened.dev === atPath.dev && opened.ino === atPath.ino;
  } catch {
    return false;
  }
}

/** The decompression-bomb guard, from the header size alone. */
export function withPixelLimit(inspection: Inspection, maxPixels: number): Inspection {
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
