// A derived result in the cache folder as numeric arrays and a small JSON header: fine-tuning's
// weights and features, the unknown detector's whitening, the similarity pass's neighbours. Each is
// a pure function of its key (the caller hashes what it depends on), so it can be reused by any
// run that computes the same key. The file is a 16-hex-digit checksum of everything after it
// (seeded with the key), a newline, the header as one JSON line (with the key and each array's
// type and length), then the arrays back to back. One that fails the check, answers another key or
// holds other shapes than the caller expects is reported, removed and recomputed.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from './atomicWrite';
import type { CacheFolder } from './cacheFolder';
import { checksum64, seedOf } from './checksum';

export type NumericArray = Float32Array | Float64Array | Int32Array;

const TYPES = { f32: Float32Array, f64: Float64Array, i32: Int32Array } as const;
type TypeName = keyof typeof TYPES;

function typeOf(a: NumericArray): TypeName {
  if (a instanceof Float64Array) return 'f64';
  if (a instanceof Int32Array) return 'i32';
  return 'f32';
}

interface Stored<H> {
  key: string;
  header: H;
  arrays: { type: TypeName; length: number }[];
}

export interface ArrayArtifact<H> {
  header: H;
  arrays: NumericArray[];
}

/** `<cache>/<kind>/<first 32 hex digits of key>.bin`. */
export function artifactFile(cacheDir: string, kind: string, key: string): string {
  return path.join(cacheDir, kind, `${key.slice(0, 32)}.bin`);
}

function encode<H>(key: string, artifact: ArrayArtifact<H>): Uint8Array {
  const stored: Stored<H> = { key, header: artifact.header, arrays: artifact.arrays.map((a) => ({ type: typeOf(a), length: a.length })) };
  const head = Buffer.from(`${JSON.stringify(stored)}\n`, 'utf8');
  const body = Buffer.alloc(head.length + artifact.arrays.reduce((n, a) => n + a.byteLength, 0));
  head.copy(body, 0);
  let at = head.length;
  for (const a of artifact.arrays) {
    body.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
    at += a.byteLength;
  }
  return Buffer.concat([Buffer.from(`${checksum64(body, seedOf(key))}\n`, 'utf8'), body]);
}

function decode<H>(key: string, bytes: Buffer): ArrayArtifact<H> | undefined {
  if (bytes.length < 17 || bytes[16] !== 0x0a) return undefined;
  const body = bytes.subarray(17);
  if (checksum64(body, seedOf(key)) !== bytes.subarray(0, 16).toString('utf8')) return undefined;
  const end = body.indexOf(0x0a);
  const stored = JSON.parse(body.subarray(0, end).toString('utf8')) as Stored<H>;
  if (stored.key !== key || !stored.arrays.every((a) => a.type in TYPES)) return undefined;
  // A copy: its own buffer, so every typed view is aligned.
  const data = new Uint8Array(body.subarray(end + 1));
  if (data.length !== stored.arrays.reduce((n, a) => n + a.length * TYPES[a.type].BYTES_PER_ELEMENT, 0)) return undefined;
  // Float64 arrays need 8-byte alignment: each array gets its own copy.
  let at = 0;
  const arrays = stored.arrays.map(({ type, length }) => {
    const bytesOf = length * TYPES[type].BYTES_PER_ELEMENT;
    const own = data.slice(at, at + bytesOf);
    at += bytesOf;
    return new TYPES[type](own.buffer, 0, length);
  });
  return { header: stored.header, arrays };
}

/**
 * The artifact of `key`, or undefined: absent, or damaged (a failed checksum, another key, or
 * shapes `fits` refuses), which is reported ("<what> <file> failed its checksum: discarded, <then>") and removed.
 */
export async function readArrayArtifact<H>(
  folder: CacheFolder,
  kind: string,
  key: string,
  report: { what: string; then: string },
  fits: (artifact: ArrayArtifact<H>) => boolean = () => true,
): Promise<ArrayArtifact<H> | undefined> {
  if (!folder.dir) return undefined;
  const file = artifactFile(folder.dir, kind, key);
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch {
    return undefined;
  }
  let found: ArrayArtifact<H> | undefined;
  try {
    found = decode<H>(key, bytes);
  } catch {
    found = undefined;
  }
  if (found && fits(found)) return found;
  folder.damaged(`${report.what} ${file} failed its checksum: discarded, ${report.then}`);
  await fs.rm(file, { force: true }).catch(() => undefined);
  return undefined;
}

/** Stores an artifact under `key` (atomically; a failure only turns caching off, with one warning). */
export async function writeArrayArtifact<H>(folder: CacheFolder, kind: string, key: string, artifact: ArrayArtifact<H>): Promise<void> {
  if (!folder.dir || !folder.writable) return;
  const file = artifactFile(folder.dir, kind, key);
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, encode(key, artifact));
  } catch (error) {
    folder.writeFailed(error);
  }
}
