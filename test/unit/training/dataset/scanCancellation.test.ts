import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type ScanOptions, scanDataset } from '../../../../src/training/dataset/datasetScanner';
import { RunCancelled } from '../../../../src/training/util/errors';
import { PHOTOS, photoVariant } from '../../../fixtures/datasetFixtures';

const options: ScanOptions = { valSplit: 0.2, seed: 42, maxPixels: 100_000_000 };
/** Distinct real JPEGs the large folders are made of. */
const SOURCES = 200;
/** Generous: the scan checks the signal between files, so it stops within milliseconds. */
const PROMPT_MS = 1000;

let dir: string;
let sources: string[];

test.before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'image-trainer-scan-cancel-'));
  // 200 distinct real JPEGs (one small photo, each with its own trailing bytes after the image data);
  // the large datasets are hard links to them, which makes 20,000 files in about a second.
  const photo = await photoVariant(PHOTOS.cat, 1, 16);
  sources = [];
  await mkdir(path.join(dir, 'sources'));
  for (let k = 0; k < SOURCES; k++) {
    const file = path.join(dir, 'sources', `cat${k}.jpg`);
    await writeFile(file, Buffer.concat([photo, Buffer.from(`#${k}`)]));
    sources.push(file);
  }
});
test.after(() => rm(dir, { recursive: true, force: true }));

// `files` hard links in each of `classes` class folders, cycling through the sources.
async function linkedDataset(name: string, classes: string[], files: number): Promise<string> {
  const root = path.join(dir, name);
  const jobs: [string, string][] = [];
  for (const cls of classes) {
    await mkdir(path.join(root, cls), { recursive: true });
    for (let i = 0; i < files; i++) jobs.push([sources[i % SOURCES], path.join(root, cls, `img${i}.jpg`)]);
  }
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < jobs.length) {
      const [from, to] = jobs[next++];
      await link(from, to);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return root;
}

/** Starts a first scan of `root`, aborts it when `abortWhen` says so, and returns how long the scan took to reject after the abort. */
async function abortedScan(
  root: string,
  abortWhen: (abort: () => void) => ScanOptions['onProgress'],
): Promise<{ error: unknown; afterAbortMs: number; progressAfterAbort: number; walked: boolean }> {
  const controller = new AbortController();
  let abortedAt = 0;
  let progressAfterAbort = 0;
  let walked = false;
  const abort = (): void => {
    abortedAt = performance.now();
    controller.abort();
  };
  const onProgress = abortWhen(abort);
  const error = await scanDataset(root, {
    ...options,
    signal: controller.signal,
    onProgress: (done, total) => {
      if (abortedAt > 0) progressAfterAbort++;
      walked = true;
      onProgress?.(done, total);
    },
  }).then(
    () => assert.fail('the scan was not cancelled'),
    (e: unknown) => e,
  );
  assert.ok(abortedAt > 0, 'the abort happened');
  return { error, afterAbortMs: performance.now() - abortedAt, progressAfterAbort, walked };
}

test(
  'an abort while a 20,000-file folder is being walked rejects the scan with RunCancelled within a second',
  { timeout: 60_000 },
  async () => {
    const root = await linkedDataset('one-big-folder', ['big'], 20_000);
    await writeFile(path.join(root, 'README.txt'), 'one class folder of 20,000 photos\n');
    const { error, afterAbortMs, walked } = await abortedScan(root, (abort) => {
      // Listing and stat'ing 20,000 entries takes far longer than this on any disk.
      setTimeout(abort, 20);
      return undefined;
    });
    assert.equal(walked, false, 'the scan stopped during the walk, before reporting any progress');
    assert.ok(error instanceof RunCancelled, String(error));
    assert.equal(error.kind, 'cancelled');
    assert.ok(afterAbortMs < PROMPT_MS, `rejected ${afterAbortMs.toFixed(0)} ms after the abort`);
  },
);

test(
  'an abort while the files of a first scan are read and hashed rejects with RunCancelled within a second and inspects no more',
  { timeout: 60_000 },
  async () => {
    const classes = Array.from({ length: 100 }, (_, c) => `class${String(c).padStart(3, '0')}`);
    const root = await linkedDataset('many-folders', classes, SOURCES);
    let total = 0;
    const { error, afterAbortMs, progressAfterAbort } = await abortedScan(root, (abort) => (done, all) => {
      total = all;
      if (done === 1000) abort();
    });
    assert.equal(total, 20_000, 'the walk found every file before the abort');
    assert.ok(error instanceof RunCancelled, String(error));
    assert.ok(afterAbortMs < PROMPT_MS, `rejected ${afterAbortMs.toFixed(0)} ms after the abort`);
    // Only the files already being inspected when the signal aborted (16 at a time) may still finish.
    assert.ok(progressAfterAbort <= 16, `${progressAfterAbort} files finished after the abort`);
  },
);
