import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { DecodeError, type DecodedBatch, decodeBatches, decodeImage } from '../../../../src/training/dataset/imageDecoder';
import { RunCancelled, TrainerError } from '../../../../src/training/util/errors';
import { PHOTOS, pngBomb, truncatedJpeg, writeVariants } from '../../../fixtures/datasetFixtures';

const MAX_PIXELS = 100_000_000;
let dir: string;

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'image-trainer-decode-'));
});
test.after(() => rm(dir, { recursive: true, force: true }));

async function write(name: string, data: Buffer | string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, data);
  return file;
}

/** Mean absolute difference per byte. */
function meanDiff(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i] - b[i]);
  return sum / a.length;
}

function pixel(rgb: Uint8Array, size: number, x: number, y: number): number[] {
  const o = (y * size + x) * 3;
  return [rgb[o], rgb[o + 1], rgb[o + 2]];
}

async function rejectsWith(promise: Promise<unknown>, reason: DecodeError['reason']): Promise<DecodeError> {
  const error = await promise.then(
    () => assert.fail(`expected DecodeError ${reason}`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof DecodeError, String(error));
  assert.ok(error instanceof TrainerError);
  assert.equal(error.kind, 'dataset');
  assert.equal(error.reason, reason, error.message);
  return error;
}

test('a photo decodes to size*size*3 RGB bytes', async () => {
  const rgb = await decodeImage(PHOTOS.cat, 224, MAX_PIXELS);
  assert.ok(rgb instanceof Uint8Array);
  assert.equal(rgb.length, 224 * 224 * 3);
  assert.ok(meanDiff(rgb, new Uint8Array(rgb.length)) > 50, 'not black');
});

test('the fit is cover with a centre crop: a wide image keeps its middle, undistorted', async () => {
  // 400x100: red | green (200 wide) | blue. Cover scales it to 40x10 and keeps the middle 10 columns, all green.
  const block = async (colour: string) =>
    sharp({ create: { width: 100, height: 100, channels: 3, background: colour } })
      .png()
      .toBuffer();
  const wide = await sharp({ create: { width: 400, height: 100, channels: 3, background: '#00ff00' } })
    .composite([
      { input: await block('#ff0000'), left: 0, top: 0 },
      { input: await block('#0000ff'), left: 300, top: 0 },
    ])
    .png()
    .toBuffer();
  const rgb = await decodeImage(await write('red-green-blue.png', wide), 10, MAX_PIXELS);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 10; x++) assert.deepEqual(pixel(rgb, 10, x, y), [0, 255, 0], `(${x},${y})`);
});

test('EXIF orientation is applied: a JPEG tagged "rotate 90°" decodes upright', async () => {
  // Stored 40x20, red left half and blue right half; orientation 6 means it is shown rotated 90° clockwise: red on top.
  const stored = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ff0000' } })
    .composite([{ input: { create: { width: 20, height: 20, channels: 3, background: '#0000ff' } }, left: 20, top: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const file = await write('orientation6.jpg', stored);
  assert.equal((await sharp(file).metadata()).orientation, 6);
  const rgb = await decodeImage(file, 8, MAX_PIXELS);
  for (let x = 0; x < 8; x++) {
    const [r0, , b0] = pixel(rgb, 8, x, 0);
    const [r7, , b7] = pixel(rgb, 8, x, 7);
    assert.ok(r0 > 200 && b0 < 60, `top row is red at x=${x}: ${pixel(rgb, 8, x, 0)}`);
    assert.ok(b7 > 200 && r7 < 60, `bottom row is blue at x=${x}: ${pixel(rgb, 8, x, 7)}`);
  }
});

test('transparent pixels are flattened onto white', async () => {
  const rgba = Buffer.alloc(16 * 16 * 4);
  for (let y = 0; y < 16; y++) {
    for (let x = 8; x < 16; x++) rgba.set([200, 0, 0, 255], (y * 16 + x) * 4); // right half opaque red, left half transparent black
  }
  const file = await write(
    'rgba.png',
    await sharp(rgba, { raw: { width: 16, height: 16, channels: 4 } })
      .png()
      .toBuffer(),
  );
  assert.equal((await sharp(file).metadata()).channels, 4);
  const rgb = await decodeImage(file, 16, MAX_PIXELS);
  assert.deepEqual(pixel(rgb, 16, 0, 0), [255, 255, 255]);
  assert.deepEqual(pixel(rgb, 16, 3, 9), [255, 255, 255]);
  assert.deepEqual(pixel(rgb, 16, 15, 15), [200, 0, 0]);
});

test('grayscale, 16-bit and CMYK images become 8-bit sRGB RGB close to the original', async () => {
  const size = 64;
  const reference = await decodeImage(await write('reference.png', await sharp(PHOTOS.cat).png().toBuffer()), size, MAX_PIXELS);

  const gray = await write('gray.png', await sharp(PHOTOS.cat).toColourspace('b-w').png().toBuffer());
  assert.deepEqual([(await sharp(gray).metadata()).channels, (await sharp(gray).metadata()).space], [1, 'b-w']);
  const grayRgb = await decodeImage(gray, size, MAX_PIXELS);
  for (let i = 0; i < grayRgb.length; i += 3) assert.ok(grayRgb[i] === grayRgb[i + 1] && grayRgb[i] === grayRgb[i + 2], 'R = G = B');

  const deep = await write('16bit.png', await sharp(PHOTOS.cat).toColourspace('rgb16').png().toBuffer());
  assert.equal((await sharp(deep).metadata()).depth, 'ushort');
  const deepRgb = await decodeImage(deep, size, MAX_PIXELS);
  assert.ok(meanDiff(deepRgb, reference) < 2, `16-bit differs by ${meanDiff(deepRgb, reference)}`);

  const cmyk = await write('cmyk.jpg', await sharp(PHOTOS.cat).toColourspace('cmyk').jpeg({ quality: 95 }).toBuffer());
  assert.deepEqual([(await sharp(cmyk).metadata()).space, (await sharp(cmyk).metadata()).channels], ['cmyk', 4]);
  const cmykRgb = await decodeImage(cmyk, size, MAX_PIXELS);
  assert.equal(cmykRgb.length, size * size * 3);
  assert.ok(meanDiff(cmykRgb, reference) < 12, `CMYK differs by ${meanDiff(cmykRgb, reference)}`);
});

test('a truncated JPEG is refused as corrupt instead of being padded with grey', async () => {
  const file = await write('truncated.jpg', await truncatedJpeg());
  assert.equal((await sharp(file).metadata()).width, 224, 'its header is intact');
  const error = await rejectsWith(decodeImage(file, 32, MAX_PIXELS), 'corrupt');
  assert.match(error.message, /truncated or corrupt: .*premature end/i);
});

test('a JPEG that only raises a decoder warning (extraneous bytes before a marker) is accepted', async () => {
  const bytes = await readFile(PHOTOS.cat);
  const sos = bytes.indexOf(Buffer.from([0xff, 0xda]));
  const file = await write('extraneous.jpg', Buffer.concat([bytes.subarray(0, sos), Buffer.from([1, 2, 3]), bytes.subarray(sos)]));
  await assert.rejects(sharp(file, { failOn: 'warning' }).raw().toBuffer(), /extraneous bytes before marker/);
  const rgb = await decodeImage(file, 32, MAX_PIXELS);
  assert.ok(meanDiff(rgb, await decodeImage(PHOTOS.cat, 32, MAX_PIXELS)) < 1);
});

test('a decompression bomb is refused from its header, before decoding', async () => {
  const file = await write('bomb.png', pngBomb());
  const started = performance.now();
  const error = await rejectsWith(decodeImage(file, 32, MAX_PIXELS), 'too-many-pixels');
  const ms = performance.now() - started;
  // Not a speed figure: decoding 900 megapixels (2.7 GB of RGB) takes many seconds, so a refusal
  // this quick shows the pixel limit was applied from the header, before any decoding.
  assert.ok(ms < 2000, `refused after ${ms.toFixed(0)} ms: the bomb must be refused from its header, not decoded first`);
  assert.match(error.message, /more than 100,000,000 pixels/);
});

test('empty, non-image and missing files are refused with their reason', async () => {
  await rejectsWith(decodeImage(await write('empty.jpg', ''), 32, MAX_PIXELS), 'empty');
  await rejectsWith(decodeImage(await write('text.jpg', 'not an image\n'), 32, MAX_PIXELS), 'not-image');
  const missing = await rejectsWith(decodeImage(path.join(dir, 'missing.jpg'), 32, MAX_PIXELS), 'unreadable');
  assert.match(missing.message, /no longer exists/);
});

/** Items whose `abs` getter counts how many decodes have started. */
function countingItems(files: string[]): { items: { name: string; abs: string }[]; started: () => number } {
  let started = 0;
  const items = files.map((file) => ({
    name: path.basename(file),
    get abs(): string {
      started++;
      return file;
    },
  }));
  return { items, started: () => started };
}

test('batches come in input order with failed images listed apart and their pixels left out', async () => {
  const good = await writeVariants(path.join(dir, 'batch'), PHOTOS.motoLeft, 5, 'moto');
  const files = [
    good[0],
    await write('batch-empty.jpg', ''),
    good[1],
    good[2],
    await write('batch-cut.jpg', await truncatedJpeg()),
    good[3],
    good[4],
  ];
  const items = files.map((abs, i) => ({ i, abs }));
  const batches: DecodedBatch<{ i: number; abs: string }>[] = [];
  for await (const batch of decodeBatches(items, { size: 16, batchSize: 3, maxPixels: MAX_PIXELS, concurrency: 3 })) batches.push(batch);

  assert.deepEqual(
    batches.map((b) => b.items.map((it) => it.i)),
    [[0, 2], [3, 5], [6]],
  );
  assert.deepEqual(
    batches.map((b) => b.failed.map((f) => [f.item.i, f.error.reason])),
    [[[1, 'empty']], [[4, 'corrupt']], []],
  );
  for (const batch of batches) {
    assert.equal(batch.pixels.length, batch.items.length * 16 * 16 * 3);
    for (const [k, item] of batch.items.entries()) {
      assert.deepEqual(batch.pixels.subarray(k * 768, (k + 1) * 768), await decodeImage(item.abs, 16, MAX_PIXELS), `image ${item.i}`);
    }
  }
});

test('decoding runs ahead of the consumer by at most prefetchBatches batches, and stops when the consumer stops', async () => {
  const files = await writeVariants(path.join(dir, 'ahead'), PHOTOS.cat, 4, 'cat');
  const { items, started } = countingItems(Array.from({ length: 20 }, (_, i) => files[i % 4]));
  const seen: number[] = [];
  let b = 0;
  for await (const batch of decodeBatches(items, { size: 8, batchSize: 2, maxPixels: MAX_PIXELS, concurrency: 2, prefetchBatches: 2 })) {
    assert.equal(batch.items.length, 2);
    // Stands in for inference on this batch: meanwhile the next two batches decode, and no more.
    await sleep(150);
    seen.push(started());
    if (++b === 4) break;
  }
  assert.deepEqual(seen, [6, 8, 10, 12]);
  await sleep(150);
  assert.equal(started(), 12, 'nothing new starts after the consumer left');
});

test('decoding can be cancelled with an AbortSignal', async () => {
  const files = await writeVariants(path.join(dir, 'abort'), PHOTOS.coffee, 2, 'cup');
  const items = Array.from({ length: 10 }, (_, i) => ({ abs: files[i % 2] }));
  const controller = new AbortController();
  const batches = decodeBatches(items, { size: 8, batchSize: 2, maxPixels: MAX_PIXELS, signal: controller.signal });
  assert.equal((await batches.next()).done, false);
  controller.abort();
  await assert.rejects(batches.next(), RunCancelled);
});

test('an abort while a batch is decoding rejects the pending next() with RunCancelled at once and starts no further decode', async () => {
  const files = await writeVariants(path.join(dir, 'abort-midway'), PHOTOS.motoLeft, 4, 'moto');
  const controller = new AbortController();
  let started = 0;
  let abortedAt = 0;
  const items = Array.from({ length: 64 }, (_, i) => ({
    get abs(): string {
      // The third decode to start aborts: two are in flight, the batch of 8 is far from done.
      if (++started === 3) {
        abortedAt = performance.now();
        controller.abort();
      }
      return files[i % 4];
    },
  }));
  const batches = decodeBatches(items, { size: 64, batchSize: 8, maxPixels: MAX_PIXELS, concurrency: 3, signal: controller.signal });
  await assert.rejects(batches.next(), RunCancelled);
  assert.ok(performance.now() - abortedAt < 1000, 'rejected promptly');
  await sleep(300);
  assert.equal(started, 3, 'no decode started after the abort');
  assert.equal((await batches.next()).done, true, 'the generator is finished');
});
