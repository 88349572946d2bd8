// Stage 5: the classifier head, trained on the feature vectors.
import { buildHead, trainHead } from '../../fit/head';
import { stackViews } from '../../fit/viewAveraging';
import { buildClassifier, classifierMetadata } from '../../models/classifierModel';
import { RunCancelled } from '../../util/errors';
import { runCallbacks } from '../runCallbacks';
import type { RunStage } from '../runContext';

/** Builds the head and the classifier around it, and trains the head with checkpoints, metrics and progress as callbacks. */
export const headStage: RunStage = {
  name: 'head',
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { classes } = ctx.need('scan');
    const model = ctx.need('model');
    const features = ctx.need('features');
    const { options } = ctx;
    const head = buildHead(tf, model.base.featureSize, classes.length, options);
    ctx.defer(() => head.dispose());
    const classifier = buildClassifier(tf, model.base.layersModel, head, model.entry);
    const metadata = classifierMetadata(classes, model.entry);
    if (features.views.length > 1) metadata.views = features.views;
    const totalEpochs = options.epochs + (features.cut ? options.fineTuneEpochs : 0);
    const control = { signal: ctx.signal, callbacks: runCallbacks(ctx, 'head', totalEpochs, { classifier, metadata }) };
    // With views, the head trains on every view of every training image; the epoch loop's validation
    // (early stopping, checkpoints) reads the images as they are, the evaluation averages the views.
    const train = stackViews(features.trainViews);
    const result = await trainHead(tf, head, train, features.val, classes.length, options, control, model.headRuntime);
    ctx.bestEpoch = result.bestEpoch;
    // Cancelled before any epoch ended: there is no trained model to evaluate or keep.
    if (ctx.signal.aborted && result.bestEpoch === 0) throw new RunCancelled();
    ctx.log('info', `Head: ${result.epochsRun} epochs, best epoch ${result.bestEpoch} (stopped by ${result.stoppedBy})`);
    ctx.set('head', { head, classifier, metadata, result });
  },
};
