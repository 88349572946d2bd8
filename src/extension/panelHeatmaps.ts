// Grad-CAM heatmaps for the panel and Classify Image, computed on demand by the training bundle
// (`explain`): a gallery page in one process (`explain <run> <images…> --json --max-side 48`),
// and the blended PNG of one image (`explain --out`) drawn into a temporary folder, never the
// dataset. Nothing is cached per image. No `vscode` import: unit-tested with the real bundle.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MAX_PANEL_HEATMAP_SIDE, type HeatmapsNotification } from '../shared/protocol/panel';
import type { ImagePathGuard } from './imagePathGuard';
import { parseExplainOutput, runTrainingCli, type CliResult } from './trainingCli';

/** Runs the training bundle with arguments (the CLI), e.g. `runTrainingCli` bound to the bundle. */
export type BundleRunner = (args: readonly string[], timeoutMs: number) => Promise<CliResult>;

/** A runner of the bundle at `bundlePath` with the native backends of `nativeDir`. */
export function bundleRunner(bundlePath: string, nativeDir: string): BundleRunner {
  return (args, timeoutMs) => runTrainingCli(bundlePath, [...args, '--native-dir', nativeDir], { timeoutMs });
}

/** An image to explain: how the webview names it, and the file it was checked to be. */
export interface ImageToExplain {
  relativePath: string;
  absolutePath: string;
}

// Start-up and model load (~1 s) plus ~0.1–0.3 s per image on two slow cores, with room to spare.
const BATCH_TIMEOUT_MS = 120_000;

/** Where the heatmap of `image` by the model of `runDir` is drawn: a temporary file named after both, replaced each time. */
export function heatmapOverlayPath(runDir: string, image: string): string {
  const key = createHash('sha256').update(`${runDir}\0${image}`).digest('hex').slice(0, 12);
  const stem = path
    .basename(image, path.extname(image))
    .replace(/[^\w.-]+/g, '_')
    .slice(0, 60);
  return path.join(os.tmpdir(), 'image-trainer-heatmaps', `${stem}-${key}.png`);
}

function firstLine(result: CliResult): string {
  return (
    result.stderr
      .trim()
      .split(/\r?\n/)
      .find((l) => l.trim() !== '') ?? (result.signal ? `stopped (${result.signal})` : `exit code ${result.code}`)
  );
}

// Batches waiting or running at most: the webview is untrusted, and a flood of requests must not
// queue up minutes of work (a person scrolling asks for a page at a time).
export const MAX_QUEUED_BATCHES = 3;

/** Computes heatmaps one batch at a time (a second request waits for the first: two cores do not gain from two processes). */
export class HeatmapService {
  private queue: Promise<unknown> = Promise.resolve();
  private queued = 0;

  constructor(
    private readonly run: BundleRunner,
    private readonly log: (line: string) => void,
  ) {}

  /** The small heatmaps of `images` (validation images of `runDir`), as the panel is sent them. */
  explain(runDir: string, images: readonly ImageToExplain[]): Promise<HeatmapsNotification> {
    if (this.queued >= MAX_QUEUED_BATCHES) {
      this.log(`[heatmap] refused ${images.length} heatmaps: ${this.queued} batches are already waiting`);
      const reason = 'too many heatmap requests at once; try again in a moment';
      return Promise.resolve({ type: 'heatmaps', heatmaps: [], failed: images.map((i) => ({ path: i.relativePath, reason })) });
    }
    this.queued++;
    const next = this.queue.then(() => this.explainNow(runDir, images)).finally(() => this.queued--);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Draws `image` with the heatmap of its predicted class blended over it; the PNG's path, or undefined (logged). */
  async drawOverlay(runDir: string, image: string): Promise<string | undefined> {
    const out = heatmapOverlayPath(runDir, image);
    try {
      await fs.promises.mkdir(path.dirname(out), { recursive: true });
      const result = await this.run(['explain', runDir, image, '--out', out], BATCH_TIMEOUT_MS);
      if (result.code === 0 && fs.existsSync(out)) return out;
      this.log(`[heatmap] explain --out ${image} with ${runDir}: ${firstLine(result)}`);
    } catch (err) {
      this.log(`[heatmap] explain --out ${image} with ${runDir} failed: ${err instanceof Error ? err.message : String(err)}`);
    }
    return undefined;
  }

  private async explainNow(runDir: string, images: readonly ImageToExplain[]): Promise<HeatmapsNotification> {
    const started = Date.now();
    const byAbsolute = new Map(images.map((i) => [path.resolve(i.absolutePath), i.relativePath]));
    const args = ['explain', runDir, ...images.map((i) => i.absolutePath), '--json', '--max-side', String(MAX_PANEL_HEATMAP_SIDE)];
    let result: CliResult;
    try {
      result = await this.run(args, BATCH_TIMEOUT_MS);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return { type: 'heatmaps', heatmaps: [], failed: images.map((i) => ({ path: i.relativePath, reason })) };
    }
    const notification: HeatmapsNotification = { type: 'heatmaps', heatmaps: [], failed: [] };
    const done = new Set<string>();
    for (const line of parseExplainOutput(result.stdout)) {
      const relativePath = byAbsolute.get(path.resolve(line.path));
      if (relativePath === undefined || done.has(relativePath)) continue;
      done.add(relativePath);
      if ('error' in line) notification.failed.push({ path: relativePath, reason: line.error });
      else notification.heatmaps.push({ path: relativePath, ...line.heatmap });
    }
    const why = firstLine(result);
    for (const i of images) if (!done.has(i.relativePath)) notification.failed.push({ path: i.relativePath, reason: why });
    this.log(
      `[heatmap] ${notification.heatmaps.length} of ${images.length} heatmaps with ${path.basename(runDir)} in ${Date.now() - started} ms` +
        (notification.failed.length > 0 ? ` (${notification.failed.length} failed: ${notification.failed[0]!.reason})` : ''),
    );
    return notification;
  }
}

/** The images of an `explainImages` command that the guard lets through, and the ones it refused with why. */
export async function checkImagesToExplain(
  guard: Pick<ImagePathGuard, 'resolve'>,
  paths: readonly string[],
): Promise<{ images: ImageToExplain[]; refused: { path: string; reason: string }[] }> {
  const images: ImageToExplain[] = [];
  const refused: { path: string; reason: string }[] = [];
  for (const candidate of new Set(paths)) {
    const checked = await guard.resolve(candidate);
    if (checked.ok) images.push({ relativePath: checked.relativePath, absolutePath: checked.absolutePath });
    else refused.push({ path: candidate, reason: checked.reason });
  }
  return { images, refused };
}
