// Feature maps cached beside the features (`<cache>/maps/<key>.map`), so a rerun on the same
// images with the same base model and map settings reads its layout instead of recomputing it.
// The key hashes the feature cache key, the method (seed included) and each point's content hash
// in order; the file is a 16-hex-digit checksum of its JSON body (seeded with the key), a newline,
// then the body. One that fails its check is reported, discarded and recomputed.
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { FeatureMapMethod } from '../../shared/featureMap';
import type { CacheIssues } from '../util/cacheFolder';
import { checksum64, seedOf } from '../util/checksum';

export interface CachedLayout {
  x: number[];
  y: number[];
}

/** The cache key of a map: base model and preprocessing, method, and the points' contents in order. */
export function mapCacheKey(featureKey: string, method: FeatureMapMethod, sha256s: readonly string[]): string {
  const h = createHash('sha256').update(`feature-map@1\n${featureKey}\n${JSON.stringify(method)}\n`);
  for (const sha of sha256s) h.update(sha);
  return h.digest('hex');
}

function fileOf(cacheDir: string, key: string): string {
  return path.join(cacheDir, 'maps', `${key}.map`);
}

/** The cached layout of `key` with `n` points, or undefined (missing; or damaged: reported, removed). */
export async function readCachedLayout(cacheDir: string, key: string, n: number, issues: CacheIssues): Promise<CachedLayout | undefined> {
  const file = fileOf(cacheDir, key);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const newline = text.indexOf('\n');
  const body = text.slice(newline + 1);
  let layout: unknown;
  try {
    if (newline !== 16 || checksum64(Buffer.from(body, 'utf8'), seedOf(key)) !== text.slice(0, 16)) throw new Error('checksum');
    layout = JSON.parse(body);
  } catch {
    layout = undefined;
  }
  const ok =
    typeof layout === 'object' &&
    layout !== null &&
    [(layout as CachedLayout).x, (layout as CachedLayout).y].every((c) => Array.isArray(c) && c.length === n && c.every(Number.isFinite));
  if (ok) return layout as CachedLayout;
  issues.damaged(`feature map ${file} failed its checksum: discarded, projected again`);
  await fs.rm(file, { force: true });
  return undefined;
}

/** Writes a layout under `key` (to a temporary name, then renamed); a failed write only turns caching off. */
export async function writeCachedLayout(cacheDir: string, key: string, layout: CachedLayout, issues: CacheIssues): Promise<void> {
  if (!issues.writable) return;
  const file = fileOf(cacheDir, key);
  const body = JSON.stringify({ x: layout.x, y: layout.y });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(tmp, `${checksum64(Buffer.from(body, 'utf8'), seedOf(key))}\n${body}`);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    issues.writeFailed(err);
  }
}
