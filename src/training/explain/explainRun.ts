// `image-trainer explain`: one image of a trained run, its prediction and the heatmap of what the
// model looked at, as a line, as JSON, or blended over the image. Stage-free: it opens the run
// folder as `predict` does and needs nothing of the training pipeline.
import * as path from 'node:path';
import { openRunClassifier } from '../models/predict';
import type { Tf } from '../util/tf';
import { classIndexOf, explainImage, gradCamModelOf, writeHeatmapOverlay, type Explanation } from './gradCam';

export interface ExplainOptions {
  /** The class to explain; the predicted one when absent. */
  className?: string;
  /** Where to write the image with the heatmap blended over it (PNG). */
  out?: string;
  /** The longer side of the heatmap in values (default 256): a gallery thumbnail needs far fewer. */
  maxSide?: number;
}

/** One image of a batch: its explanation, or why it could not be explained (the others go on). */
export type BatchExplanation = Explanation | { path: string; error: string };

/** Explains `image` with the classifier of `runDir` (checked first), writing the overlay when asked. */
export async function explainRunImage(tf: Tf, runDir: string, image: string, o: ExplainOptions = {}): Promise<Explanation> {
  const model = gradCamModelOf(tf, await openRunClassifier(tf, runDir));
  try {
    // A wrong class name is refused before the image is decoded.
    if (o.className !== undefined) classIndexOf(model.meta, o.className);
    const explanation = await explainImage(tf, model, path.resolve(image), o.className, undefined, o.maxSide);
    if (o.out) await writeHeatmapOverlay(explanation.path, explanation.heatmap, path.resolve(o.out));
    return explanation;
  } finally {
    model.dispose();
  }
}

/**
 * Explains each of `images` with one load of the classifier of `runDir` (a gallery page in one
 * process instead of one process per image); an image that cannot be read is reported, not fatal.
 */
export async function* explainRunImages(
  tf: Tf,
  runDir: string,
  images: readonly string[],
  o: Omit<ExplainOptions, 'out'> = {},
): AsyncGenerator<BatchExplanation> {
  const model = gradCamModelOf(tf, await openRunClassifier(tf, runDir));
  try {
    if (o.className !== undefined) classIndexOf(model.meta, o.className);
    for (const image of images) {
      const file = path.resolve(image);
      try {
        yield await explainImage(tf, model, file, o.className, undefined, o.maxSide);
      } catch (err) {
        yield { path: file, error: err instanceof Error ? err.message : String(err) };
      }
    }
  } finally {
    model.dispose();
  }
}

/** The explanation as `explain --json` prints it: heatmap values rounded to 4 decimals, plenty for a picture. */
export function explanationJson(e: Explanation): string {
  const values = Array.from(e.heatmap.values, (v) => Math.round(v * 1e4) / 1e4);
  return JSON.stringify({
    path: e.path,
    label: e.label,
    confidence: e.confidence,
    class: e.class,
    heatmap: { width: e.heatmap.width, height: e.heatmap.height, values },
  });
}
