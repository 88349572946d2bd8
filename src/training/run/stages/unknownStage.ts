// Stage: the statistics that tell an image unlike every class ("unknown") from one the model knows.
import { RUN_FILES, type NoveltyFile } from '../../../shared/runFolder';
import { createHash } from 'node:crypto';
import type { NoveltyFit } from '../../../shared/types';
import type { FeatureSet } from '../../fit/head';
import { fitNovelty, NOVELTY_PERCENTILE, type NoveltyStats } from '../../fit/novelty';
import { readArrayArtifact, writeArrayArtifact } from '../../util/arrayArtifact';
import { runCacheFolder } from '../runCacheFolder';
import { writeJsonAtomic } from '../../util/atomicWrite';
import type { RunContext, RunStage } from '../runContext';
import { meanOfViews } from '../../fit/viewAveraging';
import { keptViews, publishEvaluation, resaveKeptModel } from './keptModel';

const base64 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

/** The statistics as `model/novelty.json` holds them. */
export function noveltyFile(stats: NoveltyStats): NoveltyFile {
  return {
    format: 'image-trainer/novelty@1',
    featureSize: stats.featureSize,
    classes: stats.classes,
    threshold: stats.fit.threshold,
    whitening: base64(stats.whitening),
    means: base64(stats.means),
  };
}

/** The hash of what a detector is fitted on: both sides' features and labels, in order. */
function noveltyKey(train: FeatureSet, val: FeatureSet, k: number): string {
  const h = createHash('sha256').update(`novelty@1\n${train.featureSize} ${k} ${NOVELTY_PERCENTILE}\n`);
  for (const set of [train, val]) {
    h.update(`${set.n}\n`);
    h.update(new Uint8Array(set.x.buffer, set.x.byteOffset, set.n * set.featureSize * 4));
    h.update(new Uint8Array(set.y.buffer, set.y.byteOffset, set.n * 4));
  }
  return h.digest('hex');
}

/**
 * The detector fitted on these features, from the cache folder when an earlier run fitted it (a
 * Cholesky factor and its inverse at 1280 features: ~2 s of a warm 7 s rerun of flowers).
 */
async function cachedNovelty(
  ctx: RunContext,
  train: FeatureSet,
  val: FeatureSet,
  k: number,
  fit: () => NoveltyStats,
): Promise<NoveltyStats> {
  const folder = await runCacheFolder(ctx);
  const key = noveltyKey(train, val, k);
  const f = train.featureSize;
  const found = await readArrayArtifact<NoveltyFit>(
    folder,
    'novelty',
    key,
    { what: 'unknown-detection statistics', then: 'fitted again' },
    ({ arrays: [w, m, scores] }) => w?.length === f * f && m?.length === k * f && scores?.length === val.n,
  );
  if (found) {
    const [whitening, means, valScores] = found.arrays as [Float32Array, Float32Array, Float64Array];
    return { featureSize: f, classes: k, whitening, means, valScores, fit: found.header };
  }
  const stats = fit();
  await writeArrayArtifact(folder, 'novelty', key, { header: stats.fit, arrays: [stats.whitening, stats.means, stats.valScores] });
  return stats;
}

/** Fits class means and a shared covariance on the training features, sets the threshold on the validation images, and saves both with the model. */
export const unknownStage: RunStage = {
  name: 'unknown',
  async run(ctx) {
    const { classes } = ctx.need('scan');
    const { metadata } = ctx.need('head');
    // Each image's mean feature vector over the run's views, as predict and the exports compute it.
    const train = meanOfViews(await keptViews(ctx, 'train'));
    if (train.n === 0) return publishEvaluation(ctx, ctx.need('evaluation'), true);
    const { tf } = ctx.need('backend');
    // Matrix products on the backend; tidy frees every tensor once the values are read out.
    const gram = (x: Float32Array, n: number, f: number) =>
      tf.tidy(() => {
        const m = tf.tensor2d(x, [n, f]);
        return tf.matMul(m, m, true, false).dataSync() as Float32Array;
      });
    const times = (x: Float32Array, n: number, w: Float32Array, f: number) =>
      tf.tidy(() => tf.matMul(tf.tensor2d(x, [n, f]), tf.tensor2d(w, [f, f])).dataSync() as Float32Array);
    const val = meanOfViews(await keptViews(ctx, 'val'));
    const stats = await cachedNovelty(ctx, train, val, classes.length, () => fitNovelty(train, val, classes.length, gram, times));
    await writeJsonAtomic(ctx.writer.file(`${RUN_FILES.modelDir}/${RUN_FILES.novelty}`), noveltyFile(stats));
    metadata.unknownThreshold = stats.fit.threshold;
    const { fit } = stats;
    ctx.log(
      'info',
      `Unknown detection: threshold ${fit.threshold.toFixed(2)} (${fit.percentile}th percentile of validation scores; ${fit.valFlagged}/${fit.valImages} validation images above it), shrinkage ${fit.shrinkage.toFixed(3)}`,
    );
    await resaveKeptModel(ctx);
    // Each validation image's score, so the panel can mark the ones flagged (rows in the predictions' order).
    const evaluation = ctx.need('evaluation');
    const predictions = evaluation.predictions.map((p, i) => {
      const score = stats.valScores[i];
      return score === undefined ? p : { ...p, novelty: Math.round(score * 100) / 100, unknown: score > fit.threshold };
    });
    await publishEvaluation(ctx, { ...evaluation, predictions, novelty: fit }, true);
  },
};
