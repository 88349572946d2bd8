import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { type ScanOptions, type ScanResult, scanDataset } from '../../../../src/training/dataset/datasetScanner';
import { hashTree } from '../../../fixtures/datasetFixtures';

const repoRoot = path.resolve(__dirname, '../../../..');
const LEAVES = path.join(repoRoot, 'samples/leaves');
const CLASSES = ['black_rot', 'cedar_rust', 'healthy'];
const PER_CLASS = 4;
const options: ScanOptions = { valSplit: 0.25, seed: 42, maxPixels: 100_000_000 };

interface Fixture {
  root: string;
  index: string;
  /** Number of usable images. */
  n: number;
}

// A dataset of real leaf photos (128x128) plus one larger image, and an index folder beside it.
async function makeFixture(t: { after: (fn: () => Promise<void>) => void }): Promise<Fixture> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-trainer-scan-index-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const root = path.join(dir, 'leaves');
  for (const name of CLASSES) {
    await mkdir(path.join(root, name), { recursive: true });
    const files = (await readdir(path.join(LEAVES, name))).sort().slice(0, PER_CLASS);
    for (const file of files) await copyFile(path.join(LEAVES, name, file), path.join(root, name, file));
  }
  await sharp(path.join(LEAVES, 'scab', 'scab_01.jpg'))
    .resize(200, 150)
    .jpeg()
    .toFile(path.join(root, 'healthy', 'large.jpg'));
  await settle();
  return { root, index: path.join(dir, 'cache', 'scan'), n: CLASSES.length * PER_CLASS + 1 };
}

// A file changed within a timestamp tick (50 ms here) before a scan is deliberately not indexed by it.
async function settle(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 150));
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function indexFiles(index: string): Promise<string[]> {
  return (await readdir(index)).map((name) => path.join(index, name));
}

function sameScan(actual: ScanResult, expected: ScanResult): void {
  assert.deepEqual(actual.items, expected.items);
  assert.deepEqual(actual.report, expected.report);
  assert.deepEqual(actual.classes, expected.classes);
}

test('a rescan of an unchanged dataset takes every image from the index and gives the same items, split and report', async (t) => {
  const { root, index, n } = await makeFixture(t);
  const before = await hashTree(root);

  const first = await scanDataset(root, { ...options, index });
  assert.equal(first.indexHits, 0);
  assert.equal(first.items.length, n);
  const [file] = await indexFiles(index);
  assert.equal((await indexFiles(index)).length, 1, 'one index file per dataset root');
  const written = await stat(file, { bigint: true });

  const second = await scanDataset(root, { ...options, index });
  assert.equal(second.indexHits, n);
  sameScan(second, first);
  assert.deepEqual(new Set(second.items.map((i) => i.split)), new Set(['train', 'val']));
  const cold = await scanDataset(root, options);
  assert.equal(cold.indexHits, 0);
  sameScan(second, cold);
  assert.equal((await stat(file, { bigint: true })).mtimeNs, written.mtimeNs, 'an unchanged index is not rewritten');

  assert.deepEqual(await hashTree(root), before, 'nothing was written into the dataset folder');
});

test('an image rewritten in place with the same size and its old mtime is read and hashed again', async (t) => {
  const { root, index, n } = await makeFixture(t);
  const targetAbs = path.join(root, 'cedar_rust', 'cedar_rust_02.jpg');
  // A whole second, so that utimes can restore it to the nanosecond.
  await utimes(targetAbs, 1_700_000_000, 1_700_000_000);
  await settle();
  const first = await scanDataset(root, { ...options, index });
  const target = first.items.find((i) => i.abs === targetAbs)!;
  const old = await stat(target.abs, { bigint: true });
  const bytes = await readFile(target.abs);
  bytes[bytes.length - 100] ^= 0x01; // inside the compressed data: the header still reads
  await writeFile(target.abs, bytes);
  await utimes(target.abs, 1_700_000_000, 1_700_000_000);
  const now = await stat(target.abs, { bigint: true });
  assert.deepEqual([now.dev, now.ino, now.size, now.mtimeNs], [old.dev, old.ino, old.size, old.mtimeNs], 'only the ctime tells');

  const second = await scanDataset(root, { ...options, index });
  assert.equal(second.indexHits, n - 1);
  const item = second.items.find((i) => i.rel === target.rel)!;
  assert.equal(item.sha256, sha256(bytes));
  assert.notEqual(item.sha256, target.sha256);
  sameScan(second, await scanDataset(root, options));
  await settle();
  await scanDataset(root, { ...options, index });
  const third = await scanDataset(root, { ...options, index });
  assert.equal(third.indexHits, n, 'the new content is indexed');
  assert.equal(third.items.find((i) => i.rel === target.rel)!.sha256, sha256(bytes));
});

test('an image replaced by a broken file is reported as skipped with its reason on every rescan, and is usable again once repaired', async (t) => {
  const { root, index, n } = await makeFixture(t);
  await scanDataset(root, { ...options, index });
  const notImage = path.join(root, 'black_rot', 'black_rot_01.jpg');
  const corrupt = path.join(root, 'healthy', 'healthy_02.jpg');
  const good = await readFile(corrupt);
  await writeFile(notImage, 'not an image at all');
  await writeFile(corrupt, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(good.length - 3)]));

  for (const run of [1, 2]) {
    const rescan = await scanDataset(root, { ...options, index });
    assert.equal(rescan.indexHits, n - 2, `rescan ${run}`);
    assert.deepEqual(
      rescan.report.skipped.map((s) => [s.path, s.reason]),
      [
        ['black_rot/black_rot_01.jpg', 'not-image'],
        ['healthy/healthy_02.jpg', 'corrupt'],
      ],
    );
    assert.equal(
      rescan.report.skipped[1].detail,
      'JPEG header cannot be read: Input buffer has corrupt header',
      'the same words on every scan',
    );
    sameScan(rescan, await scanDataset(root, options));
  }

  await writeFile(corrupt, good);
  const repaired = await scanDataset(root, { ...options, index });
  assert.equal(repaired.items.length, n - 1);
  assert.deepEqual(
    repaired.report.skipped.map((s) => s.path),
    ['black_rot/black_rot_01.jpg'],
  );
  assert.equal(repaired.items.find((i) => i.rel === 'healthy/healthy_02.jpg')!.sha256, sha256(good));
});

test('a damaged, foreign or outdated index is ignored and rewritten, and deleted images drop out of it', async (t) => {
  const { root, index, n } = await makeFixture(t);
  const first = await scanDataset(root, { ...options, index });
  const [file] = await indexFiles(index);
  const valid = await readFile(file, 'utf8');
  const parsed = JSON.parse(valid) as { version: number; root: string; entries: Record<string, unknown[]> };
  assert.equal(Object.keys(parsed.entries).length, n);

  const damaged = [
    '{"version":1,"entries":{', // cut short
    '\u0000\u0001binary',
    JSON.stringify({ ...parsed, version: 999 }),
    JSON.stringify({ ...parsed, root: path.join(root, 'elsewhere') }),
    'null',
  ];
  for (const text of damaged) {
    await writeFile(file, text);
    const rescan = await scanDataset(root, { ...options, index });
    assert.equal(rescan.indexHits, 0, text.slice(0, 30));
    sameScan(rescan, first);
    assert.equal(await readFile(file, 'utf8'), valid, 'rewritten');
  }

  // Rows that do not look right are dropped one by one; the rest are used.
  const entries = Object.entries(parsed.entries);
  const mangled = {
    ...parsed,
    entries: Object.fromEntries(
      entries.map(([abs, row], i) => [abs, i === 0 ? ['x', 'y'] : i === 1 ? [...row.slice(0, 4), 'bmp', ...row.slice(5)] : row]),
    ),
  };
  await writeFile(file, JSON.stringify(mangled));
  assert.equal((await scanDataset(root, { ...options, index })).indexHits, n - 2);

  await unlink(path.join(root, 'black_rot', 'black_rot_03.jpg'));
  const shrunk = await scanDataset(root, { ...options, index });
  assert.equal(shrunk.indexHits, n - 1);
  assert.equal(Object.keys((JSON.parse(await readFile(file, 'utf8')) as typeof parsed).entries).length, n - 1);
});

test('lowering maxPixels on a rescan skips an indexed image as too-many-pixels without reading it again, and raising it brings it back', async (t) => {
  const { root, index, n } = await makeFixture(t);
  await scanDataset(root, { ...options, index });
  const maxPixels = 128 * 128;

  const lowered = await scanDataset(root, { ...options, maxPixels, index });
  assert.equal(lowered.indexHits, n);
  assert.deepEqual(
    lowered.report.skipped.map((s) => [s.path, s.reason]),
    [['healthy/large.jpg', 'too-many-pixels']],
  );
  assert.match(lowered.report.skipped[0].detail, /200x150 = 30,000 pixels, over the limit of 16,384/);
  sameScan(lowered, await scanDataset(root, { ...options, maxPixels }));

  const raised = await scanDataset(root, { ...options, index });
  assert.equal(raised.indexHits, n);
  assert.equal(raised.items.length, n);
  assert.deepEqual(raised.report.skipped, []);
});

test('an index folder inside the dataset, even through a link, is never used or created', async (t) => {
  const { root, n } = await makeFixture(t);
  const before = await hashTree(root);
  const outside = path.join(path.dirname(root), 'outside');
  await mkdir(outside);
  await symlink(root, path.join(outside, 'link'));
  for (const index of [path.join(root, '.cache'), path.join(root, 'healthy', 'scan'), path.join(outside, 'link', 'scan')]) {
    for (const run of [1, 2]) {
      const scan = await scanDataset(root, { ...options, index });
      assert.equal(scan.indexHits, 0, `${index} run ${run}`);
      assert.equal(scan.items.length, n);
    }
  }
  assert.deepEqual(await hashTree(root), before);
});

test('an index that cannot be written only costs time', async (t) => {
  const { root, n } = await makeFixture(t);
  const blocker = path.join(path.dirname(root), 'a-file');
  await writeFile(blocker, 'a file where the index folder should be');
  for (const run of [1, 2]) {
    const scan = await scanDataset(root, { ...options, index: path.join(blocker, 'scan') });
    assert.equal(scan.indexHits, 0, `run ${run}`);
    assert.equal(scan.items.length, n);
  }
});

test('index rows with an edited sha256 or with hashes swapped between classes fail their checksum: discarded with one warning, the files read again, the scan as without an index', async (t) => {
  const { root, index, n } = await makeFixture(t);
  const first = await scanDataset(root, { ...options, index });
  const [file] = await indexFiles(index);
  const valid = await readFile(file, 'utf8');
  const parsed = JSON.parse(valid) as { entries: Record<string, unknown[]> };
  const rot = path.join(root, 'black_rot', 'black_rot_01.jpg');
  const rust = path.join(root, 'cedar_rust', 'cedar_rust_01.jpg');
  const healthy = path.join(root, 'healthy', 'healthy_01.jpg');
  const edited = structuredClone(parsed);
  edited.entries[healthy][1] = sha256(Buffer.from('another image'));
  const swapped = structuredClone(parsed);
  [swapped.entries[rot][1], swapped.entries[rust][1]] = [parsed.entries[rust][1], parsed.entries[rot][1]];
  for (const [what, mangled, bad] of [
    ['an edited sha256', edited, 1],
    ['hashes swapped between classes', swapped, 2],
  ] as const) {
    await writeFile(file, JSON.stringify(mangled));
    const damaged: string[] = [];
    const issues = { writable: true, damaged: (m: string) => damaged.push(m), writeFailed: assert.fail };
    const rescan = await scanDataset(root, { ...options, index: { folder: index, issues } });
    sameScan(rescan, first);
    assert.equal(rescan.indexHits, n - bad, what);
    assert.equal(damaged.length, 1, what);
    assert.match(
      damaged[0],
      new RegExp(`^${bad} scan-index rows? of .+ failed (its|their) checksum: discarded, (its file|those files) read again$`),
    );
    assert.equal(await readFile(file, 'utf8'), valid, `${what}: the index is written back whole`);
  }
});

test('a scan index that cannot be written is reported, and the scan result is unaffected', async (t) => {
  const { root, n } = await makeFixture(t);
  const blocker = path.join(path.dirname(root), 'a-file');
  await writeFile(blocker, 'not a folder');
  const failures: unknown[] = [];
  const issues = { writable: true, damaged: assert.fail, writeFailed: (e: unknown) => failures.push(e) };
  const scan = await scanDataset(root, { ...options, index: { folder: path.join(blocker, 'scan'), issues } });
  assert.equal(scan.items.length, n);
  assert.deepEqual(
    failures.map((e) => (e as NodeJS.ErrnoException).code),
    ['ENOTDIR'],
  );
});
