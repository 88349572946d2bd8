import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { EMPTY_FILE_DETAIL } from '../../shared/datasetRules';
import type { SkipReason } from '../../shared/types';
import { RunCancelled, throwIfCancelled, TrainerError } from '../util/errors';
import { sharp } from './lazySharp';
import { pixelStats, type PixelStats } from './pixelStats';

/**
 * Turns an image file into the model's input: `size`×`size`×3 bytes, RGB, 8-bit sRGB, row-major.
 *
 * - EXIF orientation is applied first (`rotate()` without an angle), so a phone photo taken in
 *   portrait is seen upright, as the user sees it.
 * - Alpha is flattened onto white (transparent pixels become 255,255,255), not onto black: cut-out
 *   product and leaf photos usually sit on white.
 * - Grayscale, CMYK (through its ICC profile, or libvips' default CMYK profile), 16-bit and
 *   palette images are converted to 8-bit sRGB with 3 channels.
 * - Fit: `cover` with a centre crop. The shorter side is scaled to `size` and the longer side is
 *   cropped equally on both ends, so nothing is stretched (objects keep their aspect ratio, as in
 *   the ImageNet preprocessing the base models were trained with) at the cost of losing the edges
 *   of very elongated images.
 * - Animated GIF/WebP and multi-page TIFF: the first frame/page only.
 * - The file is read once into memory, hashed, and that very buffer is decoded: the features
 *   computed from the pixels are filed under the hash of the bytes they came from, even when the
 *   file changed since the scan hashed it.
 * - Safety: `limitInputPixels: maxPixels` refuses decompression bombs from the header before any
 *   pixel is decoded, and `failOn: 'error'` refuses truncated or corrupt data (e.g. "premature end
 *   of JPEG image") instead of silently padding it with grey, while still accepting files that
 *   only raise libjpeg/libpng warnings (e.g. extraneous bytes before a marker), which decode fine
 *   in every viewer.
 */

/** A file that could not be decoded, with the same reasons the dataset report uses. */
export class DecodeError extends TrainerError {
  override readonly name = 'DecodeError';
  readonly reason: SkipReason;

  constructor(reason: SkipReason, message: string, options?: { cause?: unknown }) {
    super('dataset', message, options);
    this.reason = reason;
  }
}

/** Decodes one image file into `size*size*3` RGB bytes (see the module comment for the exact preprocessing). */
export async function decodeImage(abs: string, size: number, maxPixels: number): Promise<Uint8Array> {
  return (await decodeImageFile(abs, size, maxPixels)).pixels;
}

/** One image as decoded: its pixels and the sha256 of the very bytes they were decoded from. */
export interface DecodedImage {
  pixels: Uint8Array;
  sha256: string;
  /** Brightness, contrast and sharpness of `pixels`, for the dataset doctor (no second decode). */
  stats: PixelStats;
}

/** Reads `abs` once, hashes those bytes and decodes them (not the path, which could change in between) into `size*size*3` RGB bytes. */
export async function decodeImageFile(abs: string, size: number, maxPixels: number): Promise<DecodedImage> {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`Image size must be a positive integer, got ${size}`);
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // The OS's words without the path: "EACCES: permission denied".
    const reason = (error instanceof Error ? error.message : String(error)).split(',')[0];
    throw new DecodeError('unreadable', code === 'ENOENT' ? 'the file no longer exists' : `cannot be read (${reason})`, {
      cause: error,
    });
  }
  if (bytes.length === 0) throw new DecodeError('empty', EMPTY_FILE_DETAIL);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  let data: Buffer;
  let channels: number;
  // Outside the try: a decoder that cannot load fails the run, it does not make every image corrupt.
  const decoder = sharp();
  try {
    const out = await decoder(bytes, { limitInputPixels: Math.max(1, Math.floor(maxPixels)), failOn: 'error' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .resize(size, size, { fit: 'cover', position: 'centre' })
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
  } catch (error) {
    throw toDecodeError(error, maxPixels);
  }
  if (channels !== 3 || data.length !== size * size * 3) {
    throw new DecodeError('corrupt', `Decoded to ${channels} channels and ${data.length} bytes instead of ${size}x${size} RGB`);
  }
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.length);
  return { pixels, sha256, stats: pixelStats(pixels, size) };
}

// sharp reports everything as a plain Error; its first line says what went wrong.
function toDecodeError(error: unknown, maxPixels: number): DecodeError {
  if (error instanceof DecodeError) return error;
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0].trim();
  let reason: SkipReason;
  let detail: string;
  if (/exceeds pixel limit/i.test(message)) {
    reason = 'too-many-pixels';
    detail = `more than ${maxPixels.toLocaleString('en-US')} pixels: refused before decoding (decompression bomb guard)`;
  } else if (/unsupported image format/i.test(message)) {
    reason = 'not-image';
    detail = 'not a JPEG, PNG, WebP, GIF or TIFF image';
  } else {
    reason = 'corrupt';
    detail = `truncated or corrupt: ${message}`;
  }
  return new DecodeError(reason, detail, { cause: error });
}

/** One batch of decoded images, in input order; images that failed are in `failed`, not in `items`. */
export interface DecodedBatch<T> {
  items: T[];
  /** The sha256 of the bytes each of `items` was decoded from, in the same order. */
  sha256s: string[];
  /** The pixel statistics of each of `items`, in the same order. */
  stats: PixelStats[];
  /** `items.length * size * size * 3` bytes, image after image. */
  pixels: Uint8Array;
  failed: { item: T; error: DecodeError }[];
}

export interface DecodeBatchesOptions {
  size: number;
  batchSize: number;
  maxPixels: number;
  /** Images decoding at the same time (default: the CPU count, at least 2, at most 8). */
  concurrency?: number;
  /** Batches decoded ahead of the one the consumer holds (default 2). */
  prefetchBatches?: number;
  signal?: AbortSignal;
}

interface PendingBatch<T> {
  items: T[];
  pixels: Uint8Array;
  sha256s: string[];
  stats: PixelStats[];
  errors: (DecodeError | undefined)[];
  remaining: number;
  done: Promise<void>;
  resolve: () => void;
}

function newPendingBatch<T>(items: T[], imageBytes: number): PendingBatch<T> {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    items,
    pixels: new Uint8Array(items.length * imageBytes),
    sha256s: [],
    stats: [],
    errors: [],
    remaining: items.length,
    done,
    resolve,
  };
}

// A promise that rejects with RunCancelled when `signal` aborts (at once if it already has).
function cancellation(signal: AbortSignal | undefined): Promise<never> | undefined {
  if (!signal) return undefined;
  const cancelled = new Promise<never>((_, reject) => {
    const onAbort = (): void => reject(new RunCancelled());
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  // Keeps an abort that happens while the consumer holds a batch from becoming an unhandled rejection.
  cancelled.catch(() => undefined);
  return cancelled;
}

/**
 * Streams `items` as decoded batches, in order, decoding up to `prefetchBatches` batches ahead of
 * the consumer with `concurrency` images in flight, so inference on one batch overlaps the decode
 * of the next. At most `prefetchBatches + 1` batches of pixels exist at a time, whatever the
 * dataset size. Failed images are returned in `failed`; nothing is thrown for them. Aborting the
 * signal starts no further decode and rejects the pending `next()` with `RunCancelled` at once;
 * leaving the loop early stops further decoding.
 */
export async function* decodeBatches<T extends { abs: string }>(items: T[], opts: DecodeBatchesOptions): AsyncGenerator<DecodedBatch<T>> {
  const { size, batchSize, maxPixels, signal } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`Batch size must be a positive integer, got ${batchSize}`);
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? Math.min(8, Math.max(2, os.availableParallelism()))));
  const prefetch = Math.max(0, Math.floor(opts.prefetchBatches ?? 2));
  const imageBytes = size * size * 3;
  const batchCount = Math.ceil(items.length / batchSize);
  const pending = new Map<number, PendingBatch<T>>();
  let next = 0;
  let inFlight = 0;
  let handedOut = 0;
  let closed = false;

  const batchState = (b: number): PendingBatch<T> => {
    let state = pending.get(b);
    if (!state) pending.set(b, (state = newPendingBatch(items.slice(b * batchSize, (b + 1) * batchSize), imageBytes)));
    return state;
  };

  const pump = (): void => {
    // The batch the consumer holds plus `prefetch` more may be decoding.
    const limit = Math.min(items.length, (handedOut + Math.max(1, prefetch)) * batchSize);
    while (!closed && !signal?.aborted && inFlight < concurrency && next < limit) {
      const index = next++;
      const state = batchState(Math.floor(index / batchSize));
      const slot = index % batchSize;
      inFlight++;
      decodeImageFile(state.items[slot].abs, size, maxPixels)
        .then(
          (image) => {
            state.pixels.set(image.pixels, slot * imageBytes);
            state.sha256s[slot] = image.sha256;
            state.stats[slot] = image.stats;
          },
          (error: unknown) => {
            state.errors[slot] = error instanceof DecodeError ? error : new DecodeError('corrupt', String(error), { cause: error });
          },
        )
        .finally(() => {
          inFlight--;
          if (--state.remaining === 0) state.resolve();
          pump();
        });
    }
  };

  const cancelled = cancellation(signal);
  try {
    for (let b = 0; b < batchCount; b++) {
      throwIfCancelled(signal);
      const state = batchState(b);
      pump();
      await (cancelled ? Promise.race([state.done, cancelled]) : state.done);
      pending.delete(b);
      handedOut = b + 1;
      pump();
      yield toDecodedBatch(state, imageBytes);
    }
  } finally {
    closed = true;
    pending.clear();
  }
}

function toDecodedBatch<T>(state: PendingBatch<T>, imageBytes: number): DecodedBatch<T> {
  const failed: { item: T; error: DecodeError }[] = [];
  state.items.forEach((item, i) => {
    const error = state.errors[i];
    if (error) failed.push({ item, error });
  });
  if (failed.length === 0) return { items: state.items, sha256s: state.sha256s, stats: state.stats, pixels: state.pixels, failed };
  const ok: T[] = [];
  const sha256s: string[] = [];
  const stats: PixelStats[] = [];
  const pixels = new Uint8Array((state.items.length - failed.length) * imageBytes);
  state.items.forEach((item, i) => {
    if (state.errors[i]) return;
    pixels.set(state.pixels.subarray(i * imageBytes, (i + 1) * imageBytes), ok.length * imageBytes);
    ok.push(item);
    sha256s.push(state.sha256s[i]);
    stats.push(state.stats[i]);
  });
  return { items: ok, sha256s, stats, pixels, failed };
}
