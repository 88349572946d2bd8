// Messages between the training panel (webview) and its controller in the extension host.
// Webview → host: `…Command` (user intents); host → webview: `…Notification`.
// The webview never receives absolute file-system paths: images are named by their path relative
// to the dataset root, and shown through `imageBaseUri` (a webview URI of that root).
import { STAGE_LABELS } from '../stages';
import { ERROR_KINDS } from '../types';
import type { BackendInfo, DatasetReport, EpochMetrics, ErrorKind, Evaluation, Progress, RunSummary, Stage, TrainOptions } from '../types';
import { isArrayOf, isBoolean, isNumber, isObject, isOneOf, isOptional, isString } from './guards';

export type RunState = 'starting' | 'running' | 'finished' | 'failed' | 'cancelled';
const RUN_STATES: readonly RunState[] = ['starting', 'running', 'finished', 'failed', 'cancelled'];

/** Everything the panel shows, sent whole after `ready` and after a reload. */
export interface PanelState {
  runId: string;
  /** Display name of the run folder (no path). */
  runName: string;
  state: RunState;
  message?: string;
  /** What kind of failure a failed run had, when the training process said. */
  errorKind?: ErrorKind;
  datasetName: string;
  /** Webview URI of the dataset root; thumbnails are `${imageBaseUri}/${encoded relative path}`. */
  imageBaseUri: string;
  dataset?: Omit<DatasetReport, 'root'>;
  backend?: BackendInfo;
  model?: { id: string; name: string; inputSize: number; featureSize: number };
  options?: TrainOptions;
  progress?: Progress;
  epochs: EpochMetrics[];
  evaluation?: Evaluation;
  summary?: Omit<RunSummary, 'runDir'>;
  /** Relative paths moved by "Move to class folder…" since the run, with their new class (and new relative path). */
  moved: { path: string; toClass: string; newPath?: string }[];
  /** Base models the user may retrain with (ids and display names), filled by the host. */
  models?: { id: string; name: string }[];
  /** The base model id of this run (its config), preselected in the model dropdown. */
  currentModel?: string;
}

// webview → host
export interface ReadyCommand {
  type: 'ready';
}
export interface CancelRunCommand {
  type: 'cancel';
}
export interface OpenImageCommand {
  type: 'openImage';
  path: string;
  /** Open the image with the heatmap of its predicted class blended over it (a PNG the host draws outside the dataset). */
  heatmap?: boolean;
}
/** The most images one `explainImages` may name: a gallery page. */
export const MAX_EXPLAIN_PATHS = 60;
/** Asks for the heatmaps of validation images of the run shown (the gallery's heatmap toggle). */
export interface ExplainImagesCommand {
  type: 'explainImages';
  /** Relative paths of validation images of this run; the host checks each with its ImagePathGuard. */
  paths: string[];
}
export interface RevealImageCommand {
  type: 'revealImage';
  path: string;
}
export interface MoveImageCommand {
  type: 'moveImage';
  path: string;
  toClass: string;
}
export interface RetrainCommand {
  type: 'retrain';
  /** Base model id for the new run, overriding the setting; the host accepts only ids it listed in `models`. */
  model?: string;
}
export type PanelCommand =
  ReadyCommand | CancelRunCommand | OpenImageCommand | RevealImageCommand | MoveImageCommand | RetrainCommand | ExplainImagesCommand;

// host → webview
export interface StateNotification {
  type: 'state';
  state: PanelState;
}
export interface ProgressUpdateNotification {
  type: 'progress';
  progress: Progress;
}
export interface EpochNotification {
  type: 'epoch';
  metrics: EpochMetrics;
}
export interface ImageMovedNotification {
  type: 'imageMoved';
  path: string;
  toClass: string;
  /** Where the image is now, relative to the dataset root (the thumbnail keeps showing it). */
  newPath?: string;
}
/** A small heatmap of one image (the longer side at most `MAX_PANEL_HEATMAP_SIDE` values), row-major values in [0, 1] over the whole image. */
export interface PanelHeatmap {
  path: string;
  width: number;
  height: number;
  values: number[];
}
/** The longer side of a gallery heatmap in values: a thumbnail is 148 px; the map under it is 7×7 cells. */
export const MAX_PANEL_HEATMAP_SIDE = 48;
/** The heatmaps asked for with `explainImages`, and the images that could not be explained, with why. */
export interface HeatmapsNotification {
  type: 'heatmaps';
  heatmaps: PanelHeatmap[];
  failed: { path: string; reason: string }[];
}
export type PanelNotification =
  StateNotification | ProgressUpdateNotification | EpochNotification | ImageMovedNotification | HeatmapsNotification;

function isShortString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 4096;
}

/** Validates the shape of a message from the (untrusted) webview; paths are checked separately by the host. */
export function isPanelCommand(value: unknown): value is PanelCommand {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'ready':
    case 'cancel':
      return true;
    case 'retrain':
      return value.model === undefined || (isShortString(value.model) && value.model.length <= 200);
    case 'openImage':
      return isShortString(value.path) && isOptional(value.heatmap, isBoolean);
    case 'revealImage':
      return isShortString(value.path);
    case 'explainImages':
      return isArrayOf(value.paths, isShortString) && value.paths.length > 0 && value.paths.length <= MAX_EXPLAIN_PATHS;
    case 'moveImage':
      return isShortString(value.path) && isShortString(value.toClass);
    default:
      return false;
  }
}

/** A heatmap whose size is within bounds and whose values fill it, each in [0, 1]. */
export function isPanelHeatmap(value: unknown): value is PanelHeatmap {
  if (!isObject(value) || !isString(value.path) || !isNumber(value.width) || !isNumber(value.height)) return false;
  const { width, height, values } = value;
  return (
    Number.isInteger(width) &&
    Number.isInteger(height) &&
    width >= 1 &&
    height >= 1 &&
    width <= MAX_PANEL_HEATMAP_SIDE &&
    height <= MAX_PANEL_HEATMAP_SIDE &&
    Array.isArray(values) &&
    values.length === width * height &&
    values.every((v) => isNumber(v) && v >= 0 && v <= 1)
  );
}

const STAGES = Object.keys(STAGE_LABELS) as Stage[];

/** The fields the panel reads before anything else; the optional parts, when present, are objects. */
function isPanelState(value: unknown): value is PanelState {
  return (
    isObject(value) &&
    isString(value.runId) &&
    isString(value.runName) &&
    isOneOf(value.state, RUN_STATES) &&
    isOptional(value.message, isString) &&
    isOptional(value.errorKind, (k): k is ErrorKind => isOneOf(k, ERROR_KINDS)) &&
    isString(value.datasetName) &&
    isString(value.imageBaseUri) &&
    isArrayOf(value.epochs, isObject) &&
    isArrayOf(value.moved, isObject) &&
    isOptional(value.models, (m): m is object[] => isArrayOf(m, isObject)) &&
    isOptional(value.currentModel, isString) &&
    [value.dataset, value.backend, value.model, value.options, value.progress, value.evaluation, value.summary].every((part) =>
      isOptional(part, isObject),
    )
  );
}

/** True for a message the host may send to the webview, with the fields its type needs. */
export function isPanelNotification(value: unknown): value is PanelNotification {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'state':
      return isPanelState(value.state);
    case 'progress':
      return (
        isObject(value.progress) && isOneOf(value.progress.stage, STAGES) && isNumber(value.progress.done) && isNumber(value.progress.total)
      );
    case 'epoch':
      return isObject(value.metrics) && isNumber(value.metrics.epoch) && isOneOf(value.metrics.stage, ['head', 'fine-tune'] as const);
    case 'imageMoved':
      return isString(value.path) && isString(value.toClass) && isOptional(value.newPath, isString);
    case 'heatmaps':
      return (
        isArrayOf(value.heatmaps, isPanelHeatmap) &&
        isArrayOf(value.failed, (f): f is { path: string; reason: string } => isObject(f) && isString(f.path) && isString(f.reason))
      );
    default:
      return false;
  }
}
