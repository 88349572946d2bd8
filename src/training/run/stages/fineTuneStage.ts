// Stage 6 (optional): the top of the base trained together with the head at a low learning rate,
// on the activations cached at the cut: on onnxruntime (one graph per step) where it loads, else tfjs.
// Its result is cached (run/fineTuneCache.ts): a rerun with the same images, options and starting
// weights reads the trained weights, the epochs' history and the kept top's features instead.
import { activationsOf, itemsOf } from '../../features/embedding';
import { fineTuneViews } from '../../fit/activationViews';
import { fineTune, type FineTuneRuntime } from '../../fit/fineTune';
import { trainableVariables } from '../../fit/head';
import type { LoopResult } from '../../fit/trainingLoop';
import { fineTuneKey, readFineTune, writeFineTune, type FineTuneResult } from '../fineTuneCache';
import { runCacheFolder } from '../runCacheFolder';
import { checkpointer, metricsLogger, runCallbacks } from '../runCallbacks';
import type { RunContext, RunStage } from '../runContext';
import { keptViews, seedKeptFeatures } from './keptModel';

/** Fine-tunes the layers above the cut on the cached cut activations; skipped without a cut, after a cancel or once a limit stopped training. */
export const fineTuneStage: RunStage = {
  name: 'fineTune',
  skip: (ctx) => !ctx.need('features').cut || ctx.signal.aborted || ctx.stopReason !== undefined,
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const { headRuntime } = ctx.need('model');
    const { options } = ctx;
    // One thread, as for the head: measured on the 2-core machine under load, a batch-32 step took
    // 54 ms of CPU (157 ms wall) on one thread against 113 ms of CPU (204 ms wall) on two, whose pool spins.
    const runtime: FineTuneRuntime = headRuntime.kind === 'onnx' ? { kind: 'onnx', ort: headRuntime.ort, threads: 1 } : { kind: 'tfjs' };
    const startEpoch = ctx.history.length;
    const variables = fineTunedVariables(ctx);
    const start = variables.map((v) => Float32Array.from(v.dataSync() as Float32Array));
    const folder = await runCacheFolder(ctx);
    const key = cacheKeyOf(ctx, runtime, start);
    const cached = await readFineTune(folder, key, start);
    let result: LoopResult;
    if (cached) {
      // assign() keeps its own reference: tidy disposes the temporary tensors.
      tf.tidy(() => variables.forEach((v, i) => v.assign(tf.tensor(cached.weights[i], v.shape))));
      result = cached.result;
      await replay(ctx, cached, startEpoch);
    } else {
      const { classes } = ctx.need('scan');
      const { embedded, cut } = ctx.need('features');
      const { head, classifier, metadata } = ctx.need('head');
      const totalEpochs = options.epochs + options.fineTuneEpochs;
      const control = { signal: ctx.signal, callbacks: runCallbacks(ctx, 'fine-tune', totalEpochs, { classifier, metadata }) };
      const train = activationsOf(embedded, 'train', true);
      const val = activationsOf(embedded, 'val');
      const onEngine = (note: string) => ctx.log('info', `Fine-tuning on ${note}; learning rate ${options.fineTuneLearningRate}`);
      result = await fineTune(tf, cut!, head, train, val, classes.length, options, control, startEpoch, runtime, onEngine);
    }
    if (result.bestEpoch > 0) ctx.bestEpoch = result.bestEpoch;
    const kept = result.bestEpoch > startEpoch;
    // Not kept: the base's weights are the ones it started with, so the cached features are the kept model's.
    if (!kept) ctx.need('features').cut = undefined;
    const how = cached ? `read from the cache, an earlier run's identical training; ` : '';
    const verdict = kept ? 'kept' : 'not kept: no epoch beat the head on validation';
    ctx.log(
      'info',
      `Fine-tuning: ${result.epochsRun} epochs, best epoch ${result.bestEpoch} (${how}${verdict}; stopped by ${result.stoppedBy})`,
    );
    if (cached || result.stoppedBy === 'cancel' || result.stoppedBy === 'time-limit' || ctx.signal.aborted) return;
    const features = kept ? await keptFeatures(ctx) : undefined;
    const weights = variables.map((v) => Float32Array.from(v.dataSync() as Float32Array));
    await writeFineTune(folder, key, { result, weights, features });
  },
};

/** The variables fine-tuning trains: the top of the base's, then the head's. */
function fineTunedVariables(ctx: RunContext) {
  return [...trainableVariables(ctx.need('features').cut!.top), ...trainableVariables(ctx.need('head').head)];
}

function cacheKeyOf(ctx: RunContext, runtime: FineTuneRuntime, start: Float32Array[]): string {
  const { embedded, cut } = ctx.need('features');
  return fineTuneKey({
    featureKey: ctx.need('model').extractor.cacheKey,
    cutLayer: cut!.cutLayer,
    views: fineTuneViews().name,
    train: itemsOf(embedded, 'train'),
    val: itemsOf(embedded, 'val'),
    options: ctx.options,
    runtime: runtime.kind === 'onnx' ? `onnx-${runtime.threads}` : `tfjs-${ctx.need('backend').tf.getBackend()}`,
    start,
  });
}

/** A cached fine-tuning told as a trained one is: each epoch to the history, metrics.jsonl and the driver, then the kept epoch's checkpoint. */
async function replay(ctx: RunContext, cached: FineTuneResult, startEpoch: number): Promise<void> {
  const { classifier, metadata } = ctx.need('head');
  const logger = metricsLogger(ctx);
  const stop = { stop: () => undefined };
  for (const m of cached.result.history) await logger.onEpochEnd!(m, stop);
  const best = cached.result.history.find((m) => m.epoch === cached.result.bestEpoch);
  if (cached.result.bestEpoch > startEpoch && best) {
    await checkpointer(ctx, classifier, metadata, 'fine-tune').onNewBest!(best.epoch, best.valAcc, best.valLoss);
  }
  const f = cached.features;
  if (f && cached.result.bestEpoch > startEpoch) {
    const { cut, embedded } = ctx.need('features');
    for (const side of ['train', 'val'] as const) {
      // The labels only: activationsOf would copy every activation to read them.
      const y = Int32Array.from(itemsOf(embedded, side), (item) => item.classIndex);
      seedKeptFeatures(ctx, cut!, side, { x: f[side], y, n: y.length, featureSize: f.featureSize });
    }
  }
}

/** The kept top's features of both sides, as evaluation, calibration and unknown detection will read them. */
async function keptFeatures(ctx: RunContext): Promise<FineTuneResult['features']> {
  const [train] = await keptViews(ctx, 'train');
  const [val] = await keptViews(ctx, 'val');
  return { train: train.x, val: val.x, featureSize: train.featureSize };
}
