// Messages between the extension host (parent) and the training process (child, over IPC).
// Host → child: `…Command`; child → host: `…Notification`. Each has a guard; dispatch by `type`.
import type { BackendInfo, DatasetReport, EpochMetrics, Evaluation, Progress, RunSummary, TrainOptions } from '../types';

export interface StartCommand {
  type: 'start';
  datasetRoot: string;
  /** Folder under which the run folder `<dataset>-<timestamp>` is created. */
  runsDir: string;
  cacheDir: string;
  options: TrainOptions;
  /** Where hosted base models are downloaded (the extension's global storage); default `<cacheDir>/models`. */
  modelCacheDir?: string;
  /** Folder where "Install GPU Backend" put the native tfjs packages. */
  nativeBackendsDir?: string;
}
export interface CancelCommand {
  type: 'cancel';
}
export type TrainingCommand = StartCommand | CancelCommand;

export interface StartedNotification {
  type: 'started';
  runDir: string;
  backend: BackendInfo;
  model: { id: string; name: string; inputSize: number; featureSize: number };
  dataset: DatasetReport;
  options: TrainOptions;
}
export interface ProgressNotification {
  type: 'progress';
  progress: Progress;
}
export interface EpochEndNotification {
  type: 'epochEnd';
  metrics: EpochMetrics;
}
export interface EvaluationNotification {
  type: 'evaluation';
  evaluation: Evaluation;
}
export interface FinishedNotification {
  type: 'finished';
  summary: RunSummary;
}
export interface FailedNotification {
  type: 'failed';
  message: string;
  runDir?: string;
}
export interface LogNotification {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
}
export type TrainingNotification =
  | StartedNotification
  | ProgressNotification
  | EpochEndNotification
  | EvaluationNotification
  | FinishedNotification
  | FailedNotification
  | LogNotification;

const NOTIFICATION_TYPES: ReadonlySet<string> = new Set<TrainingNotification['type']>([
  'started',
  'progress',
  'epochEnd',
  'evaluation',
  'finished',
  'failed',
  'log',
]);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True for a message the training process may send. */
export function isTrainingNotification(value: unknown): value is TrainingNotification {
  return isObject(value) && typeof value.type === 'string' && NOTIFICATION_TYPES.has(value.type);
}

/** True for a command the host may send to the training process. */
export function isTrainingCommand(value: unknown): value is TrainingCommand {
  if (!isObject(value)) return false;
  if (value.type === 'cancel') return true;
  return (
    value.type === 'start' &&
    typeof value.datasetRoot === 'string' &&
    typeof value.runsDir === 'string' &&
    typeof value.cacheDir === 'string' &&
    isObject(value.options)
  );
}
