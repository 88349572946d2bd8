// The feature vectors the kept head reads: the cached ones, or recomputed through the fine-tuned top
// when fine-tuning changed the base. Stages after training share this so they see what the saved
// model sees.
import { RUN_FILES } from '../../../shared/runFolder';
import type { Evaluation } from '../../../shared/types';
import { activationsOf } from '../../features/embedding';
import { topFeatures, type CutModel } from '../../fit/fineTune';
import type { FeatureSet } from '../../fit/head';
import { viewProbs } from '../../fit/viewAveraging';
import { saveModelDir } from '../../models/classifierModel';
import { writeJsonAtomic } from '../../util/atomicWrite';
import type { RunContext } from '../runContext';
import { readModelRecord } from '../runFolderReader';

/** The fine-tuned top's features of a run, per split, for the cut they were computed through (the top no longer changes once fine-tuning ended). */
const topMemo = new WeakMap<RunContext, Map<string, { cut: CutModel; features: Promise<FeatureSet> }>>();

function topMemoOf(ctx: RunContext): Map<string, { cut: CutModel; features: Promise<FeatureSet> }> {
  let memo = topMemo.get(ctx);
  if (!memo) topMemo.set(ctx, (memo = new Map()));
  return memo;
}

/** Gives keptViews the features of `split` through `cut` computed elsewhere (a cached fine-tuning's). */
export function seedKeptFeatures(ctx: RunContext, cut: CutModel, split: 'train' | 'val', set: FeatureSet): void {
  topMemoOf(ctx).set(split, { cut, features: Promise.resolve(set) });
}

/** The training or validation features of each view (identity first) as the kept model computes them. */
export async function keptViews(ctx: RunContext, split: 'train' | 'val'): Promise<FeatureSet[]> {
  const features = ctx.need('features');
  const cut = features.cut;
  if (!cut) return split === 'train' ? features.trainViews : features.valViews;
  // Evaluation, calibration and unknown detection read them in turn: computed once (~2 s on flowers).
  const memo = topMemoOf(ctx);
  let entry = memo.get(split);
  if (!entry || entry.cut !== cut) {
    const { tf } = ctx.need('backend');
    const { base, headRuntime } = ctx.need('model');
    const onnx = headRuntime.kind === 'onnx' ? { ort: headRuntime.ort, head: ctx.need('head').head } : undefined;
    entry = { cut, features: topFeatures(tf, cut, activationsOf(features.embedded, split), base.featureSize, onnx) };
    memo.set(split, entry);
  }
  return [await entry.features];
}

/** The kept head's class probabilities of the training or validation images, averaged over the run's views. */
export async function keptProbs(ctx: RunContext, split: 'train' | 'val'): Promise<Float32Array> {
  const { tf } = ctx.need('backend');
  const { head } = ctx.need('head');
  return viewProbs(tf, head, await keptViews(ctx, split));
}

/**
 * Rewrites the model folder after a stage changed the kept model or its metadata. Only when a
 * checkpoint is there: otherwise the save stage writes the model, with these changes, once.
 * The checkpoint record stays the one training wrote (these are still that epoch's weights).
 */
export async function resaveKeptModel(ctx: RunContext): Promise<void> {
  if (!ctx.writer.currentStatus.hasCheckpoint) return;
  const { tf } = ctx.need('backend');
  const { classifier, metadata } = ctx.need('head');
  const { checkpoint } = await readModelRecord(ctx.runDir);
  await saveModelDir(classifier, ctx.writer.file(RUN_FILES.modelDir), metadata, tf, checkpoint);
}

/**
 * Writes evaluation.json and keeps the evaluation for the later stages; `final` also tells the host
 * (once per run: the CLI prints the confusion matrix on each notification, and the panel should show
 * the calibrated confidences and the unknown threshold, not the figures before them).
 */
export async function publishEvaluation(ctx: RunContext, evaluation: Evaluation, final: boolean): Promise<void> {
  await writeJsonAtomic(ctx.writer.file(RUN_FILES.evaluation), evaluation);
  if (final) ctx.notify({ type: 'evaluation', evaluation });
  ctx.set('evaluation', evaluation);
}
