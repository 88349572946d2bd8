// Messages between the extension host (parent) and the training process (child, over IPC).
// Host → child: `…Command`; child → host: `…Notification`. Each has a guard; dispatch by `type`.
import { STAGE_LABELS } from '../stages';
import { BACKEND_PREFERENCES, DEFAULT_TRAIN_OPTIONS, ERROR_KINDS, RECIPE_NAMES } from '../types';
import type {
  BackendInfo,
  DatasetReport,
  EpochMetrics,
  ErrorKind,
  Evaluation,
  Progress,
  RecipeCandidate,
  RecipeChoice,
  RunSummary,
  Stage,
  TrainOptions,
} from '../types';
import type { DoctorReport } from '../doctor';
import { isDoctorReport } from './doctorPanel';
import { isArrayOf, isMeasure, isNumber, isObject, isOneOf, isOptional, isString } from './guards';

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
/** Runs the dataset doctor (read-only checks) instead of a training run; answered by `doctorFinished` or `failed`. */
export interface DoctorCommand {
  type: 'doctor';
  datasetRoot: string;
  /** Folder under which the doctor's folder `doctor-<dataset>-<timestamp>` is created. */
  runsDir: string;
  cacheDir: string;
  options: TrainOptions;
  /** Cross-validation folds. */
  folds: number;
  modelCacheDir?: string;
  nativeBackendsDir?: string;
}
export type TrainingCommand = StartCommand | CancelCommand | DoctorCommand;

/** Most cross-validation folds a doctor command may ask for (each fold trains one head). */
export const MAX_DOCTOR_FOLDS = 20;

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
  /** What kind of failure, so the host can offer the action that fits (open the report, retry, …). */
  kind: ErrorKind;
  runDir?: string;
}
export interface LogNotification {
  type: 'log';
  level: 'info' | 'warn' | 'error';
  message: string;
}
/** The doctor's report, once doctor.json is written in `runDir`. */
export interface DoctorFinishedNotification {
  type: 'doctorFinished';
  runDir: string;
  report: DoctorReport;
}
export type TrainingNotification =
  | DoctorFinishedNotification
  | StartedNotification
  | ProgressNotification
  | EpochEndNotification
  | EvaluationNotification
  | FinishedNotification
  | FailedNotification
  | LogNotification;

const STAGES = Object.keys(STAGE_LABELS) as Stage[];
const LOG_LEVELS: readonly LogNotification['level'][] = ['info', 'warn', 'error'];

/** Every option present with the type of its default, and a known backend. */
function isTrainOptions(value: unknown): value is TrainOptions {
  if (!isObject(value)) return false;
  const typed = Object.entries(DEFAULT_TRAIN_OPTIONS).every(([key, fallback]) =>
    typeof fallback === 'number' ? isNumber(value[key]) : typeof value[key] === typeof fallback,
  );
  return typed && isOneOf(value.backend, BACKEND_PREFERENCES);
}

function isProgress(value: unknown): value is Progress {
  return isObject(value) && isOneOf(value.stage, STAGES) && isNumber(value.done) && isNumber(value.total);
}

function isEpochMetrics(value: unknown): value is EpochMetrics {
  return (
    isObject(value) &&
    isOneOf(value.stage, ['head', 'fine-tune'] as const) &&
    isNumber(value.epoch) &&
    [value.loss, value.acc, value.valLoss, value.valAcc, value.lr, value.durationMs].every(isMeasure)
  );
}

function isBackendInfo(value: unknown): value is BackendInfo {
  return isObject(value) && isString(value.backend) && isString(value.summary) && isArrayOf(value.attempts, isObject);
}

function isModelInfo(value: unknown): value is StartedNotification['model'] {
  return isObject(value) && isString(value.id) && isString(value.name) && isNumber(value.inputSize) && isNumber(value.featureSize);
}

function isDatasetReport(value: unknown): value is DatasetReport {
  return (
    isObject(value) &&
    isString(value.name) &&
    isArrayOf(value.classes, isObject) &&
    isArrayOf(value.skipped, isObject) &&
    isArrayOf(value.warnings, isString)
  );
}

/** True for a recipe choice as the engine records it (evaluation.json, the evaluation notification). */
export function isRecipeChoice(value: unknown): value is RecipeChoice {
  const concrete = RECIPE_NAMES.filter((r) => r !== 'auto');
  return (
    isObject(value) &&
    isOneOf(value.requested, RECIPE_NAMES) &&
    isOneOf(value.chosen, concrete) &&
    isNumber(value.views) &&
    isNumber(value.images) &&
    isNumber(value.folds) &&
    isString(value.reason) &&
    isArrayOf(
      value.candidates,
      (c): c is RecipeCandidate =>
        isObject(c) &&
        isOneOf(c.recipe, concrete) &&
        isNumber(c.views) &&
        isMeasure(c.accuracy) &&
        (c.paired === undefined || (isObject(c.paired) && isNumber(c.paired.better) && isNumber(c.paired.worse))),
    )
  );
}

function isEvaluation(value: unknown): value is Evaluation {
  return (
    isObject(value) &&
    isOptional(value.recipe, isRecipeChoice) &&
    isArrayOf(value.classes, isString) &&
    isArrayOf(value.matrix, (row): row is number[] => isArrayOf(row, isNumber)) &&
    isMeasure(value.accuracy) &&
    isArrayOf(value.perClass, isObject) &&
    isArrayOf(value.predictions, isObject)
  );
}

function isRunSummary(value: unknown): value is RunSummary {
  return (
    isObject(value) &&
    isString(value.runDir) &&
    isMeasure(value.valAccuracy) &&
    isNumber(value.bestEpoch) &&
    isNumber(value.epochsRun) &&
    typeof value.cancelled === 'boolean' &&
    isObject(value.cache)
  );
}

/** True for a message the training process may send, with the fields its type needs. */
export function isTrainingNotification(value: unknown): value is TrainingNotification {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'started':
      return (
        isString(value.runDir) &&
        isBackendInfo(value.backend) &&
        isModelInfo(value.model) &&
        isDatasetReport(value.dataset) &&
        isTrainOptions(value.options)
      );
    case 'progress':
      return isProgress(value.progress);
    case 'epochEnd':
      return isEpochMetrics(value.metrics);
    case 'evaluation':
      return isEvaluation(value.evaluation);
    case 'finished':
      return isRunSummary(value.summary);
    case 'failed':
      return isString(value.message) && isOneOf(value.kind, ERROR_KINDS) && isOptional(value.runDir, isString);
    case 'log':
      return isOneOf(value.level, LOG_LEVELS) && isString(value.message);
    case 'doctorFinished':
      return isString(value.runDir) && isDoctorReport(value.report);
    default:
      return false;
  }
}

/** True for a command the host may send to the training process, with the fields its type needs. */
export function isTrainingCommand(value: unknown): value is TrainingCommand {
  if (!isObject(value)) return false;
  if (value.type === 'cancel') return true;
  if (value.type === 'doctor')
    return (
      isString(value.datasetRoot) &&
      isString(value.runsDir) &&
      isString(value.cacheDir) &&
      isTrainOptions(value.options) &&
      Number.isInteger(value.folds) &&
      (value.folds as number) >= 2 &&
      (value.folds as number) <= MAX_DOCTOR_FOLDS &&
      isOptional(value.modelCacheDir, isString) &&
      isOptional(value.nativeBackendsDir, isString)
    );
  return (
    value.type === 'start' &&
    isString(value.datasetRoot) &&
    isString(value.runsDir) &&
    isString(value.cacheDir) &&
    isTrainOptions(value.options) &&
    isOptional(value.modelCacheDir, isString) &&
    isOptional(value.nativeBackendsDir, isString)
  );
}
