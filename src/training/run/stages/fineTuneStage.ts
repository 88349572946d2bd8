// Stage 6 (optional): the top of the base trained together with the head at a low learning rate.
import { activationsOf } from '../../features/embedding';
import { fineTune } from '../../fit/fineTune';
import { runCallbacks } from '../runCallbacks';
import type { RunStage } from '../runContext';

/** Fine-tunes the layers above the cut on the cached cut activations; skipped without a cut, after a cancel or once a limit stopped training. */
export const fineTuneStage: RunStage = {
  name: 'fineTune',
  skip: (ctx) => !ctx.need('features').cut || ctx.signal.aborted || ctx.stopReason !== undefined,
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { classes } = ctx.need('scan');
    const { embedded, cut } = ctx.need('features');
    const { head, classifier, metadata } = ctx.need('head');
    const { options } = ctx;
    const totalEpochs = options.epochs + options.fineTuneEpochs;
    const control = { signal: ctx.signal, callbacks: runCallbacks(ctx, 'fine-tune', totalEpochs, { classifier, metadata }) };
    const train = activationsOf(embedded, 'train');
    const val = activationsOf(embedded, 'val');
    const result = await fineTune(tf, cut!, head, train, val, classes.length, options, control, ctx.history.length);
    if (result.bestEpoch > 0) ctx.bestEpoch = result.bestEpoch;
    ctx.log('info', `Fine-tuning: ${result.epochsRun} epochs, best epoch ${result.bestEpoch}`);
  },
};
