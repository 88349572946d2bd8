// Stage 7: how well the kept weights do on the validation images, image by image.
import { RUN_FILES } from '../../../shared/runFolder';
import { activationsOf } from '../../features/embedding';
import { evaluate } from '../../fit/evaluation';
import { topFeatures } from '../../fit/fineTune';
import { predictProbs } from '../../fit/head';
import { writeJsonAtomic } from '../../util/atomicWrite';
import type { RunStage } from '../runContext';

/** Evaluates the kept weights on the validation set (features recomputed only when fine-tuning changed the base) and writes evaluation.json. */
export const evaluateStage: RunStage = {
  name: 'evaluate',
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { classes } = ctx.need('scan');
    const { base } = ctx.need('model');
    const { embedded, val, valPaths, cut } = ctx.need('features');
    const { head } = ctx.need('head');
    ctx.progress.offer({ stage: 'evaluate', done: 0, total: val.n });
    const valFeatures = cut ? await topFeatures(tf, cut, activationsOf(embedded, 'val'), base.featureSize) : val;
    const probs = await predictProbs(tf, head, valFeatures);
    const evaluation = evaluate(classes, val.y, probs, valPaths, ctx.bestEpoch);
    ctx.progress.offer({ stage: 'evaluate', done: val.n, total: val.n });
    await writeJsonAtomic(ctx.writer.file(RUN_FILES.evaluation), evaluation);
    ctx.notify({ type: 'evaluation', evaluation });
    ctx.set('evaluation', evaluation);
  },
};
