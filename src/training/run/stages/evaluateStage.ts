// Stage 7: how well the kept weights do on the validation images, image by image.
import { evaluate } from '../../fit/evaluation';
import type { RunStage } from '../runContext';
import { keptProbs, publishEvaluation } from './keptModel';

/** Evaluates the kept weights on the validation set, averaging the run's views (features recomputed only when fine-tuning changed the base), and writes evaluation.json (the host is told after calibration and unknown detection). */
export const evaluateStage: RunStage = {
  name: 'evaluate',
  async run(ctx) {
    const { classes } = ctx.need('scan');
    const { val, valPaths } = ctx.need('features');
    ctx.progress.offer({ stage: 'evaluate', done: 0, total: val.n });
    const probs = await keptProbs(ctx, 'val');
    const evaluation = { ...evaluate(classes, val.y, probs, valPaths, ctx.bestEpoch), recipe: ctx.need('recipe') };
    ctx.progress.offer({ stage: 'evaluate', done: val.n, total: val.n });
    // The host hears of it once the unknown-detection stage has added the last figures.
    await publishEvaluation(ctx, evaluation, false);
  },
};
