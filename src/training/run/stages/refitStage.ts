// Stage (with --refit): once the recipe and the number of epochs are chosen, the final head is
// trained again on every labelled image, training and validation together, for the kept epoch
// count. No image is left to measure it on, so the figures the run reports stay the ones measured
// before the refit (held-out validation, and for `auto` the candidates' cross-validated scores),
// and the report says so. Unknown detection reads the base's features only, so it runs after this
// unchanged (its threshold still set on the validation images).
import { buildHead, trainHead } from '../../fit/head';
import { stackViews } from '../../fit/viewAveraging';
import type { RunStage } from '../runContext';
import { scaleOutputLayer } from './calibrateStage';
import { keptViews, publishEvaluation, resaveKeptModel } from './keptModel';

/** Retrains the kept head on training + validation images (all views) for the best epoch count; calibration's temperature is applied again. */
export const refitStage: RunStage = {
  name: 'refit',
  skip: (ctx) => !ctx.options.refit || ctx.get('features')?.cut !== undefined || ctx.bestEpoch === 0 || ctx.signal.aborted,
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { classes } = ctx.need('scan');
    const model = ctx.need('model');
    const { head, metadata } = ctx.need('head');
    const train = await keptViews(ctx, 'train');
    const val = await keptViews(ctx, 'val');
    const all = stackViews(train.map((set, v) => stackViews([set, val[v]])));
    const epochs = ctx.bestEpoch;
    const fresh = buildHead(tf, model.base.featureSize, classes.length, ctx.options);
    try {
      const empty = { x: new Float32Array(0), y: new Int32Array(0), n: 0, featureSize: all.featureSize };
      await trainHead(tf, fresh, all, empty, classes.length, { ...ctx.options, epochs }, { signal: ctx.signal }, model.headRuntime);
      head.setWeights(fresh.getWeights());
    } finally {
      fresh.dispose();
    }
    if (metadata.temperature !== undefined && metadata.temperature !== 1) scaleOutputLayer(ctx, metadata.temperature);
    const images = train[0].n + val[0].n;
    ctx.log(
      'info',
      `Refit: the final head trained on all ${images} labelled images for ${epochs} epochs; the reported accuracy is the one measured before the refit`,
    );
    const evaluation = ctx.need('evaluation');
    await publishEvaluation(
      ctx,
      { ...evaluation, recipe: { ...ctx.need('recipe'), ...evaluation.recipe, refit: { epochs, images } } },
      false,
    );
    await resaveKeptModel(ctx);
  },
};
