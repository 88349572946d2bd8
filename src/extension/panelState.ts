// Builds the panel's `PanelState` from a live run's notifications or from a run folder on disk.
// Pure data work (plus reading the run folder): no `vscode` import, so it is unit-tested directly.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { findModelChoice, MODEL_CHOICES, type ModelChoice } from '../shared/modelChoices';
import type { PanelState, RetrainCommand, RunState } from '../shared/protocol/panel';
import { isRecipeChoice, type TrainingNotification } from '../shared/protocol/training';
import { RUN_FILES, type ModelFolderRecord, type RunConfig, type RunStatus } from '../shared/runFolder';
import { reconcileRunStatus } from '../shared/runState';
import { parseMetricsLines } from '../shared/metricsLines';

export { parseMetricsLines };
import { readModelRecord } from './runIndex';
import type { DatasetReport, EpochMetrics, Evaluation, RunSummary } from '../shared/types';

/** What the panel needs to know about a live run (a `TrainingRunHandle` fits). */
export interface LiveRunSnapshot {
  id: string;
  datasetRoot: string;
  runDir: string | undefined;
  state: RunState;
  history: readonly TrainingNotification[];
}

/** The files of a run folder, parsed; only `status` is required. */
export interface RunFolderContents {
  runDir: string;
  status: RunStatus;
  /** What the model folder records about its own weights (wins over status.json where they differ). */
  model?: ModelFolderRecord;
  config?: RunConfig;
  dataset?: DatasetReport;
  epochs: EpochMetrics[];
  evaluation?: Evaluation;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutRoot(report: DatasetReport): Omit<DatasetReport, 'root'> {
  const { root: _root, ...rest } = report;
  return rest;
}

function withoutRunDir(summary: RunSummary | Omit<RunSummary, 'runDir'>): Omit<RunSummary, 'runDir'> {
  const { runDir: _runDir, ...rest } = summary as RunSummary;
  return rest;
}

/** The panel key of a run: its folder name once known, else the handle id. */
export function panelRunId(runDir: string | undefined, fallbackId: string): string {
  return runDir ? path.basename(runDir) : fallbackId;
}

/** An empty state for a run that has not reported anything yet. */
export function initialPanelState(runId: string, runName: string, datasetRoot: string, imageBaseUri: string, state: RunState): PanelState {
  return { runId, runName, state, datasetName: path.basename(datasetRoot), imageBaseUri, epochs: [], moved: [] };
}

/** Folds one training notification into the state (returns a new state; `log` changes nothing). */
export function applyTrainingNotification(state: PanelState, notification: TrainingNotification): PanelState {
  switch (notification.type) {
    case 'started':
      return {
        ...state,
        runId: path.basename(notification.runDir),
        runName: path.basename(notification.runDir),
        state: state.state === 'starting' ? 'running' : state.state,
        datasetName: notification.dataset.name,
        dataset: withoutRoot(notification.dataset),
        backend: notification.backend,
        model: notification.model,
        options: notification.options,
      };
    case 'progress':
      return { ...state, progress: notification.progress, state: state.state === 'starting' ? 'running' : state.state };
    case 'epochEnd': {
      const epochs = state.epochs.filter((e) => e.epoch !== notification.metrics.epoch);
      epochs.push(notification.metrics);
      epochs.sort((a, b) => a.epoch - b.epoch);
      return { ...state, epochs };
    }
    case 'evaluation':
      return { ...state, evaluation: notification.evaluation };
    case 'finished':
      return { ...state, summary: withoutRunDir(notification.summary), state: notification.summary.cancelled ? 'cancelled' : 'finished' };
    case 'failed':
      return {
        ...state,
        state: notification.kind === 'cancelled' ? 'cancelled' : 'failed',
        message: notification.message,
        errorKind: notification.kind,
      };
    case 'log':
    case 'doctorFinished': // a doctor check never feeds a training panel
      return state;
  }
}

/** The full state of a live run from its handle's history; the handle's own state has the last word. */
export function panelStateFromHistory(run: LiveRunSnapshot, imageBaseUri: string, moved: PanelState['moved'] = []): PanelState {
  const runId = panelRunId(run.runDir, run.id);
  let state = initialPanelState(
    runId,
    run.runDir ? path.basename(run.runDir) : path.basename(run.datasetRoot),
    run.datasetRoot,
    imageBaseUri,
    run.state,
  );
  for (const notification of run.history) state = applyTrainingNotification(state, notification);
  return { ...state, state: run.state, moved: [...moved] };
}

function isRunStatus(value: unknown): value is RunStatus {
  return (
    isObject(value) &&
    typeof value.state === 'string' &&
    ['running', 'finished', 'failed', 'cancelled'].includes(value.state) &&
    typeof value.datasetRoot === 'string' &&
    typeof value.datasetName === 'string'
  );
}

function isEvaluation(value: unknown): value is Evaluation {
  return (
    isObject(value) &&
    Array.isArray(value.classes) &&
    Array.isArray(value.matrix) &&
    Array.isArray(value.predictions) &&
    Array.isArray(value.perClass) &&
    (value.recipe === undefined || isRecipeChoice(value.recipe))
  );
}

function isDatasetReport(value: unknown): value is DatasetReport {
  return isObject(value) && typeof value.name === 'string' && Array.isArray(value.classes) && Array.isArray(value.skipped);
}

function isRunConfig(value: unknown): value is RunConfig {
  return isObject(value) && typeof value.datasetRoot === 'string' && isObject(value.options);
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** Reads a run folder; undefined when it has no valid status.json (not a run folder). */
export async function readRunFolder(runDir: string): Promise<RunFolderContents | undefined> {
  const status = await readJson(path.join(runDir, RUN_FILES.status));
  if (!isRunStatus(status)) return undefined;
  const [config, dataset, evaluation, metricsText, model] = await Promise.all([
    readJson(path.join(runDir, RUN_FILES.config)),
    readJson(path.join(runDir, RUN_FILES.datasetReport)),
    readJson(path.join(runDir, RUN_FILES.evaluation)),
    fs.readFile(path.join(runDir, RUN_FILES.metrics), 'utf8').catch(() => ''),
    readModelRecord(runDir),
  ]);
  return {
    runDir,
    status,
    model,
    config: isRunConfig(config) ? config : undefined,
    dataset: isDatasetReport(dataset) ? dataset : undefined,
    evaluation: isEvaluation(evaluation) ? evaluation : undefined,
    epochs: parseMetricsLines(metricsText),
  };
}

/** The dataset root a run folder names (status.json, else config.json). */
export function datasetRootOf(contents: RunFolderContents): string {
  return contents.status.datasetRoot || contents.config?.datasetRoot || '';
}

/**
 * The state of a past (or other-window) run from its folder, status.json reconciled with the model
 * folder's record. A `running` status whose process is gone reads as failed: the run was
 * interrupted (e.g. the window closed or the process was killed) and will not finish.
 */
export function panelStateFromRunFolder(
  contents: RunFolderContents,
  imageBaseUri: string,
  isProcessAlive: (pid: number, startedAt?: string) => boolean,
  moved: PanelState['moved'] = [],
): PanelState {
  const { config, dataset, evaluation, epochs } = contents;
  const onDisk = contents.status;
  const alive = onDisk.state === 'running' && onDisk.pid !== undefined && isProcessAlive(onDisk.pid, onDisk.startedAt);
  const reading = reconcileRunStatus(onDisk, contents.model ?? { hasModel: onDisk.hasCheckpoint }, alive);
  const status = reading.status;
  const name = path.basename(contents.runDir);
  let state: RunState = status.state;
  let message = status.message;
  if (reading.state === 'interrupted') {
    state = 'failed';
    message =
      message ??
      (status.hasCheckpoint
        ? `The training process stopped before the run finished (interrupted). The checkpoint of epoch ${status.bestEpoch ?? '?'}${status.valAccuracy !== undefined ? ` (validation accuracy ${(100 * status.valAccuracy).toFixed(1)}%)` : ''} is kept.`
        : 'The training process stopped before the run finished (interrupted), before it saved a model.');
  }
  const summary = status.summary ? withoutRunDir(status.summary) : undefined;
  const result: PanelState = {
    runId: name,
    runName: name,
    state,
    datasetName: dataset?.name ?? status.datasetName,
    imageBaseUri,
    epochs,
    moved: [...moved],
  };
  if (message) result.message = message;
  if (dataset) result.dataset = withoutRoot(dataset);
  if (config) {
    result.backend = config.backend;
    result.model = config.model;
    result.options = config.options;
  }
  if (evaluation) result.evaluation = evaluation;
  if (summary) result.summary = summary;
  return result;
}

/** The state as it is posted: with the base models the panel offers and the run's own model preselected. */
export function withModelChoices(state: PanelState, choices: readonly ModelChoice[] = MODEL_CHOICES): PanelState {
  // The model id only (never `options.model`, which may be the folder of a user's own model).
  const currentModel = state.model?.id;
  return { ...state, models: choices.map((c) => ({ id: c.id, name: c.name })), ...(currentModel ? { currentModel } : {}) };
}

/** What a retrain command may start: the setting's model, or one the panel listed; anything else is refused. */
export type RetrainRequest = { ok: true; model?: string } | { ok: false; reason: string };

/** Checks the model a (well-formed) retrain command names against the list the host offered. */
export function retrainRequest(command: RetrainCommand, choices: readonly ModelChoice[] = MODEL_CHOICES): RetrainRequest {
  if (command.model === undefined) return { ok: true };
  if (!findModelChoice(command.model, choices))
    return { ok: false, reason: `"${command.model.slice(0, 80)}" is not a base model the panel offers` };
  return { ok: true, model: command.model };
}
