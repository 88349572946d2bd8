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
    const tmpDir = path.join(cache.root, 'tmp');
    fs.mkdirSync(tmpDir, { recursive: true });
    fs.writeFileSync(path.join(tmpDir, `${hash}.f32.12345.deadbeef.tmp`), Buffer.from(vector(4).buffer));
    assert.equal(await cache.get(hash), undefined);
    await cache.put(hash, vector(4));
    assert.deepEqual(fs.readdirSync(tmpDir), [`${hash}.f32.12345.deadbeef.tmp`], 'put leaves no temporary file of its own');
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith(hash)),
      [`${hash}.f32`],
      'nothing temporary beside the entries',
    );
    assert.equal(fs.statSync(file).size, SIZE * 4 + 8, 'the vector, then its 8-byte checksum');
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

  it("discards an entry with a flipped bit, same-size garbage or another image's vector, says so once, and stores it again on the next put", async () => {
    const damaged: string[] = [];
    const cache = new FeatureCache(dir, `${KEY}|damage`, SIZE, {
      writable: true,
      damaged: (m) => damaged.push(m),
      writeFailed: assert.fail,
    });
    const hashes = [sha('flip'), sha('garbage'), sha('swapped'), sha('intact')];
    for (const [i, h] of hashes.entries()) await cache.put(h, vector(30 + i));
    const flipped = fs.readFileSync(entryFile(cache, hashes[0]));
    flipped[100] ^= 0x04;
    fs.writeFileSync(entryFile(cache, hashes[0]), flipped);
    fs.writeFileSync(entryFile(cache, hashes[1]), Buffer.from(Float32Array.from({ length: SIZE + 2 }, (_, i) => Math.cos(i)).buffer));
    fs.copyFileSync(entryFile(cache, hashes[3]), entryFile(cache, hashes[2]));

    const got = await cache.getMany(hashes);
    assert.deepEqual(got.slice(0, 3), [undefined, undefined, undefined]);
    assert.deepEqual(got[3], vector(33));
    assert.deepEqual([cache.hits, cache.misses], [1, 3]);
    assert.equal(damaged.length, 1, 'one line for all damaged entries');
    assert.match(damaged[0], /^3 feature entries \(.+\.f32 and others\) failed their checksum: discarded, vectors recomputed$/);
    assert.equal(fs.existsSync(entryFile(cache, hashes[0])), false, 'a damaged entry is removed');

    await cache.put(hashes[0], vector(30));
    assert.deepEqual(await cache.get(hashes[0]), vector(30));
    assert.equal(damaged.length, 1, 'nothing more to say');
  });

  it('discards a pack with a flipped bit or garbage in its hashes or vectors, with one warning naming the dataset', async () => {
    const damaged: string[] = [];
    const cache = new FeatureCache(dir, `${KEY}|pack-damage`, SIZE, {
      writable: true,
      damaged: (m) => damaged.push(m),
      writeFailed: assert.fail,
    });
    const stored = Array.from({ length: 5 }, (_, i) => ({ sha256: sha(`pd ${i}`), v: vector(300 + i) }));
    for (const { sha256, v } of stored) await cache.put(sha256, v);
    const shas = stored.map((e) => e.sha256);
    const file = path.join(cache.root, 'packs', 'flowers.pack');
    const edits: [string, (b: Buffer) => void][] = [
      ['a bit of a vector', (b) => (b[b.length - 100] ^= 0x80)],
      ['a bit of a hash', (b) => (b[20] ^= 0x01)],
      ['garbage of the same size', (b) => b.set(Buffer.from(Array.from({ length: b.length }, (_, i) => (i * 7919) & 0xff)))],
    ];
    for (const [what, edit] of edits) {
      await cache.writePack('flowers', stored);
      const bytes = fs.readFileSync(file);
      edit(bytes);
      fs.writeFileSync(file, bytes);
      damaged.length = 0;
      assert.deepEqual(
        await cache.getMany(shas, { pack: 'flowers', label: '/data/flowers' }),
        stored.map((e) => e.v),
        what,
      );
      assert.equal(cache.packServedAll(5), false, what);
      assert.deepEqual(
        damaged,
        ['feature pack of /data/flowers failed its checksum: discarded, vectors read from their entries or recomputed'],
        what,
      );
      assert.equal(fs.existsSync(file), false, `${what}: the damaged pack is removed`);
    }
  });

  it('reports a write that fails (the cache folder is a file) instead of throwing, and writes nothing more once told to stop', async () => {
    const blocker = path.join(dir, 'a-file');
    fs.writeFileSync(blocker, 'not a folder');
    const failures: unknown[] = [];
    const issues = {
      writable: true,
      damaged: assert.fail,
      writeFailed(error: unknown) {
        failures.push(error);
        this.writable = false;
      },
    };
    const cache = new FeatureCache(blocker, KEY, SIZE, issues);
    await cache.put(sha('nowhere'), vector(7));
    await cache.writePack('nowhere', [{ sha256: sha('nowhere'), v: vector(7) }]);
    await cache.put(sha('nowhere 2'), vector(8));
    assert.equal(failures.length, 1);
    assert.equal((failures[0] as NodeJS.ErrnoException).code, 'ENOTDIR');
    assert.equal(await cache.get(sha('nowhere')), undefined);
  });

  it('rejects vectors of the wrong size and names that are not sha256 digests', async () => {
    const cache = new FeatureCache(dir, KEY, SIZE);
    await assert.rejects(cache.put(sha('x'), new Float32Array(10)), /10 values, expected 1280/);
    await assert.rejects(cache.get('../../etc/passwd'), /not a sha256/);
  });
});
