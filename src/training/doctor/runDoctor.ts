// The dataset doctor: out-of-sample predictions for every image, then label issues, near-duplicates,
// outliers, weak images and shortcuts, written to `doctor.json` in a run-like folder
// (`<runs>/doctor-<dataset>-<timestamp>/` with status.json and train.log as a run has). It runs the
// training pipeline's first stages (backend → scan → base model → features, so the feature cache
// serves a warm doctor run), gathers any pixel statistics the cache lacks, splits as training does
// (near-duplicates on one side), then runs its own stage; it never writes into the dataset.
import { DOCTOR_FILE, type DoctorReport } from '../../shared/doctor';
import { MAX_DOCTOR_FOLDS, type TrainingNotification } from '../../shared/protocol/training';
import type { TrainOptions } from '../../shared/types';
import type { RunStage } from '../run/runContext';
import { openRun, runStages } from '../run/runTraining';
import { backendStage } from '../run/stages/backendStage';
import { baseModelStage } from '../run/stages/baseModelStage';
import { featuresStage } from '../run/stages/featuresStage';
import { scanStage } from '../run/stages/scanStage';
import { splitStage } from '../run/stages/splitStage';
import { describeWriteFailure } from '../run/writeFailure';
import { writeJsonAtomic } from '../util/atomicWrite';
import { errorKindOf, RunCancelled, TrainerError } from '../util/errors';
import { doctorStage, pixelStatsStage } from './doctorStage';

export interface DoctorRequest {
  datasetRoot: string;
  /** Parent of the doctor's run-like folder. */
  runsDir: string;
  cacheDir: string;
  /** Base model, seed, validation split (for `crossesSplit`), backend, limits. */
  options: TrainOptions;
  /** Cross-validation folds (default 5). */
  folds: number;
  extensionRoot?: string;
  modelCacheDir?: string;
  nativeModulePaths?: string[];
}

export interface DoctorResult {
  /** The folder that holds doctor.json (and the log). */
  runDir: string;
  report: DoctorReport;
}

/** Most folds the doctor accepts (each fold trains one head); the IPC guard checks the same bound. */
export { MAX_DOCTOR_FOLDS };

/** Runs the doctor; progress and log lines go to `notify` as during training. */
export async function runDoctor(req: DoctorRequest, notify: (n: TrainingNotification) => void, signal: AbortSignal): Promise<DoctorResult> {
  if (!Number.isInteger(req.folds) || req.folds < 2 || req.folds > MAX_DOCTOR_FOLDS) {
    throw new TrainerError('options', `The doctor needs between 2 and ${MAX_DOCTOR_FOLDS} cross-validation folds, got ${req.folds}.`);
  }
  // The doctor reads cached feature vectors: no fine-tuning (which would embed through a cut, uncached).
  // One view per image and no fine-tuning: the doctor judges the images by their cached features.
  const options: TrainOptions = { ...req.options, fineTuneLayers: 0, recipe: 'plain' };
  const ctx = await openRun({ ...req, options }, notify, signal, 'doctor-');
  let report: DoctorReport | undefined;
  const stages: RunStage[] = [
    backendStage,
    scanStage,
    baseModelStage,
    featuresStage,
    pixelStatsStage,
    splitStage,
    doctorStage(req.folds, (r) => (report = r)),
  ];
  try {
    await ctx.writer.updateStatus({});
    ctx.log('info', `Doctor folder: ${ctx.runDir}`);
    await runStages(ctx, stages);
    if (!report) throw new TrainerError('internal', 'The doctor finished without a report.');
    await writeJsonAtomic(ctx.writer.file(DOCTOR_FILE), report);
    ctx.log('info', doctorSummaryLine(report));
    await ctx.writer.updateStatus({
      state: 'finished',
      pid: undefined,
      summary: withoutRunDir(ctx.summary(false)),
      message: doctorSummaryLine(report),
    });
    return { runDir: ctx.runDir, report };
  } catch (err) {
    const cancelled = err instanceof RunCancelled || signal.aborted;
    const failure = cancelled ? err : describeWriteFailure(err, ctx.runDir, ctx.writer.statusOnDisk);
    const message = cancelled ? 'Cancelled.' : failure instanceof Error ? failure.message : String(failure);
    ctx.writer.log(`[error] ${message}${err instanceof Error && err.stack ? `\n${err.stack}` : ''}`);
    await ctx.writer
      .writeFinalStatus({
        state: cancelled ? 'cancelled' : 'failed',
        message,
        errorKind: cancelled ? undefined : errorKindOf(failure),
        pid: undefined,
      })
      .catch(() => undefined);
    if (failure !== null && typeof failure === 'object') (failure as { runDir?: string }).runDir = ctx.runDir;
    throw failure;
  } finally {
    ctx.disposeAll();
    await ctx.writer.close();
  }
}

function withoutRunDir<T extends { runDir: string }>(summary: T): Omit<T, 'runDir'> {
  const { runDir: _runDir, ...rest } = summary;
  return rest;
}

/** "12 likely label errors, 3 near-duplicate groups (1 across the split), 2 outliers, 5 weak images, 1 shortcut". */
export function doctorSummaryLine(r: DoctorReport): string {
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  const crossing = r.nearDuplicates.filter((g) => g.crossesSplit).length;
  return [
    `${r.images} images`,
    n(r.labelIssues.length, 'likely label error'),
    `${n(r.nearDuplicates.length, 'near-duplicate group')}${crossing ? ` (${crossing} across the split)` : ''}`,
    n(r.outliers.length, 'outlier'),
    n(r.weakImages.length, 'weak image'),
    n(r.shortcuts.length, 'shortcut'),
  ].join(', ');
}
