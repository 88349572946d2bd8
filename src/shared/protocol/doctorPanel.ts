// Messages between the Dataset Doctor panel (webview) and its controller in the extension host,
// and the shape check of a doctor report (doctor.json, the training process's `doctorFinished`).
// Webview → host: `…Command` (user intents); host → webview: `…Notification`. The webview never
// receives absolute paths: images are named relative to the dataset root and shown through
// `imageBaseUri`; every path and finding key it sends back is checked again by the host.
import { DOCTOR_FINDING_KINDS, type DoctorFindingKind, type DoctorReport, type WeakImageProblem } from '../doctor';
import { STAGE_LABELS } from '../stages';
import type { Progress, Stage } from '../types';
import { isArrayOf, isNumber, isObject, isOneOf, isOptional, isString } from './guards';

export const WEAK_IMAGE_PROBLEMS: readonly WeakImageProblem[] = ['dark', 'bright', 'low-contrast', 'blurred', 'upscaled'];

const isStringArray = (v: unknown): v is string[] => isArrayOf(v, isString);

/** True for a report with every list and field the Doctor view reads. */
export function isDoctorReport(value: unknown): value is DoctorReport {
  return (
    isObject(value) &&
    isString(value.dataset) &&
    isNumber(value.images) &&
    isStringArray(value.classes) &&
    isArrayOf(
      value.labelIssues,
      (x): x is object => isObject(x) && isString(x.path) && isString(x.label) && isString(x.suggested) && isNumber(x.score),
    ) &&
    isArrayOf(
      value.nearDuplicates,
      (x): x is object =>
        isObject(x) &&
        isStringArray(x.paths) &&
        isStringArray(x.classes) &&
        x.paths.length === x.classes.length &&
        isNumber(x.similarity) &&
        typeof x.crossesSplit === 'boolean',
    ) &&
    isArrayOf(value.outliers, (x): x is object => isObject(x) && isString(x.path) && isString(x.label) && isNumber(x.score)) &&
    isArrayOf(
      value.weakImages,
      (x): x is object => isObject(x) && isString(x.path) && isOneOf(x.problem, WEAK_IMAGE_PROBLEMS) && isNumber(x.value),
    ) &&
    isArrayOf(
      value.shortcuts,
      (x): x is object => isObject(x) && isString(x.property) && isNumber(x.accuracy) && isNumber(x.baseline) && isString(x.detail),
    )
  );
}

/** One finding the user can act on, named by a key that is stable across reports of the same dataset. */
export interface FindingRef {
  kind: DoctorFindingKind;
  key: string;
  /** The images the finding is about (relative paths). */
  paths: string[];
}

/** Every finding of a report with its key, in the view's order. */
export function findingsOf(report: Omit<DoctorReport, 'dataset'>): FindingRef[] {
  return [
    ...report.labelIssues.map((x) => ({ kind: 'labelIssues' as const, key: `label:${x.path}`, paths: [x.path] })),
    ...report.nearDuplicates.map((g) => ({
      kind: 'nearDuplicates' as const,
      key: `duplicates:${[...g.paths].sort().join('|')}`,
      paths: g.paths,
    })),
    ...report.outliers.map((x) => ({ kind: 'outliers' as const, key: `outlier:${x.path}`, paths: [x.path] })),
    ...report.weakImages.map((x) => ({ kind: 'weakImages' as const, key: `weak:${x.problem}:${x.path}`, paths: [x.path] })),
    ...report.shortcuts.map((x) => ({ kind: 'shortcuts' as const, key: `shortcut:${x.property}`, paths: [] })),
  ];
}

/** The report without the findings whose keys are in `kept`. */
export function withoutKept<R extends Omit<DoctorReport, 'dataset'>>(report: R, kept: ReadonlySet<string>): R {
  if (kept.size === 0) return report;
  const keep = (key: string) => !kept.has(key);
  return {
    ...report,
    labelIssues: report.labelIssues.filter((x) => keep(`label:${x.path}`)),
    nearDuplicates: report.nearDuplicates.filter((g) => keep(`duplicates:${[...g.paths].sort().join('|')}`)),
    outliers: report.outliers.filter((x) => keep(`outlier:${x.path}`)),
    weakImages: report.weakImages.filter((x) => keep(`weak:${x.problem}:${x.path}`)),
    shortcuts: report.shortcuts.filter((x) => keep(`shortcut:${x.property}`)),
  };
}

/** Number of findings in a report. */
export function findingCount(report: Omit<DoctorReport, 'dataset'>): number {
  return DOCTOR_FINDING_KINDS.reduce((n, kind) => n + report[kind].length, 0);
}

/** A stage of a doctor check in words: its heads are trained fold by fold (cross-validation). */
export function doctorStageLabel(stage: Stage): string {
  return stage === 'head' ? 'Cross-validating (folds)' : (STAGE_LABELS[stage] ?? stage);
}

export type DoctorCheckState = 'running' | 'finished' | 'failed' | 'cancelled';
const CHECK_STATES: readonly DoctorCheckState[] = ['running', 'finished', 'failed', 'cancelled'];

/** A fix the user applied (and has not undone): the image is no longer where the report saw it. */
export interface AppliedFix {
  key: string;
  path: string;
  /** `class`: moved to another class folder; `folder`: moved out of the dataset; `trash`: deleted to the trash. */
  action: 'class' | 'folder' | 'trash';
  /** The class it went to (`class` only). */
  toClass?: string;
  /** Where it is now, relative to the dataset root (`class` only). */
  newPath?: string;
}
const FIX_ACTIONS: readonly AppliedFix['action'][] = ['class', 'folder', 'trash'];

/** The retrain after fixes and the change of validation accuracy it brought. */
export interface RetrainOutcome {
  state: 'running' | 'finished' | 'failed' | 'cancelled';
  /** Validation accuracy of the dataset's latest finished run before the fixes, if any. */
  before?: number;
  after?: number;
  runName?: string;
}

/** Everything the Doctor view shows, sent whole after `ready` and after each change. */
export interface DoctorPanelState {
  datasetName: string;
  /** Webview URI of the dataset root; thumbnails are `${imageBaseUri}/${encoded relative path}`. */
  imageBaseUri: string;
  state: DoctorCheckState;
  message?: string;
  /** Display name of the doctor's folder (no path). */
  checkName?: string;
  progress?: Progress;
  /** The report without its absolute dataset path and without the findings the user kept. */
  report?: Omit<DoctorReport, 'dataset'>;
  /** Findings hidden because the user chose Keep (remembered outside the dataset). */
  keptCount: number;
  fixes: AppliedFix[];
  retrain?: RetrainOutcome;
}

// webview → host
export type DoctorPanelCommand =
  | { type: 'ready' }
  | { type: 'cancel' }
  | { type: 'retrain' }
  | { type: 'openImage'; path: string }
  | { type: 'moveToClass'; key: string; path: string; toClass: string }
  | { type: 'moveOut'; key: string; path: string; to: 'trash' | 'folder' }
  | { type: 'keep'; key: string }
  /** Reverts the fix applied to this image (the same as VS Code's Undo of that file operation). */
  | { type: 'undoFix'; path: string };

// host → webview
export type DoctorPanelNotification = { type: 'state'; state: DoctorPanelState } | { type: 'progress'; progress: Progress };

function isShortString(value: unknown, max = 4096): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= max;
}

/** Validates the shape of a message from the (untrusted) webview; paths and keys are checked against the report by the host. */
export function isDoctorPanelCommand(value: unknown): value is DoctorPanelCommand {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'ready':
    case 'cancel':
    case 'retrain':
      return true;
    case 'openImage':
      return isShortString(value.path);
    case 'moveToClass':
      return isShortString(value.key, 40_000) && isShortString(value.path) && isShortString(value.toClass, 255);
    case 'moveOut':
      return isShortString(value.key, 40_000) && isShortString(value.path) && isOneOf(value.to, ['trash', 'folder'] as const);
    case 'keep':
      return isShortString(value.key, 40_000);
    case 'undoFix':
      return isShortString(value.path);
    default:
      return false;
  }
}

function isProgress(value: unknown): value is Progress {
  return isObject(value) && isString(value.stage) && isNumber(value.done) && isNumber(value.total);
}

function isAppliedFix(value: unknown): value is AppliedFix {
  return (
    isObject(value) &&
    isString(value.key) &&
    isString(value.path) &&
    isOneOf(value.action, FIX_ACTIONS) &&
    isOptional(value.toClass, isString) &&
    isOptional(value.newPath, isString)
  );
}

function isDoctorPanelState(value: unknown): value is DoctorPanelState {
  return (
    isObject(value) &&
    isString(value.datasetName) &&
    isString(value.imageBaseUri) &&
    isOneOf(value.state, CHECK_STATES) &&
    isOptional(value.message, isString) &&
    isOptional(value.checkName, isString) &&
    isOptional(value.progress, isProgress) &&
    isOptional(value.report, (r): r is DoctorPanelState['report'] => isDoctorReport({ ...(isObject(r) ? r : {}), dataset: '' })) &&
    isNumber(value.keptCount) &&
    isArrayOf(value.fixes, isAppliedFix) &&
    isOptional(value.retrain, (r): r is RetrainOutcome => isObject(r) && isOneOf(r.state, CHECK_STATES))
  );
}

/** True for a message the host may send to the Doctor view, with the fields its type needs. */
export function isDoctorPanelNotification(value: unknown): value is DoctorPanelNotification {
  if (!isObject(value)) return false;
  if (value.type === 'state') return isDoctorPanelState(value.state);
  if (value.type === 'progress') return isProgress(value.progress);
  return false;
}
