// Stage: the statistics that tell an image unlike every class ("unknown") from one the model knows.
import { RUN_FILES, type NoveltyFile } from '../../../shared/runFolder';
import { fitNovelty, type NoveltyStats } from '../../fit/novelty';
import { writeJsonAtomic } from '../../util/atomicWrite';
import type { RunStage } from '../runContext';
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
    const gram = (x: Float32Array, n: number, f: number) => {
      const product = tf.tidy(() => {
        const m = tf.tensor2d(x, [n, f]);
        return tf.matMul(m, m, true, false);
      });
      try {
        return product.dataSync() as Float32Array;
      } finally {
        product.dispose();
      }
    };
    const times = (x: Float32Array, n: number, w: Float32Array, f: number) => {
      const product = tf.tidy(() => tf.matMul(tf.tensor2d(x, [n, f]), tf.tensor2d(w, [f, f])));
      try {
        return product.dataSync() as Float32Array;
      } finally {
        product.dispose();
      }
    };
    const stats = fitNovelty(train, meanOfViews(await keptViews(ctx, 'val')), classes.length, gram, times);
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
