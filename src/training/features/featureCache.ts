// Feature vectors on disk, outside the dataset, so a second run (or a run with another head)
// neither decodes nor embeds anything. Layout (docs/dataset.md has it in full):
// `<dir>/<hash of cacheKey and format>/<sha[0:2]>/<sha>.f32` holds exactly `featureSize`
// little-endian float32 values followed by an 8-byte checksum of them seeded with the content hash,
// so a flipped bit, garbage of the right size or an entry filed under another image's name fails
// its check, is reported, discarded and recomputed. `key.txt` beside the entries names the full
// cache key. Entries and packs are written to `<root>/tmp/` and renamed into place, so a crash
// never leaves a half-written one under a real name (and the next start sweeps the leftovers).
//
// A warm rerun asks for thousands of entries at once; reading them one file each costs ~35 µs an
// entry. So a run also leaves a pack: every vector it used, in one file per dataset
// (`<root>/packs/<name>.pack`) ending with a checksum of all of it, read whole by the next
// `getMany` that names it. Entries stay the source of truth — a pack that is missing or stale only
// means per-entry reads, and one that fails its checksum is discarded with a warning.
import { createHash, randomBytes } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { type CacheIssues, UNREPORTED } from '../util/cacheFolder';
import { BlockChecksum, blockChecksum, checksum64, seedOf } from '../util/checksum';

const SHA256 = /^[0-9a-f]{64}$/;
/** Bumped when the layout of entries or packs changes: another format lives in another folder and is never misread. */
const FORMAT = 2;
/** Bytes of the checksum after an entry's or a pack's payload. */
const CHECK_BYTES = 8;
/** Pack layout: magic, u32 count, u32 feature size, count × 32-byte sha256, count × size float32, 8-byte `blockChecksum` of all before it; little-endian. */
const PACK_MAGIC = Buffer.from('ITFPACK2');
const PACK_HEADER = PACK_MAGIC.length + 8;
/** Entries are little-endian; on such a machine (x86, ARM) they are copied as bytes, not converted value by value. */
const LITTLE_ENDIAN = os.endianness() === 'LE';

/** Whether every value is finite (a plain loop: `every(Number.isFinite)` is ~6× slower on 5 M values). */
function allFinite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) {
    const x = v[i];
    if (x - x !== 0) return false;
  }
  return true;
}

/** The little-endian bytes of `v` (a view on a little-endian machine). */
function bytesOf(v: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) out.writeFloatLE(v[i], i * 4);
  return out;
}

/** Where a pack was read from and how it went: the vectors it served, how many it held. */
interface PackUse {
  served: Set<string>;
  size: number;
}

export class FeatureCache {
  /** Folder holding this cache key's entries. */
  readonly root: string;
  private hitCount = 0;
  private missCount = 0;
  /** Entries that failed their check since the last `reportDamage`, with the first one's path. */
  private damagedEntries = { count: 0, first: '' };
  /** Distinct vectors the last `getMany` served from its pack, and how many that pack held. */
  private lastPack: PackUse = { served: new Set<string>(), size: 0 };
  private keyWritten: Promise<void> | undefined;
  /** Folders known to exist, so a put costs no mkdir after the first in its folder. */
  private readonly madeDirs = new Set<string>();

  constructor(
    dir: string,
    readonly cacheKey: string,
    readonly featureSize: number,
    /** Told about damaged entries and packs and about failed writes (which never throw). */
    private readonly issues: CacheIssues = UNREPORTED,
  ) {
    if (!Number.isInteger(featureSize) || featureSize <= 0) throw new Error(`FeatureCache: bad feature size ${featureSize}`);
    this.root = path.join(dir, createHash('sha256').update(`${cacheKey}\nformat=${FORMAT}`).digest('hex').slice(0, 24));
  }

  /** Lookups that found a valid entry. */
  get hits(): number {
    return this.hitCount;
  }

  /** Whether the last `getMany` served every one of `count` distinct vectors from a pack holding exactly those: no need to write it again. */
  packServedAll(count: number): boolean {
    return this.lastPack.served.size === count && this.lastPack.size === count;
  }

  /** Lookups that found nothing usable (absent or damaged). */
  get misses(): number {
    return this.missCount;
  }

  private fileOf(sha256: string): string {
    const sha = sha256.toLowerCase();
    if (!SHA256.test(sha)) throw new Error(`FeatureCache: not a sha256 hex digest: ${sha256}`);
    return path.join(this.root, sha.slice(0, 2), `${sha}.f32`);
  }

  /** The cached vector of the file with content hash `sha256`, or undefined (counted as a miss). */
  async get(sha256: string): Promise<Float32Array | undefined> {
    const file = this.fileOf(sha256);
    let data: Buffer | undefined;
    try {
      data = await fs.readFile(file);
    } catch {
      data = undefined;
    }
    const v = this.decode(sha256.toLowerCase(), file, data);
    this.reportDamage();
    return v;
  }

  /**
   * The cached vectors of many files (undefined where missing or damaged), in order: from the pack
   * `pack` when one is given and holds them, else entry by entry. Entry reads are synchronous, in
   * slices of `slice` with the event loop let through between them: entries are small local files
   * the page cache usually holds, and a synchronous read costs about a third of an asynchronous
   * one's thread-pool round trips (4,311 entries: 150 ms against 450 ms here). Damage is reported
   * once per artifact: one line for the pack, one for all damaged entries; `label` names the
   * pack's dataset in it.
   */
  async getMany(
    sha256s: readonly string[],
    options: { pack?: string; label?: string; slice?: number } = {},
  ): Promise<(Float32Array | undefined)[]> {
    const slice = options.slice ?? 256;
    const packed = options.pack ? await this.readPack(options.pack, options.label ?? options.pack) : undefined;
    this.lastPack = { served: new Set(), size: packed?.size ?? 0 };
    const out: (Float32Array | undefined)[] = [];
    for (let start = 0; start < sha256s.length; start += slice) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      for (const given of sha256s.slice(start, start + slice)) {
        const sha = given.toLowerCase();
        const fromPack = packed?.get(sha);
        if (fromPack) {
          this.hitCount++;
          this.lastPack.served.add(sha);
          out.push(fromPack);
          continue;
        }
        const file = this.fileOf(sha);
        let data: Buffer | undefined;
        try {
          data = fsSync.readFileSync(file);
        } catch {
          data = undefined;
        }
        out.push(this.decode(sha, file, data));
      }
    }
    this.reportDamage();
    return out;
  }

  private packFile(name: string): string {
    if (!/^[0-9A-Za-z_-]{1,64}$/.test(name)) throw new Error(`FeatureCache: bad pack name ${name}`);
    return path.join(this.root, 'packs', `${name}.pack`);
  }

  /** Replaces the pack `name` with these vectors, atomically; a failure only costs speed later (and is reported). */
  async writePack(name: string, entries: readonly { sha256: string; v: Float32Array }[]): Promise<void> {
    const unique = new Map<string, Float32Array>();
    for (const e of entries) {
      const sha = e.sha256.toLowerCase();
      if (!SHA256.test(sha) || e.v.length !== this.featureSize) throw new Error(`FeatureCache: bad pack entry ${e.sha256}`);
      unique.set(sha, e.v);
    }
    const file = this.packFile(name);
    if (!this.issues.writable) return;
    const n = unique.size;
    const header = Buffer.alloc(PACK_HEADER + n * 32);
    PACK_MAGIC.copy(header, 0);
    header.writeUInt32LE(n, PACK_MAGIC.length);
    header.writeUInt32LE(this.featureSize, PACK_MAGIC.length + 4);
    [...unique.keys()].forEach((sha, i) => header.write(sha, PACK_HEADER + i * 32, 'hex'));
    const vectors = [...unique.values()];
    const perChunk = Math.max(1, Math.floor((1 << 20) / (this.featureSize * 4)));
    // Written a slice of vectors at a time, the checksum computed on the way: a pack of a large
    // dataset is never a second copy in memory.
    await this.writeAtomically(file, async (handle) => {
      const check = new BlockChecksum();
      const write = async (bytes: Uint8Array): Promise<void> => {
        check.update(bytes);
        await handle.write(bytes);
      };
      await write(header);
      const chunk = Buffer.alloc(perChunk * this.featureSize * 4);
      for (let start = 0; start < vectors.length; start += perChunk) {
        const part = vectors.slice(start, start + perChunk);
        part.forEach((v, i) => chunk.set(bytesOf(v), i * this.featureSize * 4));
        await write(chunk.subarray(0, part.length * this.featureSize * 4));
      }
      await handle.write(Buffer.from(check.digest(), 'hex'));
    });
  }

  /** The pack's vectors by sha256 (views into one buffer), or undefined when it is missing, stale or damaged (reported). */
  private async readPack(name: string, label: string): Promise<Map<string, Float32Array> | undefined> {
    let data: Buffer;
    try {
      data = await fs.readFile(this.packFile(name));
    } catch {
      return undefined;
    }
    const n = data.length >= PACK_HEADER ? data.readUInt32LE(PACK_MAGIC.length) : 0;
    const vectorsAt = PACK_HEADER + n * 32;
    const valid =
      data.length >= PACK_HEADER + CHECK_BYTES &&
      data.subarray(0, PACK_MAGIC.length).equals(PACK_MAGIC) &&
      data.readUInt32LE(PACK_MAGIC.length + 4) === this.featureSize &&
      data.length === vectorsAt + n * this.featureSize * 4 + CHECK_BYTES &&
      blockChecksum(data.subarray(0, data.length - CHECK_BYTES)) === data.toString('hex', data.length - CHECK_BYTES);
    if (!valid) {
      this.issues.damaged(`feature pack of ${label} failed its checksum: discarded, vectors read from their entries or recomputed`);
      await fs.rm(this.packFile(name), { force: true }).catch(() => undefined);
      return undefined;
    }
    let all: Float32Array;
    if (LITTLE_ENDIAN && (data.byteOffset + vectorsAt) % 4 === 0) {
      all = new Float32Array(data.buffer, data.byteOffset + vectorsAt, n * this.featureSize);
    } else {
      all = new Float32Array(n * this.featureSize);
      for (let k = 0; k < all.length; k++) all[k] = data.readFloatLE(vectorsAt + k * 4);
    }
    const out = new Map<string, Float32Array>();
    for (let i = 0; i < n; i++) {
      const v = all.subarray(i * this.featureSize, (i + 1) * this.featureSize);
      // A checksum is no proof of sense: a vector that is not finite was stored wrong and is recomputed.
      if (allFinite(v)) out.set(data.toString('hex', PACK_HEADER + i * 32, PACK_HEADER + (i + 1) * 32), v);
    }
    return out;
  }

  /** An entry's bytes as a vector, counting the hit or the miss; a present entry that fails its check is counted as damaged. */
  private decode(sha: string, file: string, data: Buffer | undefined): Float32Array | undefined {
    this.missCount++;
    if (!data) return undefined;
    const payload = this.featureSize * 4;
    if (data.length !== payload + CHECK_BYTES || checksum64(data.subarray(0, payload), seedOf(sha)) !== data.toString('hex', payload)) {
      this.entryDamaged(file);
      return undefined;
    }
    const v = new Float32Array(this.featureSize);
    if (LITTLE_ENDIAN) new Uint8Array(v.buffer).set(data.subarray(0, payload));
    else for (let i = 0; i < this.featureSize; i++) v[i] = data.readFloatLE(i * 4);
    if (!allFinite(v)) {
      this.entryDamaged(file);
      return undefined;
    }
    this.missCount--;
    this.hitCount++;
    return v;
  }

  private entryDamaged(file: string): void {
    if (this.damagedEntries.count++ === 0) this.damagedEntries.first = file;
    try {
      fsSync.rmSync(file, { force: true });
    } catch {
      // A read-only cache keeps it; it fails its check again next time.
    }
  }

  /** Reports the entries found damaged since the last report, in one line. */
  private reportDamage(): void {
    const { count, first } = this.damagedEntries;
    if (count === 0) return;
    this.damagedEntries = { count: 0, first: '' };
    this.issues.damaged(
      count === 1
        ? `feature entry ${first} failed its checksum: discarded, vector recomputed`
        : `${count} feature entries (${first} and others) failed their checksum: discarded, vectors recomputed`,
    );
  }

  /** Stores `v` for content hash `sha256` atomically (temporary file, then rename); a failure is reported, never thrown. */
  async put(sha256: string, v: Float32Array): Promise<void> {
    if (v.length !== this.featureSize) throw new Error(`FeatureCache: vector has ${v.length} values, expected ${this.featureSize}`);
    const sha = sha256.toLowerCase();
    const file = this.fileOf(sha);
    if (!this.issues.writable) return;
    this.keyWritten ??= this.writeAtomically(path.join(this.root, 'key.txt'), (handle) => handle.writeFile(`${this.cacheKey}\n`));
    await this.keyWritten;
    const data = Buffer.alloc(v.length * 4 + CHECK_BYTES);
    data.set(bytesOf(v));
    data.write(checksum64(data.subarray(0, v.length * 4), seedOf(sha)), v.length * 4, 'hex');
    await this.writeAtomically(file, (handle) => handle.writeFile(data));
  }

  /**
   * Writes `file` through a temporary file in `<root>/tmp/` renamed over it, so a reader sees the
   * old or the new content, never a part. No fsync, on purpose: an entry lost to a power cut is a
   * miss, and one cut short fails its checksum. A failure (a full or read-only disk) is reported.
   */
  private async writeAtomically(file: string, write: (handle: fs.FileHandle) => Promise<unknown>): Promise<void> {
    if (!this.issues.writable) return;
    const tmp = path.join(this.root, 'tmp', `${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      for (const dir of [path.dirname(tmp), path.dirname(file)]) {
        if (this.madeDirs.has(dir)) continue;
        await fs.mkdir(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      const handle = await fs.open(tmp, 'w');
      try {
        await write(handle);
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, file);
    } catch (error) {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      this.issues.writeFailed(error);
    }
  }
}
