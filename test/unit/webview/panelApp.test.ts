import {
  dom,
  deliver,
  fakeVsCodeApi,
  freshRoot,
  sampleState,
  settle,
  syntheticEpochs,
  syntheticEvaluation,
} from '../../support/webviewTestKit';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PanelApp, type PersistedPanel } from '../../../src/webview/panelApp';

const document = dom.window.document;
const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const el = document.querySelector<T>(selector);
  assert.ok(el, `${selector} exists`);
  return el;
};

function startApp(saved?: unknown): { app: PanelApp; api: ReturnType<typeof fakeVsCodeApi> } {
  const api = fakeVsCodeApi(saved);
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  return { app, api };
}

test('the panel says ready once on load and renders nothing of a run before a state arrives', () => {
  const { app, api } = startApp();
  assert.deepEqual(api.posted, [{ type: 'ready' }]);
  assert.equal($('#waiting').hidden, false);
  assert.equal($('#run-state').dataset.state, undefined);
  app.dispose();
});

test('a state fills the header hooks: run state, stage, epoch of N, progress and Cancel', async () => {
  const { app, api } = startApp();
  deliver({ type: 'state', state: sampleState() });
  await settle();
  assert.equal($('#run-state').dataset.state, 'running');
  assert.equal($('#run-state').textContent, 'Running');
  assert.equal($('#stage').textContent, 'Training the classifier');
  assert.equal($('#epoch').textContent, 'Epoch 3 of 20');
  assert.equal($('#progress').getAttribute('aria-valuenow'), '75');
  assert.match($('#progress-text').textContent ?? '', /3 of 4 batches · 413 images\/s · ETA 0:42/);
  assert.match($('#dataset').textContent ?? '', /leaves · 4 classes · 96 train \/ 24 validation images/);
  assert.match($('#backend').textContent ?? '', /wasm — WebAssembly \(4 threads\): @tensorflow\/tfjs-node-gpu is not installed/);
  assert.equal($('#model').textContent, 'MobileNetV2 0.35 (224×224 input, 1,280 features)');
  assert.equal(document.querySelectorAll('#classes li').length, 4);
  assert.equal($('#cancel').hidden, false);
  $('#cancel').click();
  assert.deepEqual(api.posted.at(-1), { type: 'cancel' });
  assert.equal($('#cancel').hasAttribute('disabled'), true, 'a second click cannot cancel twice');
  $('#cancel').click();
  assert.equal(api.posted.filter((m) => (m as { type: string }).type === 'cancel').length, 1);
  app.dispose();
});

test('skipped files are listed with their reasons under a one-line summary', () => {
  const { app } = startApp();
  deliver({ type: 'state', state: sampleState() });
  const skipped = $('#skipped');
  assert.equal(skipped.getAttribute('heading'), '3 files skipped: 1 not an image, 1 empty file, 1 over the pixel limit');
  const items = [...skipped.querySelectorAll('li')].map((li) => li.textContent);
  assert.deepEqual(items, [
    'scab/notes.txt — not an image: text file',
    'healthy/empty.jpg — empty file: 0 bytes',
    'scab/huge.png — over the pixel limit: 20000×20000 pixels',
  ]);
  app.dispose();
});

test('a dataset with thousands of skipped files shows at most 200 of each reason and counts the rest in the summary', () => {
  const { app } = startApp();
  const base = sampleState();
  const external = Array.from({ length: 250 }, (_, i) => ({
    path: `daisy/sys/icon${String(i).padStart(3, '0')}.png`,
    reason: 'external-symlink' as const,
    detail: 'symlink outside the dataset folder: not followed',
  }));
  deliver({
    type: 'state',
    state: {
      ...base,
      dataset: { ...base.dataset!, skipped: [...base.dataset!.skipped, ...external], skippedUnlisted: { 'external-symlink': 4753 } },
    },
  });
  const skipped = $('#skipped');
  assert.equal(
    skipped.getAttribute('heading'),
    '5,006 files skipped: 1 not an image, 1 empty file, 1 over the pixel limit, 5,003 outside the dataset (symlinks)',
  );
  assert.equal(skipped.getAttribute('data-count'), '5006');
  const items = [...skipped.querySelectorAll('li')].map((li) => li.textContent);
  assert.equal(items.filter((t) => t?.startsWith('daisy/sys/')).length, 200);
  assert.equal(items.at(-1), '… and 4,803 more outside the dataset (symlinks), not listed');
  app.dispose();
});

test('progress and epoch messages update the panel in place without rebuilding the rest', async () => {
  const evaluation = syntheticEvaluation(['a', 'b', 'c'], 10);
  const { app } = startApp();
  deliver({ type: 'state', state: sampleState({ evaluation }) });
  await settle();
  const matrixBefore = $('#matrix');
  deliver({ type: 'progress', progress: { stage: 'fine-tune', done: 2, total: 8, epoch: 4, epochs: 20, imagesPerSec: 50, etaSec: 3725 } });
  assert.equal($('#stage').textContent, 'Fine-tuning');
  assert.equal($('#epoch').textContent, 'Epoch 4 of 20');
  assert.equal($('#progress').getAttribute('aria-valuenow'), '25');
  assert.match($('#progress-text').textContent ?? '', /ETA 1:02:05/);
  deliver({ type: 'epoch', metrics: syntheticEpochs(4)[3] });
  await settle();
  assert.equal($('#curves').dataset.epochs, '4');
  assert.equal(app.views.curves.plotted().loss[0].length, 4);
  assert.equal($('#matrix'), matrixBefore, 'the matrix element is the same one');
  app.dispose();
});

test('a finished run hides Cancel, fills the bar and says Done', () => {
  const { app } = startApp();
  deliver({
    type: 'state',
    state: sampleState({
      state: 'finished',
      summary: {
        valAccuracy: 0.9,
        bestEpoch: 3,
        epochsRun: 3,
        cache: { hits: 0, misses: 120 },
        wallMs: 1930,
        stageMs: { startup: 220, scan: 170, features: 60, head: 1220 },
        featuresPerSec: 40,
        cancelled: false,
      },
    }),
  });
  assert.equal($('#run-state').dataset.state, 'finished');
  assert.equal($('#stage').textContent, 'Done');
  assert.equal($('#epoch').textContent, 'Epoch 3 of 20');
  assert.equal($('#progress').getAttribute('aria-valuenow'), '100');
  assert.equal($('#cancel').hidden, true);
  assert.match($('#result').textContent ?? '', /validation accuracy 90\.0% at epoch 3 of 3/);
  assert.match($('#time').textContent ?? '', /1\.9 s in all — start-up 0\.22 s · scan 0\.17 s · features 0\.06 s · head 1\.22 s$/);
  app.dispose();
});

test("the header says which recipe the run chose and why, with every candidate's cross-validated score", () => {
  const { app } = startApp();
  const evaluation = {
    ...syntheticEvaluation(['black_rot', 'cedar_rust', 'healthy', 'scab'], 6),
    recipe: {
      requested: 'auto' as const,
      chosen: 'dihedral' as const,
      views: 8,
      images: 500,
      folds: 4,
      reason: '8 views + TTA chose over plain: 92.6% vs 90.5%',
      candidates: [
        { recipe: 'plain' as const, views: 1, accuracy: 0.905 },
        { recipe: 'flip' as const, views: 2, accuracy: 0.91 },
        { recipe: 'dihedral' as const, views: 8, accuracy: 0.926 },
      ],
    },
  };
  deliver({ type: 'state', state: sampleState({ state: 'finished', evaluation }) });
  assert.equal(
    $('#recipe').textContent,
    'dihedral — 8 views + TTA chose over plain: 92.6% vs 90.5% (4-fold cross-validation on 500 training images: plain 90.5%, flip 91.0%, dihedral 92.6%)',
  );
  deliver({
    type: 'state',
    state: sampleState({ state: 'finished', evaluation: syntheticEvaluation(['black_rot', 'cedar_rust', 'healthy', 'scab'], 6) }),
  });
  assert.equal(document.querySelector('#recipe'), null, 'a run from before recipes shows none');
  app.dispose();
});

test('"Why this backend" also says where the features and the head steps ran', () => {
  const { app } = startApp();
  const state = sampleState();
  state.backend = {
    ...state.backend!,
    featureRuntime: 'onnxruntime-node 1.30.0 (CPU, 2 threads, BatchNorm folded)',
    headRuntime: 'onnxruntime-node 1.30.0 (CPU, 1 thread, one graph per Adam step)',
  };
  deliver({ type: 'state', state });
  assert.match(
    document.querySelector('#backend-details [data-runtime="features"]')?.textContent ?? '',
    /^features — onnxruntime-node 1\.30\.0 \(CPU, 2 threads/,
  );
  assert.match(
    document.querySelector('#backend-details [data-runtime="head"]')?.textContent ?? '',
    /^head — onnxruntime-node .*one graph per Adam step\)$/,
  );
  assert.equal(document.querySelector('#time'), null, 'no time line before the run has finished');
  app.dispose();
});

test('a failed run says why', () => {
  const { app } = startApp();
  deliver({ type: 'state', state: sampleState({ state: 'failed', message: 'Out of memory while extracting features' }) });
  assert.equal($('#run-state').dataset.state, 'failed');
  assert.equal($('#run-message').hidden, false);
  assert.equal($('#run-message').textContent, 'Out of memory while extracting features');
  assert.equal($('#run-message').className, 'error');
  app.dispose();
});

test('the panel persists its state and the selected cell, and restores both before the host answers', async () => {
  const evaluation = syntheticEvaluation(['a', 'b', 'c'], 10, { accuracy: 0.6 });
  const first = startApp();
  deliver({ type: 'state', state: sampleState({ evaluation }) });
  $('td[data-actual="0"][data-predicted="1"]').click();
  const saved = first.api.saved as PersistedPanel;
  assert.equal(saved.version, 1);
  assert.equal(saved.panel.runId, 'leaves-20250101-120000');
  assert.deepEqual(saved.ui.cell, [0, 1]);
  first.app.dispose();

  // The webview is hidden and shown again: a new script run with the saved state.
  const second = startApp(saved);
  assert.deepEqual(second.api.posted, [{ type: 'ready' }]);
  assert.equal($('#run-state').dataset.state, 'running');
  assert.equal($('td[data-actual="0"][data-predicted="1"]').getAttribute('aria-selected'), 'true');
  assert.equal($('#gallery').dataset.predicted, '1');
  assert.equal(document.querySelectorAll('#gallery .thumb').length, evaluation.matrix[0]![1]);
  second.app.dispose();
});

test('progress is saved at most once a second, not per message', async () => {
  const { app, api } = startApp();
  deliver({ type: 'state', state: sampleState() });
  let saves = 0;
  const setState = api.setState.bind(api);
  api.setState = (s) => {
    saves++;
    setState(s);
  };
  for (let i = 0; i < 20; i++) deliver({ type: 'progress', progress: { stage: 'head', done: i, total: 20 } });
  assert.equal(saves, 0);
  await settle(1100);
  assert.equal(saves, 1);
  assert.equal((api.saved as PersistedPanel).panel.progress?.done, 19);
  app.dispose();
});

test('messages that are not panel notifications are ignored', () => {
  const { app } = startApp();
  deliver({ type: 'state', state: sampleState() });
  deliver({ type: 'evil', html: '<img src=x onerror=alert(1)>' });
  deliver('state');
  deliver(null);
  assert.equal($('#run-state').dataset.state, 'running');
  app.dispose();
});

test('text from the state is shown as text, never parsed as markup', () => {
  const { app } = startApp();
  deliver({ type: 'state', state: sampleState({ runName: '<img src=x onerror=alert(1)>', state: 'failed', message: '<b>boom</b>' }) });
  assert.equal($('#run-title').textContent, '<img src=x onerror=alert(1)>');
  assert.equal(document.querySelectorAll('#run-title img, #run-message b').length, 0);
  app.dispose();
});

test("the header offers the listed base models with the run's own preselected, and Retrain sends the chosen one", () => {
  const { app, api } = startApp();
  const models = [
    { id: 'mobilenet_v2_0.35', name: 'MobileNetV2 0.35 (224 px, ImageNet)' },
    { id: 'mobilenet_v2_1.00', name: 'MobileNetV2 1.00 (224 px, ImageNet)' },
    { id: 'mobilenet_v1_0.25', name: 'MobileNetV1 0.25 (224 px, ImageNet)' },
  ];
  deliver({ type: 'state', state: sampleState({ models, currentModel: 'mobilenet_v2_0.35' }) });
  const select = $<HTMLSelectElement>('#model-select');
  assert.equal(select.closest<HTMLElement>('.model-picker')!.hidden, false);
  assert.deepEqual(
    [...select.options].map((o) => [o.value, o.textContent]),
    models.map((m) => [m.id, m.name]),
  );
  assert.equal(select.value, 'mobilenet_v2_0.35');
  assert.equal($('#retrain').hasAttribute('disabled'), true, 'no retrain while this run is going');
  select.value = 'mobilenet_v1_0.25';
  select.dispatchEvent(new dom.window.Event('change', { bubbles: true }));
  // A later state of the same run (it finished) keeps the user's choice.
  deliver({ type: 'state', state: sampleState({ models, currentModel: 'mobilenet_v2_0.35', state: 'finished' }) });
  assert.equal(select.value, 'mobilenet_v1_0.25');
  assert.equal($('#retrain').hasAttribute('disabled'), false);
  api.posted.length = 0;
  $('#retrain').click();
  assert.deepEqual(api.posted, [{ type: 'retrain', model: 'mobilenet_v1_0.25' }]);
  assert.equal(document.querySelectorAll('#retrain').length, 1, 'one #retrain in the page');
  app.dispose();
});

test('a run on a model that is not listed retrains with the setting, and without a list there is no dropdown', () => {
  const { app, api } = startApp();
  const models = [{ id: 'mobilenet_v2_0.35', name: 'MobileNetV2 0.35 (224 px, ImageNet)' }];
  const own = { id: 'custom_mine_0123456789ab', name: 'Mine', inputSize: 160, featureSize: 256 };
  deliver({ type: 'state', state: sampleState({ state: 'finished', models, currentModel: own.id, model: own }) });
  const select = $<HTMLSelectElement>('#model-select');
  assert.deepEqual(
    [...select.options].map((o) => [o.value, o.textContent]),
    [
      ['', 'Mine (from settings)'],
      ['mobilenet_v2_0.35', 'MobileNetV2 0.35 (224 px, ImageNet)'],
    ],
  );
  assert.equal(select.value, '');
  api.posted.length = 0;
  $('#retrain').click();
  assert.deepEqual(api.posted, [{ type: 'retrain' }]);
  deliver({ type: 'state', state: sampleState({ runId: 'other', state: 'finished' }) });
  assert.equal(select.closest<HTMLElement>('.model-picker')!.hidden, true);
  app.dispose();
});
