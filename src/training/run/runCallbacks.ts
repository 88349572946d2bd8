// The run's own callbacks of the epoch loop: metrics into the run folder and to the driver,
// progress per batch, a checkpoint at each new best epoch, and the optional time limit.
import type * as tfType from '@tensorflow/tfjs';
import { RUN_FILES, type ModelMetadata } from '../../shared/runFolder';
import type { Stage } from '../../shared/types';
import { timeLimitCallback } from '../fit/callbacks';
import type { TrainingCallback } from '../fit/trainingLoop';
import { saveModelDir } from '../models/classifierModel';
import type { RunContext } from './runContext';

/** Every callback a training stage of the run uses, in the order they run. */
export function runCallbacks(
  ctx: RunContext,
  stage: Extract<Stage, 'head' | 'fine-tune'>,
  totalEpochs: number,
  model: { classifier: tfType.LayersModel; metadata: ModelMetadata },
): TrainingCallback[] {
  const callbacks = [
    metricsLogger(ctx),
    progressReporter(ctx, stage, totalEpochs),
    checkpointer(ctx, model.classifier, model.metadata, stage),
  ];
  if (ctx.options.timeLimitMinutes > 0) callbacks.push(timeLimit(ctx));
  return callbacks;
}

/** Appends each epoch to the history, metrics.jsonl and the driver (CLI table, panel curves). */
export function metricsLogger(ctx: RunContext): TrainingCallback {
  return {
    async onEpochEnd(m) {
      ctx.history.push(m);
      await ctx.writer.appendMetrics(m);
      ctx.notify({ type: 'epochEnd', metrics: m });
    },
  };
}

/** Reports batch progress within the epoch (throttled to about ten updates a second). */
export function progressReporter(ctx: RunContext, stage: Extract<Stage, 'head' | 'fine-tune'>, totalEpochs: number): TrainingCallback {
  return {
    onBatchEnd: (batch, batches, epoch) => ctx.progress.offer({ stage, done: batch, total: batches, epoch, epochs: totalEpochs }),
  };
}

/**
 * Saves the classifier at each new best epoch (atomically, see saveModelDir), with the epoch and its
 * validation figures committed inside the model folder, then records it in status.json. A kill
 * between the two leaves status.json behind; readers take the model folder's record (runState.ts).
 */
export function checkpointer(
  ctx: RunContext,
  classifier: tfType.LayersModel,
  metadata: ModelMetadata,
  stage: Extract<Stage, 'head' | 'fine-tune'> = 'head',
): TrainingCallback {
  const { tf } = ctx.need('backend');
  return {
    async onNewBest(epoch, valAcc, valLoss) {
      ctx.bestEpoch = epoch;
      const checkpoint = { epoch, valAccuracy: valAcc, valLoss, stage, savedAt: new Date().toISOString() };
      await saveModelDir(classifier, ctx.writer.file(RUN_FILES.modelDir), metadata, tf, checkpoint);
      await ctx.writer.updateStatus({ hasCheckpoint: true, valAccuracy: valAcc, bestEpoch: epoch });
    },
  };
}

/** Stops training once the run has used `options.timeLimitMinutes`, keeping the best checkpoint, and says so. */
export function timeLimit(ctx: RunContext): TrainingCallback {
  return timeLimitCallback(ctx.options.timeLimitMinutes * 60_000, ctx.startedAt, (elapsedMs) => {
    ctx.stopReason = 'time-limit';
    ctx.log(
      'info',
      `Time limit of ${formatLimit(ctx.options.timeLimitMinutes * 60)} reached after ${(elapsedMs / 1000).toFixed(1)} s: training stops after this epoch and keeps the best one.`,
    );
  });
}

/** "90 s", "10 min", "1.5 h". */
export function formatLimit(sec: number): string {
  if (sec < 120) return `${sec} s`;
  if (sec < 7200) return `${+(sec / 60).toFixed(1)} min`;
  return `${+(sec / 3600).toFixed(2)} h`;
}
