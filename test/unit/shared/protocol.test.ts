import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sampleState, syntheticEpochs, syntheticEvaluation } from '../../support/webviewTestKit';
import { isPanelCommand, isPanelNotification } from '../../../src/shared/protocol/panel';
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
