// Which validation images a confusion-matrix cell holds, in the order the gallery shows them.
import type { Evaluation, Prediction } from '../shared/types';

/** Probability the model gave class `index` for this image (falls back to `confidence` for the predicted class). */
export function probabilityOf(prediction: Prediction, index: number): number {
  const p = prediction.probs?.[index];
  if (typeof p === 'number' && Number.isFinite(p)) return p;
  return index === prediction.predicted ? prediction.confidence : 0;
}

/**
 * The images of cell (true `actual`, predicted `predicted`): for a mistake, the most confident
 * mistakes first (highest probability of the wrong class, then lowest of the true one); for a
 * diagonal cell, the least confident correct answers first. Ties keep a stable order by path.
 */
export function cellImages(evaluation: Evaluation, actual: number, predicted: number): Prediction[] {
  const images = evaluation.predictions.filter((p) => p.actual === actual && p.predicted === predicted);
  const byPath = (a: Prediction, b: Prediction): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  if (actual === predicted) {
    return images.sort((a, b) => probabilityOf(a, actual) - probabilityOf(b, actual) || byPath(a, b));
  }
  return images.sort(
    (a, b) =>
      probabilityOf(b, predicted) - probabilityOf(a, predicted) || probabilityOf(a, actual) - probabilityOf(b, actual) || byPath(a, b),
  );
}

/** `${base}/${path}` with each path segment percent-encoded (spaces, `#`, `?` stay literal names). */
export function imageUrl(imageBaseUri: string, relativePath: string): string {
  const base = imageBaseUri.endsWith('/') ? imageBaseUri.slice(0, -1) : imageBaseUri;
  return `${base}/${relativePath.split('/').map(encodeURIComponent).join('/')}`;
}
