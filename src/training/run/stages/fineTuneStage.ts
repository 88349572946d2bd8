// Stage 6 (optional): the top of the base trained together with the head at a low learning rate,
// on the activations cached at the cut: on onnxruntime (one graph per step) where it loads, else tfjs.
import { activationsOf } from '../../features/embedding';
import { fineTune, type FineTuneRuntime } from '../../fit/fineTune';
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
    const { headRuntime } = ctx.need('model');
    const { options } = ctx;
    const totalEpochs = options.epochs + options.fineTuneEpochs;
    const control = { signal: ctx.signal, callbacks: runCallbacks(ctx, 'fine-tune', totalEpochs, { classifier, metadata }) };
    const train = activationsOf(embedded, 'train', true);
    const val = activationsOf(embedded, 'val');
    // One thread, as for the head: measured on the 2-core machine under load, a batch-32 step took
    // 54 ms of CPU (157 ms wall) on one thread against 113 ms of CPU (204 ms wall) on two, whose pool spins.
    const runtime: FineTuneRuntime = headRuntime.kind === 'onnx' ? { kind: 'onnx', ort: headRuntime.ort, threads: 1 } : { kind: 'tfjs' };
    const onEngine = (note: string) => ctx.log('info', `Fine-tuning on ${note}; learning rate ${options.fineTuneLearningRate}`);
    const startEpoch = ctx.history.length;
    const result = await fineTune(tf, cut!, head, train, val, classes.length, options, control, startEpoch, runtime, onEngine);
    if (result.bestEpoch > 0) ctx.bestEpoch = result.bestEpoch;
    const kept = result.bestEpoch > startEpoch ? 'kept' : 'not kept: no epoch beat the head on validation';
    // Not kept: the base's weights are the ones it started with, so the cached features are the kept model's.
    if (result.bestEpoch <= startEpoch) ctx.need('features').cut = undefined;
    ctx.log('info', `Fine-tuning: ${result.epochsRun} epochs, best epoch ${result.bestEpoch} (${kept}; stopped by ${result.stoppedBy})`);
  },
};
