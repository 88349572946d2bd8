import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  applyTrainingNotification,
  initialPanelState,
  panelStateFromHistory,
  panelStateFromRunFolder,
  parseMetricsLines,
  readRunFolder,
  retrainRequest,
  withModelChoices,
} from '../../../src/extension/panelState';
import { MODEL_CHOICES } from '../../../src/shared/modelChoices';
import type { TrainingNotification } from '../../../src/shared/protocol/training';
import { RUN_FILES, type RunConfig, type RunStatus } from '../../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS, type DatasetReport, type EpochMetrics, type Evaluation } from '../../../src/shared/types';

const datasetRoot = path.join(os.tmpdir(), 'datasets', 'leaves');
const runDir = path.join(os.tmpdir(), 'runs', 'leaves-20250101-120000');
const dataset: DatasetReport = {
  root: datasetRoot,
  name: 'leaves',
  layout: 'folders',
  classes: [
    { name: 'healthy', train: 8, val: 2, test: 0 },
    { name: 'scab', train: 8, val: 2, test: 0 },
  ],
  emptyClasses: [],
  skipped: [{ path: 'scab/x.txt', reason: 'not-image', detail: 'text' }],
  duplicates: [],
  ignored: 0,
  warnings: [],
};
const backend = { backend: 'wasm' as const, summary: 'WebAssembly: no native module', attempts: [] };
const model = { id: 'mobilenet_v2_0.35', name: 'MobileNetV2 0.35', inputSize: 224, featureSize: 1280 };
const epoch = (e: number): EpochMetrics => ({
  stage: 'head',
  epoch: e,
  loss: 1 / e,
  acc: 0.5,
  valLoss: 1 / e,
  valAcc: 0.5,
  lr: 1e-3,
  durationMs: 10,
});
const evaluation: Evaluation = {
  classes: ['healthy', 'scab'],
  matrix: [
    [2, 0],
    [1, 1],
  ],
  accuracy: 0.75,
  perClass: [],
  macro: { precision: 0, recall: 0, f1: 0 },
  weighted: { precision: 0, recall: 0, f1: 0 },
  mostConfused: [{ actual: 1, predicted: 0, count: 1 }],
  predictions: [{ path: 'scab/a.jpg', actual: 1, predicted: 0, confidence: 0.8, probs: [0.8, 0.2] }],
  bestEpoch: 2,
};
const history: TrainingNotification[] = [
  { type: 'started', runDir, backend, model, dataset, options: DEFAULT_TRAIN_OPTIONS },
  { type: 'log', level: 'info', message: 'hello' },
  { type: 'epochEnd', metrics: epoch(1) },
  { type: 'epochEnd', metrics: epoch(2) },
  { type: 'progress', progress: { stage: 'evaluate', done: 3, total: 4 } },
];

test('a live run is rebuilt from its history without any absolute path', () => {
  const state = panelStateFromHistory({ id: 'run-1', datasetRoot, runDir, state: 'running', history }, 'vscode-resource://leaves');
  assert.equal(state.runId, 'leaves-20250101-120000');
  assert.equal(state.runName, 'leaves-20250101-120000');
  assert.equal(state.state, 'running');
  assert.equal(state.datasetName, 'leaves');
  assert.deepEqual(
    state.epochs.map((e) => e.epoch),
    [1, 2],
  );
  assert.deepEqual(state.progress, { stage: 'evaluate', done: 3, total: 4 });
  assert.equal(state.backend?.backend, 'wasm');
  assert.equal(state.dataset?.skipped.length, 1);
  assert.equal(JSON.stringify(state).includes(os.tmpdir()), false, 'no absolute path reaches the webview');
});

test('before the child reports, the run is named after its dataset and keyed by its handle id', () => {
  const state = panelStateFromHistory({ id: 'run-7', datasetRoot, runDir: undefined, state: 'starting', history: [] }, '');
  assert.equal(state.runId, 'run-7');
  assert.equal(state.runName, 'leaves');
  assert.deepEqual(state.epochs, []);
});

test('notifications fold into the state: evaluation, finish (summary without runDir), failure, cancel', () => {
  let state = initialPanelState('r', 'r', datasetRoot, '', 'starting');
  state = applyTrainingNotification(state, { type: 'progress', progress: { stage: 'features', done: 1, total: 9 } });
  assert.equal(state.state, 'running');
  state = applyTrainingNotification(state, { type: 'epochEnd', metrics: epoch(2) });
  state = applyTrainingNotification(state, { type: 'epochEnd', metrics: epoch(1) });
  state = applyTrainingNotification(state, { type: 'epochEnd', metrics: { ...epoch(2), loss: 9 } });
  assert.deepEqual(
    state.epochs.map((e) => [e.epoch, e.loss]),
    [
      [1, 1],
      [2, 9],
    ],
    'sorted, a repeated epoch replaced',
  );
  state = applyTrainingNotification(state, { type: 'evaluation', evaluation });
  assert.equal(state.evaluation?.bestEpoch, 2);
  const summary = {
    runDir,
    valAccuracy: 0.75,
    bestEpoch: 2,
    epochsRun: 2,
    cache: { hits: 1, misses: 2 },
    wallMs: 5,
    featuresPerSec: 3,
    cancelled: false,
  };
  const finished = applyTrainingNotification(state, { type: 'finished', summary });
  assert.equal(finished.state, 'finished');
  assert.equal('runDir' in (finished.summary ?? {}), false);
  assert.equal(applyTrainingNotification(state, { type: 'finished', summary: { ...summary, cancelled: true } }).state, 'cancelled');
  const failed = applyTrainingNotification(state, { type: 'failed', message: 'Out of memory', kind: 'internal' });
  assert.equal(failed.state, 'failed');
  assert.equal(failed.message, 'Out of memory');
  assert.equal(failed.errorKind, 'internal');
});

test('a failed run keeps its kind for the panel, and a cancel that surfaced as an error reads as cancelled', () => {
  const state = initialPanelState('run-1', 'run-1', datasetRoot, '', 'running');
  const dataset = applyTrainingNotification(state, { type: 'failed', message: 'Found 1 usable class', kind: 'dataset', runDir });
  assert.equal(dataset.state, 'failed');
  assert.equal(dataset.errorKind, 'dataset');
  const cancelled = applyTrainingNotification(state, { type: 'failed', message: 'Training was cancelled.', kind: 'cancelled' });
  assert.equal(cancelled.state, 'cancelled');
});

test('the handle has the last word on the run state', () => {
  const state = panelStateFromHistory({ id: 'run-1', datasetRoot, runDir, state: 'cancelled', history }, '');
  assert.equal(state.state, 'cancelled');
});

test('metrics lines survive a half-written last line and blank lines', () => {
  const text = `${JSON.stringify(epoch(1))}\n\n${JSON.stringify(epoch(2))}\n{"stage":"head","epo`;
  assert.deepEqual(
    parseMetricsLines(text).map((e) => e.epoch),
    [1, 2],
  );
  assert.deepEqual(parseMetricsLines(''), []);
});

let tmp: string;
before(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'panel-state-'));
});
after(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function writeRun(
  name: string,
  status: RunStatus,
  files: { config?: RunConfig; dataset?: DatasetReport; metrics?: string; evaluation?: unknown } = {},
): Promise<string> {
  const dir = path.join(tmp, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, RUN_FILES.status), JSON.stringify(status));
  if (files.config) await fs.writeFile(path.join(dir, RUN_FILES.config), JSON.stringify(files.config));
  if (files.dataset) await fs.writeFile(path.join(dir, RUN_FILES.datasetReport), JSON.stringify(files.dataset));
  if (files.metrics !== undefined) await fs.writeFile(path.join(dir, RUN_FILES.metrics), files.metrics);
  if (files.evaluation !== undefined) await fs.writeFile(path.join(dir, RUN_FILES.evaluation), JSON.stringify(files.evaluation));
  return dir;
}

const baseStatus: RunStatus = {
  state: 'finished',
  datasetRoot,
  datasetName: 'leaves',
  startedAt: '2025-01-01T12:00:00Z',
  updatedAt: '2025-01-01T12:01:00Z',
  hasCheckpoint: true,
};

test('a finished run folder gives the full state: dataset, backend, model, curves, evaluation, summary', async () => {
  const config: RunConfig = {
    datasetRoot,
    options: DEFAULT_TRAIN_OPTIONS,
    backend,
    model,
    versions: {},
    createdAt: '2025-01-01T12:00:00Z',
  };
  const summary = {
    runDir,
    valAccuracy: 0.75,
    bestEpoch: 2,
    epochsRun: 2,
    cache: { hits: 0, misses: 4 },
    wallMs: 60000,
    featuresPerSec: 10,
    cancelled: false,
  };
  const dir = await writeRun(
    'leaves-20250101-120000',
    { ...baseStatus, summary },
    { config, dataset, metrics: `${JSON.stringify(epoch(1))}\n${JSON.stringify(epoch(2))}\n`, evaluation },
  );
  const contents = await readRunFolder(dir);
  assert.ok(contents);
  const state = panelStateFromRunFolder(contents, 'vscode-resource://leaves', () => false);
  assert.equal(state.runId, 'leaves-20250101-120000');
  assert.equal(state.state, 'finished');
  assert.equal(state.datasetName, 'leaves');
  assert.equal(state.imageBaseUri, 'vscode-resource://leaves');
  assert.deepEqual(
    state.epochs.map((e) => e.epoch),
    [1, 2],
  );
  assert.equal(state.evaluation?.predictions[0]?.path, 'scab/a.jpg');
  assert.equal(state.model?.featureSize, 1280);
  assert.equal(state.options?.epochs, 20);
  assert.equal(state.summary?.bestEpoch, 2);
  assert.equal(
    JSON.stringify(state).includes(tmp) || JSON.stringify(state).includes(datasetRoot),
    false,
    'no absolute path reaches the webview',
  );
});

test('a failed run folder with only a status still opens and says why', async () => {
  const dir = await writeRun(
    'leaves-failed',
    { ...baseStatus, state: 'failed', message: 'No images in class scab', hasCheckpoint: false },
    { evaluation: { not: 'an evaluation' }, metrics: 'garbage' },
  );
  const contents = await readRunFolder(dir);
  assert.ok(contents);
  const state = panelStateFromRunFolder(contents, '', () => true);
  assert.equal(state.state, 'failed');
  assert.equal(state.message, 'No images in class scab');
  assert.equal(state.evaluation, undefined, 'a malformed evaluation.json is ignored');
  assert.deepEqual(state.epochs, []);
});

test('a run folder that says running but whose process is gone reads as interrupted', async () => {
  const dir = await writeRun(
    'leaves-interrupted',
    { ...baseStatus, state: 'running', pid: 999_999 },
    { metrics: `${JSON.stringify(epoch(1))}\n` },
  );
  const contents = await readRunFolder(dir);
  assert.ok(contents);
  const dead = panelStateFromRunFolder(contents, '', () => false);
  assert.equal(dead.state, 'failed');
  assert.match(dead.message ?? '', /interrupted/);
  assert.equal(panelStateFromRunFolder(contents, '', () => true).state, 'running');
});

test('a folder without a valid status.json is not a run folder', async () => {
  const dir = path.join(tmp, 'not-a-run');
  await fs.mkdir(dir, { recursive: true });
  assert.equal(await readRunFolder(dir), undefined);
  await fs.writeFile(path.join(dir, RUN_FILES.status), '{"state":"exploded"}');
  assert.equal(await readRunFolder(dir), undefined);
});

test("the posted state lists every base model and preselects the run's own, never a folder path", () => {
  const live = panelStateFromHistory({ id: 'h1', datasetRoot, runDir, state: 'running', history }, 'vscode-webview://x/leaves');
  const posted = withModelChoices(live);
  assert.deepEqual(
    posted.models?.map((m) => m.id),
    MODEL_CHOICES.map((m) => m.id),
  );
  assert.equal(posted.models?.length, 8);
  assert.equal(posted.currentModel, 'mobilenet_v2_0.35');
  // A user's own model: options.model is its folder; only the id derived from it reaches currentModel.
  const custom = withModelChoices({
    ...live,
    options: { ...DEFAULT_TRAIN_OPTIONS, model: path.join(os.tmpdir(), 'my-model') },
    model: { ...model, id: 'custom_mine_0123456789ab', name: 'Mine' },
  });
  assert.equal(custom.currentModel, 'custom_mine_0123456789ab');
  const before = withModelChoices(initialPanelState('h2', 'leaves', datasetRoot, '', 'starting'));
  assert.equal(before.currentModel, undefined);
  assert.equal('currentModel' in before, false);
});

test('a retrain request keeps a listed model or the setting, and refuses a forged model id', () => {
  assert.deepEqual(retrainRequest({ type: 'retrain' }), { ok: true });
  assert.deepEqual(retrainRequest({ type: 'retrain', model: 'mobilenet_v1_0.25' }), { ok: true, model: 'mobilenet_v1_0.25' });
  for (const forged of [
    '../../etc/passwd',
    '/tmp/evil-model',
    'mobilenet_v2_9.99',
    'MOBILENET_V2_0.35',
    'mobilenet_v2_0.35 ',
    'custom_mine_0123456789ab',
  ]) {
    const result = retrainRequest({ type: 'retrain', model: forged });
    assert.equal(result.ok, false, forged);
    assert.ok(!result.ok && result.reason.includes('not a base model the panel offers'), forged);
  }
  // Only what the host offered counts.
  assert.equal(retrainRequest({ type: 'retrain', model: 'mobilenet_v1_0.25' }, [{ id: 'mobilenet_v2_0.35', name: 'x' }]).ok, false);
});
