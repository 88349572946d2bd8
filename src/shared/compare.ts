// Two runs side by side: what `image-trainer compare` prints with --json and what the panel's
// comparison shows. Computed in the training process (src/training/compare/), drawn in the webview;
// the extension checks the JSON with `isRunComparison` before it trusts it.
import type { TrainOptions } from './types';
import { isArrayOf, isNumber, isObject, isOptional, isString } from './protocol/guards';

/** One setting whose value differs between two runs (`a` and `b` as JSON values; absent = not recorded). */
export interface SettingDifference {
  name: string;
  a?: string | number | boolean;
  b?: string | number | boolean;
}

/** An image that moved to another class between the two runs' datasets (same content). */
export interface RelabelledImage {
  sha256: string;
  pathA: string;
  pathB: string;
  classA: string;
  classB: string;
}

/** How the datasets of two runs differ, by content hash and path. */
export interface DatasetDifference {
  /** False when a run folder did not record its images (written before images.json existed): only the counts are known. */
  recorded: boolean;
  imagesA: number;
  imagesB: number;
  /** Contents in B that A did not have (B's paths). */
  added: { path: string; class: string }[];
  /** Contents in A that B no longer has (A's paths). */
  removed: { path: string; class: string }[];
  relabelled: RelabelledImage[];
  /** Same content and class under another file name. */
  renamed: { pathA: string; pathB: string; class: string }[];
  /** Images with the same content, path and class in both. */
  unchanged: number;
}

export interface ClassFigures {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

/** The figures of one run in a comparison. */
export interface RunFigures {
  accuracy: number;
  macroF1: number;
  /** Expected calibration error after temperature scaling, and the temperature (absent: not calibrated). */
  calibration?: { temperature: number; eceBefore: number; eceAfter: number };
  /** Accuracy on the validation images both runs validated. */
  commonAccuracy: number;
}

export interface MetricsComparison {
  a: RunFigures;
  b: RunFigures;
  /** Per class name (the union of both runs' classes, A's order first): absent side = class not in that run. */
  perClass: { name: string; a?: ClassFigures; b?: ClassFigures }[];
}

/** A validation image whose prediction changed: its path (in B), its true class, the two predictions. */
export interface FlippedImage {
  path: string;
  label: string;
  before: string;
  after: string;
  /** Its true class in A, when it was relabelled in between. */
  labelBefore?: string;
  /** Its path in A, when it was renamed or moved in between. */
  pathBefore?: string;
  /** Confidence of each run's prediction. */
  confidenceBefore: number;
  confidenceAfter: number;
}

export interface Flips {
  /** Wrong in A, right in B. */
  fixed: FlippedImage[];
  /** Right in A, wrong in B. */
  broken: FlippedImage[];
  /** Wrong in both, with different predictions. */
  changed: FlippedImage[];
}

/** One run as a comparison names it. */
export interface ComparedRun {
  name: string;
  runDir: string;
  datasetRoot: string;
  startedAt: string;
  model: string;
}

export interface RunComparison {
  format: 'image-trainer/comparison@1';
  a: ComparedRun;
  b: ComparedRun;
  settings: SettingDifference[];
  dataset: DatasetDifference;
  metrics: MetricsComparison;
  /** Validation images compared (both runs validated them), and those only one run validated. */
  validation: { both: number; onlyA: number; onlyB: number };
  flips: Flips;
}

/** The settings a run table and a comparison list, in this order (the options a user chooses). */
export const COMPARED_SETTINGS: readonly (keyof TrainOptions)[] = [
  'model',
  'epochs',
  'batchSize',
  'learningRate',
  'valSplit',
  'seed',
  'hiddenUnits',
  'dropout',
  'classWeights',
  'patience',
  'lrPatience',
  'lrFactor',
  'fineTuneLayers',
  'fineTuneEpochs',
  'fineTuneLearningRate',
  'recipe',
  'refit',
  'maxPixels',
  'followExternalLinks',
  'timeLimitMinutes',
  'backend',
];

type Setting = string | number | boolean;

function settingValue(options: Partial<TrainOptions> | undefined, name: keyof TrainOptions): Setting | undefined {
  const value = options?.[name] as unknown;
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : undefined;
}

/** The settings whose values differ between two runs' options, in `COMPARED_SETTINGS` order. */
export function settingDifferences(a: Partial<TrainOptions> | undefined, b: Partial<TrainOptions> | undefined): SettingDifference[] {
  const out: SettingDifference[] = [];
  for (const name of COMPARED_SETTINGS) {
    const va = settingValue(a, name);
    const vb = settingValue(b, name);
    if (va === vb) continue;
    out.push({ name, ...(va !== undefined ? { a: va } : {}), ...(vb !== undefined ? { b: vb } : {}) });
  }
  return out;
}

function isFlippedImage(v: unknown): v is FlippedImage {
  return (
    isObject(v) &&
    isString(v.path) &&
    isString(v.label) &&
    isString(v.before) &&
    isString(v.after) &&
    isOptional(v.labelBefore, isString) &&
    isOptional(v.pathBefore, isString) &&
    isNumber(v.confidenceBefore) &&
    isNumber(v.confidenceAfter)
  );
}

function isComparedRun(v: unknown): v is ComparedRun {
  return isObject(v) && isString(v.name) && isString(v.runDir) && isString(v.datasetRoot) && isString(v.startedAt) && isString(v.model);
}

function isRunFigures(v: unknown): v is RunFigures {
  return isObject(v) && isNumber(v.accuracy) && isNumber(v.macroF1) && isNumber(v.commonAccuracy) && isOptional(v.calibration, isObject);
}

const isSetting = (v: unknown): v is Setting => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean';

/** True for a comparison as `compare --json` prints it (checked before the extension passes it on). */
export function isRunComparison(v: unknown): v is RunComparison {
  if (!isObject(v) || v.format !== 'image-trainer/comparison@1' || !isComparedRun(v.a) || !isComparedRun(v.b)) return false;
  const { settings, dataset, metrics, validation, flips } = v;
  return (
    isArrayOf(
      settings,
      (s): s is SettingDifference => isObject(s) && isString(s.name) && isOptional(s.a, isSetting) && isOptional(s.b, isSetting),
    ) &&
    isObject(dataset) &&
    typeof dataset.recorded === 'boolean' &&
    ['added', 'removed', 'relabelled', 'renamed'].every((k) => isArrayOf(dataset[k], isObject)) &&
    isObject(metrics) &&
    isRunFigures(metrics.a) &&
    isRunFigures(metrics.b) &&
    isArrayOf(metrics.perClass, (c): c is object => isObject(c) && isString(c.name)) &&
    isObject(validation) &&
    isNumber(validation.both) &&
    isObject(flips) &&
    ['fixed', 'broken', 'changed'].every((k) => isArrayOf(flips[k], isFlippedImage))
  );
}
