// One training run as a pipeline of named stages over one run context:
// backend → scan → base model → features → head → fine-tune → evaluate → … → feature map → save.
// A new capability is a new stage (a file in stages/ and a line in TRAINING_STAGES). Success and
// failure are recorded here and nowhere else, and everything a stage created is disposed here.
// The run drives what the CLI prints and the panel shows through `TrainingNotification`s and
// knows nothing about how they are delivered.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainingNotification } from '../../shared/protocol/training';
import { RUN_FILES } from '../../shared/runFolder';
import type { RunSummary } from '../../shared/types';
import { valSplitProblem } from '../../shared/trainOptionRanges';
import { checkModelOption } from '../models/modelSource';
import { removeStaleTempFiles, writeFileAtomic } from '../util/atomicWrite';
import { errorKindOf, RunCancelled, throwIfCancelled, TrainerError } from '../util/errors';
import { checkOutputFolder } from '../util/paths';
import { formatLimit } from './runCallbacks';
import { RunContext, StageTimer, type RunRequest, type RunStage } from './runContext';
import { createRunFolder, removeCrashedRunsTempFiles, RunFolderWriter } from './runFolderWriter';
import { renderRunReport } from './runReport';
import { describeWriteFailure } from './writeFailure';
import { backendStage } from './stages/backendStage';
import { baseModelStage } from './stages/baseModelStage';
import { calibrateStage } from './stages/calibrateStage';
import { evaluateStage } from './stages/evaluateStage';
import { featureMapStage } from './stages/featureMapStage';
import { featuresStage } from './stages/featuresStage';
import { fineTuneStage } from './stages/fineTuneStage';
import { headStage } from './stages/headStage';
import { recipeStage } from './stages/recipeStage';
import { refitStage } from './stages/refitStage';
import { modelCardStage } from './stages/modelCardStage';
import { saveStage } from './stages/saveStage';
import { scanStage } from './stages/scanStage';
import { splitStage } from './stages/splitStage';
import { unknownStage } from './stages/unknownStage';

export type { RunRequest } from './runContext';

/** The stages of a training run, in order. */
export const TRAINING_STAGES: readonly RunStage[] = [
  backendStage,
  scanStage,
  baseModelStage,
  recipeStage,
  featuresStage,
  splitStage,
  headStage,
  fineTuneStage,
  evaluateStage,
  calibrateStage,
  refitStage,
  unknownStage,
  featureMapStage,
  saveStage,
  modelCardStage,
];

const NEVER_ABORTED = new AbortController().signal;

/**
 * Runs one training and returns its summary. A cancel (the signal) before a model exists ends the
 * run as cancelled; after, the run evaluates and keeps the best checkpoint. Throws on failure after
 * recording it in the run folder (the error carries `runDir`).
 */
export async function runTraining(
  req: RunRequest,
  notify: (n: TrainingNotification) => void,
  signal: AbortSignal = NEVER_ABORTED,
  stages: readonly RunStage[] = TRAINING_STAGES,
): Promise<RunSummary> {
  const ctx = await openRun(req, notify, signal);
  try {
    await ctx.writer.updateStatus({});
    ctx.log('info', `Run folder: ${ctx.runDir}`);
    await runStages(ctx, stages);
    return await finishRun(ctx);
  } catch (err) {
    return await failRun(ctx, err);
  } finally {
    ctx.disposeAll();
    await ctx.writer.close();
  }
}

/** Runs `stages` in order over `ctx`, timing each. */
export async function runStages(ctx: RunContext, stages: readonly RunStage[]): Promise<void> {
  for (const stage of stages) {
    // Before a model exists a cancel ends the run; after, the remaining stages evaluate and keep it.
    if (ctx.bestEpoch === 0) throwIfCancelled(ctx.signal);
    if (stage.skip?.(ctx)) continue;
    await stage.run(ctx);
    ctx.timer.lap(stage.name);
  }
}

/** Checks the request, creates the run folder (`<folderPrefix><dataset>-<timestamp>`) and the context every stage shares. */
export async function openRun(
  req: RunRequest,
  notify: (n: TrainingNotification) => void,
  signal: AbortSignal,
  folderPrefix = '',
): Promise<RunContext> {
  const startedAt = Date.now();
  const timer = new StageTimer(Math.round(process.uptime() * 1000));
  if (!req.modelEntry) checkModelOption(req.options.model);
  const valSplit = valSplitProblem(req.options.valSplit);
  if (valSplit) throw new TrainerError('options', valSplit);
  const datasetRoot = path.resolve(req.datasetRoot);
  const stat = await fs.promises.stat(datasetRoot).catch(() => undefined);
  if (!stat?.isDirectory()) throw new TrainerError('dataset', `${datasetRoot} is not a folder.`);
  // Every folder the run writes into, before anything is written. An unwritable cache is not
  // refused: the run goes on without it.
  await checkOutputFolder('runs', req.runsDir, datasetRoot, true);
  await checkOutputFolder('cache', req.cacheDir, datasetRoot, false);
  if (req.modelCacheDir) await checkOutputFolder('model cache', req.modelCacheDir, datasetRoot, false);
  const datasetName = path.basename(datasetRoot);
  const runDir = await createRunFolder(req.runsDir, datasetRoot, `${folderPrefix}${datasetName}`, new Date());
  const writer = new RunFolderWriter(runDir, {
    state: 'running',
    datasetRoot,
    datasetName,
    startedAt: new Date(startedAt).toISOString(),
    hasCheckpoint: false,
    pid: process.pid,
  });
  const ctx = new RunContext(req, datasetRoot, writer, notify, signal, timer, startedAt);
  const removed = await removeCrashedRunsTempFiles(req.runsDir);
  if (removed.length) ctx.log('info', `Removed ${removed.length} temporary files left by runs that crashed: ${removed.join(', ')}`);
  return ctx;
}

/** Records a run that got through its stages: status, report, summary. */
async function finishRun(ctx: RunContext): Promise<RunSummary> {
  const cancelled = ctx.signal.aborted;
  const state = cancelled ? 'cancelled' : 'finished';
  const message = cancelled
    ? 'Cancelled; the best checkpoint was kept.'
    : ctx.stopReason === 'time-limit'
      ? `Stopped at the time limit (${formatLimit(ctx.options.timeLimitMinutes * 60)}); the best checkpoint was kept.`
      : undefined;
  const summary = ctx.summary(cancelled);
  const { runDir: _runDir, ...summaryOnDisk } = summary;
  await ctx.writer.updateStatus({
    state,
    hasCheckpoint: true,
    valAccuracy: ctx.need('evaluation').accuracy,
    bestEpoch: ctx.bestEpoch,
    pid: undefined,
    summary: summaryOnDisk,
    message,
  });
  await writeReport(ctx, state, message);
  ctx.progress.offer({ stage: 'save', done: 1, total: 1 });
  return summary;
}

/**
 * Records a run that ended early: cancelled (returns its summary) or failed (rethrows with `runDir`
 * attached; a failed write in the run folder rethrown as a `disk` error that says what survived).
 * status.json ends `failed` wherever it can still be written; where it cannot, it keeps the pid of
 * this process, which a later reader finds dead.
 */
async function failRun(ctx: RunContext, err: unknown): Promise<RunSummary> {
  const cancelled = err instanceof RunCancelled || ctx.signal.aborted;
  // This process's temporary files: a failed write removes its own, this catches any left over, and
  // on a full disk frees the space the status below needs.
  for (const dir of [ctx.runDir, ctx.writer.file(RUN_FILES.modelDir)]) await removeStaleTempFiles(dir, process.pid);
  const failure = cancelled ? err : describeWriteFailure(err, ctx.runDir, ctx.writer.statusOnDisk);
  const message = cancelled ? 'Cancelled before a model was trained.' : failure instanceof Error ? failure.message : String(failure);
  ctx.writer.log(`[error] ${message}${err instanceof Error && err.stack ? `\n${err.stack}` : ''}`);
  const errorKind = cancelled ? undefined : errorKindOf(failure);
  await ctx.writer.writeFinalStatus({ state: cancelled ? 'cancelled' : 'failed', message, errorKind, pid: undefined });
  await writeReport(ctx, cancelled ? 'cancelled' : 'failed', message).catch(() => undefined);
  if (cancelled) return ctx.summary(true);
  if (failure !== null && typeof failure === 'object') (failure as { runDir?: string }).runDir = ctx.runDir;
  throw failure;
}

/** Writes report.md once the run knows its dataset and configuration. */
async function writeReport(ctx: RunContext, state: string, message?: string): Promise<void> {
  const scan = ctx.get('scan');
  const model = ctx.get('model');
  if (!scan || !model) return;
  const { runDir: _runDir, ...summary } = ctx.summary(state === 'cancelled');
  const report = renderRunReport({
    runName: path.basename(ctx.runDir),
    config: model.config,
    dataset: scan.report,
    history: ctx.history,
    evaluation: ctx.get('evaluation'),
    summary,
    state,
    message,
  });
  await writeFileAtomic(ctx.writer.file(RUN_FILES.report), report);
}
