// Stage 7: how well the kept weights do on the validation images, image by image.
import { evaluate } from '../../fit/evaluation';
import { predictProbs } from '../../fit/head';
import type { RunStage } from '../runContext';
import { keptFeatures, publishEvaluation } from './keptModel';

/** Evaluates the kept weights on the validation set (features recomputed only when fine-tuning changed the base) and writes evaluation.json (the host is told after calibration and unknown detection). */
export const evaluateStage: RunStage = {
  name: 'evaluate',
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { classes } = ctx.need('scan');
    const { val, valPaths } = ctx.need('features');
    const { head } = ctx.need('head');
    ctx.progress.offer({ stage: 'evaluate', done: 0, total: val.n });
    const valFeatures = await keptFeatures(ctx, 'val');
    const probs = await predictProbs(tf, head, valFeatures);
    const evaluation = evaluate(classes, val.y, probs, valPaths, ctx.bestEpoch);
    ctx.progress.offer({ stage: 'evaluate', done: val.n, total: val.n });
    // The host hears of it once the unknown-detection stage has added the last figures.
    await publishEvaluation(ctx, evaluation, false);
  },
};
