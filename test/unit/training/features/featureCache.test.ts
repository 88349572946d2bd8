import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FeatureCache } from '../../../../src/training/features/featureCache';

const KEY = 'mobilenet_v2_0.35|e159deb3afa15bc6|224px|x*0.00784313725490196+-1|global_average_pooling2d|fused-v1';
const SIZE = 1280;

let dir: string;

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function vector(seed: number): Float32Array {
  return Float32Array.from({ length: SIZE }, (_, i) => Math.sin(seed * 1000 + i) * 3);
}

/** Where an entry lives, found from the cache itself rather than by repeating its layout. */
function entryFile(cache: FeatureCache, hash: string): string {
  return path.join(cache.root, hash.slice(0, 2), `${hash}.f32`);
}

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'feature-cache-test-'));
});

after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('FeatureCache', () => {
  it('misses first, then returns exactly what was stored and counts the hit', async () => {
    const cache = new FeatureCache(dir, KEY, SIZE);
    const hash = sha('image one');
    assert.equal(await cache.get(hash), undefined);
    const v = vector(1);
    await cache.put(hash, v);
    assert.deepEqual(await cache.get(hash), v);
    assert.equal(cache.misses, 1);
    assert.equal(cache.hits, 1);
  });

  it('looks many entries up at once, in order, with hits and misses counted', async () => {
    const cache = new FeatureCache(dir, `${KEY}|many`, SIZE);
    const stored = Array.from({ length: 40 }, (_, i) => ({ hash: sha(`many ${i}`), v: vector(100 + i) }));
    for (const { hash, v } of stored) await cache.put(hash, v);
    const asked = stored.flatMap(({ hash }, i) => (i % 4 === 0 ? [hash, sha(`absent ${i}`)] : [hash]));
    const got = await cache.getMany(asked, { slice: 7 });
    assert.equal(got.length, asked.length);
    let k = 0;
    stored.forEach(({ v }, i) => {
      assert.deepEqual(got[k++], v, `entry ${i} comes back in its place, value for value`);
      if (i % 4 === 0) assert.equal(got[k++], undefined);
    });
    assert.equal(cache.hits, 40);
    assert.equal(cache.misses, 10);
  });

  it("serves a dataset's vectors from its pack, and falls back to the entries where the pack is missing, stale or damaged", async () => {
    const cache = new FeatureCache(dir, `${KEY}|pack`, SIZE);
    const stored = Array.from({ length: 12 }, (_, i) => ({ sha256: sha(`packed ${i}`), v: vector(200 + i) }));
    for (const { sha256, v } of stored) await cache.put(sha256, v);
    const shas = stored.map((e) => e.sha256);
    await cache.writePack('dataset-a', stored);
    // With the entries gone, only the pack can answer.
    for (const e of stored) fs.rmSync(entryFile(cache, e.sha256));
    const fromPack = await cache.getMany([...shas, shas[0]], { pack: 'dataset-a' });
    stored.forEach((e, i) => assert.deepEqual(fromPack[i], e.v));
    assert.deepEqual(fromPack[12], stored[0].v, 'a duplicate is served too');
    assert.ok(cache.packServedAll(12), 'the pack held exactly these vectors');
    assert.equal(cache.hits, 13);

    assert.equal((await cache.getMany(shas, { pack: 'another-dataset' })).filter(Boolean).length, 0, 'another pack name: entries only');
    assert.equal(cache.packServedAll(12), false);
    for (const { sha256, v } of stored) await cache.put(sha256, v);
    const file = path.join(cache.root, 'packs', 'dataset-a.pack');
    const whole = fs.readFileSync(file);
    fs.writeFileSync(file, whole.subarray(0, whole.length - 1));
    assert.deepEqual(
      await cache.getMany(shas, { pack: 'dataset-a' }),
      stored.map((e) => e.v),
      'a pack cut short is ignored',
    );
    assert.equal(cache.packServedAll(12), false);

    await cache.writePack('dataset-a', [...stored.slice(0, 11), { sha256: stored[11].sha256, v: new Float32Array(SIZE).fill(Number.NaN) }]);
    assert.deepEqual(
      await cache.getMany(shas, { pack: 'dataset-a' }),
      stored.map((e) => e.v),
      'a non-finite packed vector is read from its entry',
    );
    assert.equal(cache.packServedAll(12), false);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ['dataset-a.pack'], 'no temporary file is left behind');
    await assert.rejects(cache.writePack('../escape', stored), /bad pack name/);
  });

  it('writes and reads a pack larger than one write slice, every vector in its place', async () => {
    const cache = new FeatureCache(dir, `${KEY}|big-pack`, SIZE);
    const stored = Array.from({ length: 450 }, (_, i) => ({ sha256: sha(`big ${i}`), v: vector(1000 + i) }));
    await cache.writePack('big', stored);
    const got = await cache.getMany(stored.map((e) => e.sha256).reverse(), { pack: 'big' });
    got.reverse().forEach((v, i) => assert.deepEqual(v, stored[i].v, `vector ${i}`));
    assert.ok(cache.packServedAll(450));
    assert.equal(cache.misses, 0, 'no entry files exist: every vector came from the pack');
  });

  it('finds entries written by an earlier run with the same key', async () => {
    const hash = sha('image two');
    await new FeatureCache(dir, KEY, SIZE).put(hash, vector(2));
    const second = new FeatureCache(dir, KEY, SIZE);
    assert.deepEqual(await second.get(hash), vector(2));
    assert.deepEqual([second.hits, second.misses], [1, 0]);
  });

  it('misses for another cache key (another model, preprocessing or route)', async () => {
    const hash = sha('image three');
    await new FeatureCache(dir, KEY, SIZE).put(hash, vector(3));
    const other = new FeatureCache(dir, KEY.replace('fused-v1', 'layers-v1'), SIZE);
    assert.equal(await other.get(hash), undefined);
    assert.equal(other.misses, 1);
  });

  it('writes through a temporary file and never reads a stray one as an entry', async () => {
    const cache = new FeatureCache(dir, KEY, SIZE);
    const hash = sha('image four');
    const file = entryFile(cache, hash);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // What a crash between write and rename leaves behind.
    fs.writeFileSync(`${file}.12345.deadbeef.tmp`, Buffer.from(vector(4).buffer));
    assert.equal(await cache.get(hash), undefined);
    await cache.put(hash, vector(4));
    const leftovers = fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(hash) && f.endsWith('.tmp'));
    assert.deepEqual(leftovers, [`${hash}.f32.12345.deadbeef.tmp`], 'put leaves no temporary file of its own');
    assert.equal(fs.statSync(file).size, SIZE * 4);
    assert.deepEqual(await cache.get(hash), vector(4));
  });

  it('treats an entry of the wrong length as a miss and replaces it on the next put', async () => {
    const cache = new FeatureCache(dir, KEY, SIZE);
    const hash = sha('image five');
    const file = entryFile(cache, hash);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.alloc(SIZE * 4 - 7));
    assert.equal(await cache.get(hash), undefined);
    assert.equal(cache.misses, 1);
    await cache.put(hash, vector(5));
    assert.deepEqual(await cache.get(hash), vector(5));
  });

  it('records the full key beside the entries', async () => {
    const cache = new FeatureCache(dir, KEY, SIZE);
    await cache.put(sha('image six'), vector(6));
    assert.equal(fs.readFileSync(path.join(cache.root, 'key.txt'), 'utf8').trim(), KEY);
  });

  it('rejects vectors of the wrong size and names that are not sha256 digests', async () => {
    const cache = new FeatureCache(dir, KEY, SIZE);
    await assert.rejects(cache.put(sha('x'), new Float32Array(10)), /10 values, expected 1280/);
    await assert.rejects(cache.get('../../etc/passwd'), /not a sha256/);
  });
});
