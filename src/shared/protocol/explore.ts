// The panel's exploring views — Compare, Runs and the feature map — and the messages they exchange
// with the host. Part of the panel protocol (panel.ts joins them into its unions); kept apart so
// those views can change without touching the training screens. As everywhere in the panel, the
// webview never receives absolute paths: runs are named by their folder name, images by their path
// relative to the dataset root.
import type { FeatureMapFile } from '../featureMap';
import { isFeatureMapFile } from '../featureMap';
import type { RunComparison } from '../compare';
import { isRunComparison } from '../compare';
import type { EpochMetrics } from '../types';
import { isArrayOf, isNumber, isObject, isOneOf, isOptional, isString } from './guards';

/** One row of the Runs table (newest first). */
export interface RunRow {
  /** The run folder's name: what the webview sends back to pick it. */
  name: string;
  startedAt: string;
  state: string;
  model?: string;
  accuracy?: number;
  /** Wall time of the run in milliseconds. */
  wallMs?: number;
  /** Settings that differ from the previous (older) run, as `name: before → after`. */
  changes: string[];
  /** True for the run this panel shows. */
  current: boolean;
}

/** A comparison as the webview gets it: no absolute paths, plus what the comparison view draws. */
export interface ComparisonView {
  comparison: Omit<RunComparison, 'a' | 'b'> & {
    a: Omit<RunComparison['a'], 'runDir' | 'datasetRoot'>;
    b: Omit<RunComparison['b'], 'runDir' | 'datasetRoot'>;
  };
  epochsA: EpochMetrics[];
  epochsB: EpochMetrics[];
  /** Confusion matrices (rows actual, columns predicted) over each run's own classes. */
  matrixA: { classes: string[]; matrix: number[][] };
  matrixB: { classes: string[]; matrix: number[][] };
}

/** Map points the host marks: doctor findings by path (present only when a doctor.json exists). */
export interface MapMarks {
  doctor?: { path: string; finding: string }[];
}

// webview → host
export interface PickComparisonCommand {
  type: 'compare/pick';
}
export interface CompareRunsCommand {
  type: 'compare/runs';
  /** Run folder names from the Runs table (the host accepts only names it listed). */
  a: string;
  b: string;
}
export interface ShowRunsCommand {
  type: 'runs/show';
}
export interface ShowMapCommand {
  type: 'map/show';
}
/** The images of a lasso selection on the map moved to one class folder (one confirmation, one undo). */
export interface MoveMapSelectionCommand {
  type: 'map/move';
  paths: string[];
  toClass: string;
}
export type ExploreCommand = PickComparisonCommand | CompareRunsCommand | ShowRunsCommand | ShowMapCommand | MoveMapSelectionCommand;

/** The most images one lasso move may carry. */
export const MAX_LASSO_MOVE = 5000;

// host → webview
export interface ComparisonNotification {
  type: 'comparison';
  view: ComparisonView;
}
export interface RunsNotification {
  type: 'runs';
  runs: RunRow[];
}
export interface FeatureMapNotification {
  type: 'featureMap';
  map: FeatureMapFile;
  marks: MapMarks;
}
/** A view could not be shown: the reason, in words. */
export interface ExploreProblemNotification {
  type: 'exploreProblem';
  view: 'compare' | 'runs' | 'map';
  message: string;
}
export type ExploreNotification = ComparisonNotification | RunsNotification | FeatureMapNotification | ExploreProblemNotification;

const RUN_NAME = /^[^/\\]{1,255}$/;
const isShortString = (v: unknown): v is string => isString(v) && v.length > 0 && v.length <= 4096;
const isRunName = (v: unknown): v is string => isString(v) && RUN_NAME.test(v) && v !== '.' && v !== '..';

/** Validates an exploring command from the (untrusted) webview; run names are then checked against the host's list. */
export function isExploreCommand(value: unknown): value is ExploreCommand {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'compare/pick':
    case 'runs/show':
    case 'map/show':
      return true;
    case 'compare/runs':
      return isRunName(value.a) && isRunName(value.b) && value.a !== value.b;
    case 'map/move':
      return (
        isArrayOf(value.paths, isShortString) &&
        value.paths.length > 0 &&
        value.paths.length <= MAX_LASSO_MOVE &&
        new Set(value.paths).size === value.paths.length &&
        isShortString(value.toClass)
      );
    default:
      return false;
  }
}

function isMatrix(v: unknown): v is { classes: string[]; matrix: number[][] } {
  return (
    isObject(v) &&
    isArrayOf(v.classes, isString) &&
    isArrayOf(v.matrix, (r): r is number[] => isArrayOf(r, isNumber)) &&
    v.matrix.length === v.classes.length &&
    v.matrix.every((r) => r.length === (v.classes as string[]).length)
  );
}

function isRunRow(v: unknown): v is RunRow {
  return (
    isObject(v) &&
    isString(v.name) &&
    isString(v.startedAt) &&
    isString(v.state) &&
    isOptional(v.model, isString) &&
    isOptional(v.accuracy, isNumber) &&
    isOptional(v.wallMs, isNumber) &&
    isArrayOf(v.changes, isString) &&
    typeof v.current === 'boolean'
  );
}

/** True for an exploring notification with the fields its type needs. */
export function isExploreNotification(value: unknown): value is ExploreNotification {
  if (!isObject(value)) return false;
  switch (value.type) {
    case 'comparison': {
      const view = value.view;
      if (!isObject(view) || !isObject(view.comparison)) return false;
      const c = view.comparison;
      // The webview's copy has no paths; check it as the full shape with placeholders.
      const withPaths =
        isObject(c.a) && isObject(c.b)
          ? { ...c, a: { runDir: '', datasetRoot: '', ...c.a }, b: { runDir: '', datasetRoot: '', ...c.b } }
          : c;
      return (
        isRunComparison(withPaths) &&
        isArrayOf(view.epochsA, isObject) &&
        isArrayOf(view.epochsB, isObject) &&
        isMatrix(view.matrixA) &&
        isMatrix(view.matrixB)
      );
    }
    case 'runs':
      return isArrayOf(value.runs, isRunRow);
    case 'featureMap':
      return (
        isFeatureMapFile(value.map) &&
        isObject(value.marks) &&
        isOptional(value.marks.doctor, (d): d is object[] =>
          isArrayOf(d, (x): x is object => isObject(x) && isString(x.path) && isString(x.finding)),
        )
      );
    case 'exploreProblem':
      return isOneOf(value.view, ['compare', 'runs', 'map'] as const) && isString(value.message);
    default:
      return false;
  }
}
