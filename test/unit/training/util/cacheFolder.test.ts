import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { CacheFolder, isStaleTemp, removeStaleTemps } from '../../../../src/training/util/cacheFolder';
import { tempDir } from '../../../support/tempDirs';

const DEAD_PID = 4_194_999; // above Linux's largest pid: never alive

test('a usable folder is created, probed without leaving anything, and stays on', async () => {
  const dir = path.join(tempDir('cache-folder-'), 'nested', 'cache');
  const warnings: string[] = [];
  const cache = await CacheFolder.open(dir, (m) => warnings.push(m));
  assert.equal(cache.dir, dir);
  assert.ok(cache.writable);
  assert.deepEqual(fs.readdirSync(dir), []);
  assert.deepEqual(warnings, []);
});

test('a folder that is a file, or below a file, turns caching off with one warning in words', async () => {
  const file = path.join(tempDir('cache-folder-'), 'cache');
  fs.writeFileSync(file, 'x');
  for (const [dir, reason] of [
    [file, 'it is a file, not a folder'],
    [path.join(file, 'below'), 'a part of its path is a file, not a folder (ENOTDIR)'],
  ]) {
    const warnings: string[] = [];
    const cache = await CacheFolder.open(dir, (m) => warnings.push(m));
    assert.equal(cache.dir, undefined);
    assert.equal(cache.writable, false);
    assert.deepEqual(warnings, [
      `Cache folder ${dir} cannot be used: ${reason}. Continuing without caching (scan index, features, ONNX graph, downloaded models).`,
    ]);
  }
});

test('a write that fails later turns caching off once, with one warning, and damage is passed on as said', async () => {
  const warnings: string[] = [];
  const cache = await CacheFolder.open(tempDir('cache-folder-'), (m) => warnings.push(m));
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  cache.writeFailed(full);
  cache.writeFailed(full);
  cache.damaged('feature pack of /data failed its checksum: discarded, vectors recomputed');
  assert.equal(cache.dir, undefined);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /cannot be used: no space left on the disk \(ENOSPC\)\. Continuing without caching/);
  assert.equal(warnings[1], 'feature pack of /data failed its checksum: discarded, vectors recomputed');
});

test("only the product's temporary files whose writer is gone, or that are older than any write, are stale", () => {
  const now = Date.now();
  assert.ok(isStaleTemp(`a.json.tmp-${DEAD_PID}-3`, now, now));
  assert.ok(isStaleTemp(`${'f'.repeat(64)}.f32.${DEAD_PID}.0badcafe.tmp`, now, now));
  assert.ok(!isStaleTemp(`a.json.tmp-${process.pid}-3`, now, now), 'a live writer');
  assert.ok(isStaleTemp(`a.json.tmp-${process.pid}-3`, now - 2 * 60 * 60 * 1000, now), 'two hours old: no write takes that long');
  for (const name of ['notes.tmp', 'a.json', `a.f32.${DEAD_PID}.xyz.tmp`, `a.tmp-${DEAD_PID}`]) assert.ok(!isStaleTemp(name, 0, now), name);
});

test('the sweep removes stale temporary files from the folders the product writes them to, and nothing else', async () => {
  const dir = tempDir('cache-folder-');
  const root = path.join(dir, '0123456789abcdef01234567');
  for (const sub of [
    path.join(dir, 'scan'),
    path.join(dir, 'onnx'),
    path.join(root, 'tmp'),
    path.join(root, 'packs'),
    path.join(root, 'ab'),
  ]) {
    fs.mkdirSync(sub, { recursive: true });
  }
  const stale = [path.join(dir, 'scan', `x.json.tmp-${DEAD_PID}-1`), path.join(root, 'tmp', `y.f32.${DEAD_PID}.01234567.tmp`)];
  const kept = [
    path.join(dir, 'scan', 'x.json'),
    path.join(root, 'ab', `z.f32.${DEAD_PID}.01234567.tmp`),
    path.join(dir, 'onnx', 'notes.tmp'),
  ];
  for (const file of [...stale, ...kept]) fs.writeFileSync(file, 'x');
  assert.equal(await removeStaleTemps(dir), 2);
  for (const file of stale) assert.equal(fs.existsSync(file), false, file);
  for (const file of kept) assert.ok(fs.existsSync(file), file);
});
