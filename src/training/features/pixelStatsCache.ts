// Pixel statistics (brightness, contrast, sharpness) beside the feature cache, so a warm doctor run
// reads them instead of decoding every image again. One file per dataset and decode size
// (`<cache>/pixel-stats-v<format>/<dataset key>-<size>.json`: another format lives in another folder
// and is never misread), each entry keyed by the sha256 of the bytes it was decoded from, the whole
// file carrying a checksum: a file that fails it is reported, discarded and its statistics
// recomputed, never used.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { PixelStats } from '../dataset/pixelStats';
import { writeFileAtomic } from '../util/atomicWrite';
import { type CacheIssues, UNREPORTED } from '../util/cacheFolder';
import { checksumOfText } from '../util/checksum';

/** Bumped when the statistics or the file's layout change. */
const FORMAT = 2;

export class PixelStatsCache {
  private dirty = false;

  private constructor(
    /** The file, or undefined when there is no usable cache folder (statistics then live in memory). */
    private readonly file: string | undefined,
    private readonly entries: Map<string, PixelStats>,
    private readonly issues: CacheIssues,
  ) {}

  /** Opens (reads and verifies) the statistics of dataset `packName` decoded at `size` px. */
  static async open(dir: string | undefined, packName: string, size: number, issues: CacheIssues = UNREPORTED): Promise<PixelStatsCache> {
    const file = dir === undefined ? undefined : path.join(dir, `pixel-stats-v${FORMAT}`, `${packName}-${size}.json`);
    const entries = new Map<string, PixelStats>();
    const text = file === undefined ? undefined : await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined && file !== undefined) {
      const parsed = parseStats(text);
      if (parsed) for (const [sha, s] of parsed) entries.set(sha, s);
      else issues.damaged(`Pixel statistics ${file} failed their check: discarded, recomputed from the images`);
    }
    return new PixelStatsCache(file, entries, issues);
  }

  get(sha256: string): PixelStats | undefined {
    return this.entries.get(sha256);
  }

  set(sha256: string, stats: PixelStats): void {
    const old = this.entries.get(sha256);
    if (old && old.thumb === stats.thumb && old.brightness === stats.brightness && old.sharpness === stats.sharpness) return;
    this.entries.set(sha256, stats);
    this.dirty = true;
  }

  /** Writes the file when something was added (a failed write only turns caching off). */
  async save(): Promise<void> {
    if (!this.dirty || this.file === undefined || !this.issues.writable) return;
    const rows = [...this.entries]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([sha, s]) => [sha, s.brightness, s.contrast, s.sharpness, s.thumb]);
    const body = JSON.stringify({ format: FORMAT, rows });
    try {
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, `${checksumOfText(body)}\n${body}`);
      this.dirty = false;
    } catch (error) {
      this.issues.writeFailed(error);
    }
  }
}

/** The entries of a file's text, or undefined when it fails its checksum or is not this format. */
function parseStats(text: string): Map<string, PixelStats> | undefined {
  const newline = text.indexOf('\n');
  if (newline < 0) return undefined;
  const body = text.slice(newline + 1);
  if (checksumOfText(body) !== text.slice(0, newline)) return undefined;
  try {
    const parsed = JSON.parse(body) as { format?: unknown; rows?: unknown };
    if (parsed.format !== FORMAT || !Array.isArray(parsed.rows)) return undefined;
    const out = new Map<string, PixelStats>();
    for (const row of parsed.rows as unknown[]) {
      if (!Array.isArray(row) || row.length !== 5 || typeof row[0] !== 'string' || typeof row[4] !== 'string') return undefined;
      const [sha, brightness, contrast, sharpness, thumb] = row as [string, number, number, number, string];
      if (![brightness, contrast, sharpness].every((v) => typeof v === 'number' && Number.isFinite(v))) return undefined;
      out.set(sha, { brightness, contrast, sharpness, thumb });
    }
    return out;
  } catch {
    return undefined;
  }
}
