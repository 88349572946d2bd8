// Feature vectors on disk, outside the dataset, so a second run (or a run with another head)
// neither decodes nor embeds anything. Layout: `<dir>/<hash of cacheKey>/<sha[0:2]>/<sha>.f32`,
// raw little-endian float32, exactly `featureSize` values; `key.txt` beside the entries names the
// full cache key (model id, weights, preprocessing, extraction route). Entries are written to a
// temporary file and renamed, so a crash never leaves a half-written entry under a real name;
// anything that does not have the exact length is treated as a miss and rewritten.
import { createHash, randomBytes } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';

const SHA256 = /^[0-9a-f]{64}$/;
/** Entries are little-endian; on such a machine (x86, ARM) they are copied as bytes, not converted value by value. */
const LITTLE_ENDIAN = os.endianness() === 'LE';

export class FeatureCache {
  /** Folder holding this cache key's entries. */
  readonly root: string;
  private hitCount = 0;
  private missCount = 0;
  private keyWritten: Promise<void> | undefined;

  constructor(
    dir: string,
    readonly cacheKey: string,
    readonly featureSize: number,
  ) {
    if (!Number.isInteger(featureSize) || featureSize <= 0) throw new Error(`FeatureCache: bad feature size ${featureSize}`);
    this.root = path.join(dir, createHash('sha256').update(cacheKey).digest('hex').slice(0, 24));
  }

  /** Lookups that found a valid entry. */
  get hits(): number {
    return this.hitCount;
  }

  /** Lookups that found nothing usable. */
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
    return this.decode(data);
  }

  /**
   * The cached vectors of many files (undefined where missing), in order. Reads are synchronous,
   * in slices of `slice` entries with the event loop let through between them: entries are small
   * local files the page cache usually holds, and a synchronous read costs about a third of an
   * asynchronous one's thread-pool round trips (4,311 entries: 150 ms against 450 ms here).
   */
  async getMany(sha256s: readonly string[], slice = 256): Promise<(Float32Array | undefined)[]> {
    const out: (Float32Array | undefined)[] = [];
    for (let start = 0; start < sha256s.length; start += slice) {
      if (start > 0) await new Promise((resolve) => setImmediate(resolve));
      for (const sha of sha256s.slice(start, start + slice)) {
        const file = this.fileOf(sha);
        let data: Buffer | undefined;
        try {
          data = fsSync.readFileSync(file);
        } catch {
          data = undefined;
        }
        out.push(this.decode(data));
      }
    }
    return out;
  }

  /** An entry's bytes as a vector, counting the hit or the miss (absent, wrong length or not finite). */
  private decode(data: Buffer | undefined): Float32Array | undefined {
    if (!data || data.length !== this.featureSize * 4) {
      this.missCount++;
      return undefined;
    }
    const v = new Float32Array(this.featureSize);
    if (LITTLE_ENDIAN) new Uint8Array(v.buffer).set(data);
    else for (let i = 0; i < this.featureSize; i++) v[i] = data.readFloatLE(i * 4);
    if (!v.every(Number.isFinite)) {
      this.missCount++;
      return undefined;
    }
    this.hitCount++;
    return v;
  }

  /** Stores `v` for content hash `sha256` atomically (temporary file, then rename). */
  async put(sha256: string, v: Float32Array): Promise<void> {
    if (v.length !== this.featureSize) throw new Error(`FeatureCache: vector has ${v.length} values, expected ${this.featureSize}`);
    const file = this.fileOf(sha256);
    await fs.mkdir(path.dirname(file), { recursive: true });
    this.keyWritten ??= fs.writeFile(path.join(this.root, 'key.txt'), `${this.cacheKey}\n`).catch(() => undefined);
    await this.keyWritten;
    const data = Buffer.alloc(v.length * 4);
    if (LITTLE_ENDIAN) data.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    else for (let i = 0; i < v.length; i++) data.writeFloatLE(v[i], i * 4);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await fs.writeFile(tmp, data);
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
  }
}
