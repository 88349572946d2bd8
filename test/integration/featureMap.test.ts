// The feature map through the built CLI on the sample: one point per image with its class and side,
// the same seed gives the same layout (from scratch or from the cache), another seed another one,
// and a damaged cached map is said, discarded and projected again.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FeatureMapFile } from '../../src/shared/featureMap';
import { isFeatureMapFile } from '../../src/shared/featureMap';
import type { ImageList } from '../../src/shared/runFolder';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, readJson } from '../support/trainingBundle';

let work: string;
let data: string;

function train(cache: string, seed: number): Promise<{ runDir: string; map: FeatureMapFile; log: string }> {
  const runs = path.join(work, `runs-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    const args = [bundle, 'train', data, '--out', runs, '--cache', cache, '--seed', String(seed), '--epochs', '2', '--quiet'];
    execFile(process.execPath, args, { timeout: 120_000 }, (error, _stdout, stderr) => {
      if (error) return reject(new Error(stderr));
      const runDir = path.join(runs, fs.readdirSync(runs)[0]!);
      const map: unknown = readJson(path.join(runDir, 'feature-map.json'));
      assert.ok(isFeatureMapFile(map), 'feature-map.json has the documented shape');
      resolve({ runDir, map, log: fs.readFileSync(path.join(runDir, 'train.log'), 'utf8') });
    });
  });
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  work = tempDir('it-map-');
  data = path.join(work, 'leaves');
  copySample(data, 12);
});

test('every image the run used is one point, with its class and side', async () => {
  const { runDir, map } = await train(path.join(work, 'cache-a'), 5);
  const images = readJson<ImageList>(path.join(runDir, 'images.json'));
  assert.deepEqual([...map.paths].sort(), images.images.map((r) => r[0]).sort());
  const row = new Map(images.images.map((r) => [r[0], r]));
  map.paths.forEach((p, i) => {
    assert.equal(map.classes[map.labels[i]!], images.classes[row.get(p)![1]]);
    assert.equal(map.sides[i], row.get(p)![2] === 'val' ? 1 : 0);
  });
  assert.equal(map.method.seed, 5);
  assert.equal(map.cached, false);
});

test('the same seed gives the same layout, computed afresh or read from the cache; another seed another', async () => {
  const first = await train(path.join(work, 'cache-b'), 9);
  const fresh = await train(path.join(work, 'cache-c'), 9);
  const cached = await train(path.join(work, 'cache-b'), 9);
  assert.equal(fresh.map.cached, false);
  assert.equal(cached.map.cached, true);
  assert.match(cached.log, /Feature map: 48 images \(from the cache\)/);
  assert.deepEqual([fresh.map.x, fresh.map.y], [first.map.x, first.map.y]);
  assert.deepEqual([cached.map.x, cached.map.y], [first.map.x, first.map.y]);
  const other = await train(path.join(work, 'cache-b'), 10);
  assert.notDeepEqual([other.map.x, other.map.y], [first.map.x, first.map.y]);
});

test('a damaged cached map is reported, discarded and projected again to the same layout', async () => {
  const cache = path.join(work, 'cache-d');
  const first = await train(cache, 3);
  const maps = path.join(cache, 'maps');
  const [file] = fs.readdirSync(maps);
  const text = fs.readFileSync(path.join(maps, file!), 'utf8');
  // One digit of one coordinate changed: still JSON, still the right length, but not what was written.
  const at = text.indexOf('0.', 40) + 3;
  fs.writeFileSync(path.join(maps, file!), text.slice(0, at) + (text[at] === '1' ? '2' : '1') + text.slice(at + 1));
  const again = await train(cache, 3);
  assert.match(again.log, /\[warn\] feature map .*\.map failed its checksum: discarded, projected again/);
  assert.equal(again.map.cached, false);
  assert.deepEqual([again.map.x, again.map.y], [first.map.x, first.map.y]);
});
