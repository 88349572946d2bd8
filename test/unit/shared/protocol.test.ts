import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleState, syntheticEpochs, syntheticEvaluation } from '../../support/webviewTestKit';
import {
  isPanelCommand,
  isPanelHeatmap,
  isPanelNotification,
  MAX_EXPLAIN_PATHS,
  MAX_PANEL_HEATMAP_SIDE,
} from '../../../src/shared/protocol/panel';
import type { PanelNotification } from '../../../src/shared/protocol/panel';
import { isTrainingCommand, isTrainingNotification } from '../../../src/shared/protocol/training';
import type { StartCommand, TrainingNotification } from '../../../src/shared/protocol/training';
import { DEFAULT_TRAIN_OPTIONS, ERROR_KINDS } from '../../../src/shared/types';

test('panel commands from the webview are accepted only with the right shape', () => {
  assert.equal(isPanelCommand({ type: 'ready' }), true);
  assert.equal(isPanelCommand({ type: 'openImage', path: 'a/b.jpg' }), true);
  assert.equal(isPanelCommand({ type: 'openImage' }), false);
  assert.equal(isPanelCommand({ type: 'openImage', path: 42 }), false);
  assert.equal(isPanelCommand({ type: 'moveImage', path: 'a/b.jpg' }), false);
  assert.equal(isPanelCommand({ type: 'rm -rf' }), false);
  assert.equal(isPanelCommand(null), false);
  assert.equal(isPanelCommand([]), false);
});

test('a retrain command may name a base model, as a short non-empty string only', () => {
  assert.equal(isPanelCommand({ type: 'retrain' }), true);
  assert.equal(isPanelCommand({ type: 'retrain', model: 'mobilenet_v1_0.25' }), true);
  assert.equal(isPanelCommand({ type: 'retrain', model: '' }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: 3 }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: null }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: ['mobilenet_v2_0.35'] }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: 'x'.repeat(201) }), false);
});

/** `value` with `key` replaced (or removed, with `undefined`) at the dotted path. */
function mutate<T extends object>(value: T, dotted: string, replacement: unknown): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  const keys = dotted.split('.');
  let at = copy;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  const last = keys[keys.length - 1];
  if (replacement === undefined) delete at[last];
  else at[last] = replacement;
  return copy as T;
}

const start: StartCommand = {
  type: 'start',
  datasetRoot: '/data/leaves',
  runsDir: '/home/user/project/.image-trainer/runs',
  cacheDir: '/home/user/project/.image-trainer/cache',
  options: DEFAULT_TRAIN_OPTIONS,
  modelCacheDir: '/storage/models',
};

test('a start command is accepted with its folders and every training option, and refused when any is missing or mistyped', () => {
  assert.equal(isTrainingCommand({ type: 'cancel' }), true);
  assert.equal(isTrainingCommand(start), true);
  assert.equal(isTrainingCommand(mutate(start, 'modelCacheDir', undefined)), true);
  for (const [field, value] of [
    ['datasetRoot', undefined],
    ['runsDir', 42],
    ['cacheDir', null],
    ['options', {}],
    ['options', undefined],
    ['options.epochs', '20'],
    ['options.learningRate', Number.NaN],
    ['options.classWeights', 'yes'],
    ['options.model', undefined],
    ['options.backend', 'tpu'],
    ['modelCacheDir', 7],
    ['nativeBackendsDir', ['/x']],
  ] as const) {
    assert.equal(isTrainingCommand(mutate(start, field, value)), false, `${field} = ${String(value)}`);
  }
  assert.equal(isTrainingCommand({ type: 'start', datasetRoot: '/d' }), false);
  assert.equal(isTrainingCommand({ type: 'stop' }), false);
  assert.equal(isTrainingCommand(null), false);
});

const evaluation = syntheticEvaluation(['healthy', 'scab'], 4);
const panel = sampleState();
const wellFormed: TrainingNotification[] = [
  {
    type: 'started',
    runDir: '/home/user/project/.image-trainer/runs/leaves-20250101-120000',
    backend: panel.backend!,
    model: panel.model!,
    dataset: { root: '/data/leaves', ...panel.dataset! },
    options: DEFAULT_TRAIN_OPTIONS,
  },
  { type: 'progress', progress: { stage: 'features', done: 3, total: 40, imagesPerSec: 12.5, etaSec: 3 } },
  { type: 'epochEnd', metrics: syntheticEpochs(1)[0] },
  { type: 'evaluation', evaluation },
  {
    type: 'finished',
    summary: {
      runDir: '/home/user/project/.image-trainer/runs/leaves-20250101-120000',
      valAccuracy: 0.875,
      bestEpoch: 3,
      epochsRun: 5,
      cache: { hits: 0, misses: 8 },
      wallMs: 4200,
      featuresPerSec: 20,
      cancelled: false,
    },
  },
  { type: 'failed', message: 'Found 1 usable class (healthy) in /data/leaves', kind: 'dataset', runDir: '/home/user/runs/leaves-1' },
  { type: 'failed', message: 'The training process was killed (SIGKILL)', kind: 'internal' },
  { type: 'log', level: 'warn', message: '2 files skipped' },
];

test('every well-formed training notification is accepted, and every failure kind with it', () => {
  for (const n of wellFormed) assert.equal(isTrainingNotification(n), true, n.type);
  for (const kind of ERROR_KINDS) assert.equal(isTrainingNotification({ type: 'failed', message: 'm', kind }), true, kind);
});

test('a diverged epoch still arrives: NaN and Infinity come through JSON as null', () => {
  const diverged = JSON.parse(JSON.stringify({ type: 'epochEnd', metrics: { ...syntheticEpochs(1)[0], loss: Number.NaN } })) as unknown;
  assert.equal(isTrainingNotification(diverged), true);
});

test('a training notification whose payload is missing or mistyped is refused', () => {
  const [started, progress, epochEnd, evaluated, finished, failed, , log] = wellFormed;
  const malformed: [TrainingNotification, string, unknown][] = [
    [started, 'runDir', undefined],
    [started, 'backend', 'wasm'],
    [started, 'backend.summary', undefined],
    [started, 'model.inputSize', '224'],
    [started, 'dataset', undefined],
    [started, 'dataset.classes', 'healthy,scab'],
    [started, 'options', {}],
    [progress, 'progress', undefined],
    [progress, 'progress.stage', 'training'],
    [progress, 'progress.done', '3'],
    [epochEnd, 'metrics', {}],
    [epochEnd, 'metrics.epoch', undefined],
    [epochEnd, 'metrics.stage', 'warmup'],
    [epochEnd, 'metrics.loss', '0.5'],
    [evaluated, 'evaluation', undefined],
    [evaluated, 'evaluation.matrix', [[1, 'x']]],
    [evaluated, 'evaluation.predictions', undefined],
    [
      evaluated,
      'evaluation.recipe',
      { requested: 'auto', chosen: 'sideways', views: 8, images: 10, folds: 4, reason: 'x', candidates: [] },
    ],
    [
      evaluated,
      'evaluation.recipe',
      { requested: 'auto', chosen: 'plain', views: 1, images: 10, folds: 4, reason: 'x', candidates: 'plain' },
    ],
    [finished, 'summary', undefined],
    [finished, 'summary.cancelled', 'no'],
    [finished, 'summary.runDir', undefined],
    [failed, 'message', undefined],
    [failed, 'kind', undefined],
    [failed, 'kind', 'disk-full'],
    [failed, 'runDir', 3],
    [log, 'level', 'debug'],
    [log, 'message', undefined],
  ];
  for (const [n, field, value] of malformed) {
    assert.equal(isTrainingNotification(mutate(n, field, value)), false, `${n.type}: ${field} = ${JSON.stringify(value)}`);
  }
  assert.equal(isTrainingNotification({ type: 'nope' }), false);
  assert.equal(isTrainingNotification([]), false);
  assert.equal(isTrainingNotification(null), false);
});

const panelNotifications: PanelNotification[] = [
  { type: 'state', state: panel },
  { type: 'state', state: sampleState({ state: 'failed', message: 'Found 1 usable class', errorKind: 'dataset', evaluation }) },
  { type: 'progress', progress: { stage: 'head', done: 2, total: 8, epoch: 1, epochs: 20 } },
  { type: 'epoch', metrics: syntheticEpochs(2)[1] },
  { type: 'imageMoved', path: 'scab/a.jpg', toClass: 'healthy', newPath: 'healthy/a.jpg' },
  { type: 'imageMoved', path: 'scab/a.jpg', toClass: 'healthy' },
];

test('the panel accepts well-formed notifications from the host and refuses each malformed shape', () => {
  for (const n of panelNotifications) assert.equal(isPanelNotification(n), true, n.type);
  const [state, , progress, epoch, moved] = panelNotifications;
  const malformed: [PanelNotification, string, unknown][] = [
    [state, 'state', undefined],
    [state, 'state.runId', undefined],
    [state, 'state.state', 'exploded'],
    [state, 'state.datasetName', 3],
    [state, 'state.imageBaseUri', undefined],
    [state, 'state.epochs', undefined],
    [state, 'state.moved', 'none'],
    [state, 'state.message', 42],
    [state, 'state.errorKind', 'oops'],
    [state, 'state.evaluation', 'none'],
    [state, 'state.models', [{ id: 'x' }, 'y']],
    [progress, 'progress', undefined],
    [progress, 'progress.total', undefined],
    [progress, 'progress.stage', 'warmup'],
    [epoch, 'metrics', undefined],
    [epoch, 'metrics.epoch', '2'],
    [moved, 'path', undefined],
    [moved, 'toClass', 5],
    [moved, 'newPath', 5],
  ];
  for (const [n, field, value] of malformed) {
    assert.equal(isPanelNotification(mutate(n, field, value)), false, `${n.type}: ${field} = ${JSON.stringify(value)}`);
  }
  assert.equal(isPanelNotification({ type: 'reload' }), false);
  assert.equal(isPanelNotification('state'), false);
});

test('an explainImages command names 1 to 60 non-empty short paths, and nothing else passes', () => {
  const paths = (n: number) => Array.from({ length: n }, (_, i) => `scab/${i}.jpg`);
  assert.equal(isPanelCommand({ type: 'explainImages', paths: paths(1) }), true);
  assert.equal(isPanelCommand({ type: 'explainImages', paths: paths(MAX_EXPLAIN_PATHS) }), true);
  for (const bad of [
    { type: 'explainImages' },
    { type: 'explainImages', paths: [] },
    { type: 'explainImages', paths: paths(MAX_EXPLAIN_PATHS + 1) },
    { type: 'explainImages', paths: 'scab/1.jpg' },
    { type: 'explainImages', paths: ['scab/1.jpg', 7] },
    { type: 'explainImages', paths: [''] },
    { type: 'explainImages', paths: ['x'.repeat(4097)] },
  ])
    assert.equal(isPanelCommand(bad), false, JSON.stringify(bad).slice(0, 120));
});

test('openImage may ask for the heatmap overlay with a boolean only', () => {
  assert.equal(isPanelCommand({ type: 'openImage', path: 'a/b.jpg', heatmap: true }), true);
  assert.equal(isPanelCommand({ type: 'openImage', path: 'a/b.jpg', heatmap: false }), true);
  assert.equal(isPanelCommand({ type: 'openImage', path: 'a/b.jpg', heatmap: 'yes' }), false);
  assert.equal(isPanelCommand({ type: 'openImage', path: 'a/b.jpg', heatmap: 1 }), false);
});

test('a heatmaps notification carries small heatmaps whose values fill them, in [0, 1]', () => {
  const heatmap = { path: 'scab/a.jpg', width: 3, height: 2, values: [0, 0.5, 1, 0.25, 0.75, 0] };
  const ok = { type: 'heatmaps', heatmaps: [heatmap], failed: [{ path: 'scab/b.jpg', reason: 'not an image' }] };
  assert.equal(isPanelNotification(ok), true);
  assert.equal(isPanelHeatmap(heatmap), true);
  const side = MAX_PANEL_HEATMAP_SIDE;
  for (const bad of [
    { ...heatmap, values: heatmap.values.slice(1) },
    { ...heatmap, values: [...heatmap.values.slice(1), 1.5] },
    { ...heatmap, values: [...heatmap.values.slice(1), -0.1] },
    { ...heatmap, values: [...heatmap.values.slice(1), null] },
    { ...heatmap, width: 2.5 },
    { ...heatmap, width: 0, values: [] },
    { path: 'x', width: side + 1, height: 1, values: new Array<number>(side + 1).fill(0) },
    { ...heatmap, path: 3 },
  ]) {
    assert.equal(isPanelHeatmap(bad), false, JSON.stringify(bad).slice(0, 120));
    assert.equal(isPanelNotification({ ...ok, heatmaps: [bad] }), false);
  }
  assert.equal(isPanelNotification({ ...ok, failed: [{ path: 'a' }] }), false);
  assert.equal(isPanelNotification({ type: 'heatmaps', heatmaps: [] }), false);
});

test('exploring commands from the webview are accepted only with the right shape; run names cannot be paths', () => {
  for (const type of ['compare/pick', 'runs/show', 'map/show']) assert.equal(isPanelCommand({ type }), true);
  assert.equal(isPanelCommand({ type: 'compare/runs', a: 'leaves-20260101-100000', b: 'leaves-20260102-100000' }), true);
  assert.equal(isPanelCommand({ type: 'compare/runs', a: 'leaves-1', b: 'leaves-1' }), false, 'a run with itself');
  assert.equal(isPanelCommand({ type: 'compare/runs', a: '../other/run', b: 'leaves-1' }), false);
  assert.equal(isPanelCommand({ type: 'compare/runs', a: '..', b: 'leaves-1' }), false);
  assert.equal(isPanelCommand({ type: 'compare/runs', a: '/abs/run', b: 'leaves-1' }), false);
  assert.equal(isPanelCommand({ type: 'compare/runs', a: 'leaves-1' }), false);
  assert.equal(isPanelCommand({ type: 'compare/runs', a: 'x'.repeat(256), b: 'leaves-1' }), false);
  assert.equal(isPanelCommand({ type: 'map/move', paths: ['a/1.jpg', 'a/2.jpg'], toClass: 'b' }), true);
  assert.equal(isPanelCommand({ type: 'map/move', paths: [], toClass: 'b' }), false, 'nothing to move');
  assert.equal(isPanelCommand({ type: 'map/move', paths: ['a/1.jpg', 'a/1.jpg'], toClass: 'b' }), false, 'a path twice');
  assert.equal(isPanelCommand({ type: 'map/move', paths: ['a/1.jpg'], toClass: '' }), false);
  assert.equal(isPanelCommand({ type: 'map/move', paths: [7], toClass: 'b' }), false);
  assert.equal(isPanelCommand({ type: 'map/move', paths: Array.from({ length: 5001 }, (_, i) => `a/${i}.jpg`), toClass: 'b' }), false);
});

test('exploring notifications carry what their view reads', () => {
  assert.equal(isPanelNotification({ type: 'runs', runs: [] }), true);
  assert.equal(
    isPanelNotification({ type: 'runs', runs: [{ name: 'r', startedAt: 't', state: 'finished', changes: [], current: 'yes' }] }),
    false,
  );
  assert.equal(isPanelNotification({ type: 'exploreProblem', view: 'map', message: 'No map.' }), true);
  assert.equal(isPanelNotification({ type: 'exploreProblem', view: 'elsewhere', message: 'x' }), false);
  const map = {
    format: 'image-trainer/feature-map@1',
    method: { pca: 2, nNeighbors: 2, minDist: 0.1, nEpochs: 10, seed: 1 },
    classes: ['a', 'b'],
    paths: ['a/1.jpg', 'b/2.jpg'],
    labels: [0, 1],
    sides: [0, 1],
    x: [0, 1],
    y: [1, 0],
    ms: { pca: 0, umap: 0 },
    cached: true,
  };
  assert.equal(isPanelNotification({ type: 'featureMap', map, marks: {} }), true);
  assert.equal(isPanelNotification({ type: 'featureMap', map: { ...map, labels: [0, 2] }, marks: {} }), false, 'a class out of range');
  assert.equal(isPanelNotification({ type: 'featureMap', map: { ...map, x: [0] }, marks: {} }), false, 'columns of unequal length');
  assert.equal(isPanelNotification({ type: 'featureMap', map, marks: { doctor: [{ path: 3 }] } }), false);
});
