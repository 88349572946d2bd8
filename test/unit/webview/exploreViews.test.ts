// The panel's Compare, Runs and Feature map views in jsdom: what the host sends is drawn, each
// click becomes the command the host validates, and a malformed message changes nothing.
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
import type { ComparisonView, RunRow } from '../../../src/shared/protocol/explore';
import type { FeatureMapFile } from '../../../src/shared/featureMap';
import type { RunStatus } from '../../../src/shared/runFolder';
import type { Evaluation } from '../../../src/shared/types';
import { comparisonView as toView } from '../../../src/extension/runHistory';
import { compareRuns } from '../../../src/training/compare/compareRuns';
import type { ComparableRun } from '../../../src/training/run/runFolderReader';
import { PanelApp } from '../../../src/webview/panelApp';
import { MAP_PAD } from '../../../src/webview/mapView';

const document = dom.window.document;
const $ = <T extends Element = HTMLElement>(selector: string): T => {
  const el = document.querySelector<T>(selector);
  assert.ok(el, `${selector} exists`);
  return el;
};
const CLASSES = ['black_rot', 'cedar_rust', 'healthy', 'scab'];

function finishedApp(): { app: PanelApp; api: ReturnType<typeof fakeVsCodeApi> } {
  const api = fakeVsCodeApi();
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  deliver({ type: 'state', state: sampleState({ state: 'finished', evaluation: syntheticEvaluation(CLASSES, 6, { seed: 2 }) }) });
  return { app, api };
}

function run(name: string, seed: number, accuracy: number): ComparableRun {
  const evaluation = syntheticEvaluation(CLASSES, 6, { seed, accuracy });
  const status = {
    state: 'finished',
    datasetRoot: '/data/leaves',
    datasetName: 'leaves',
    startedAt: `2026-12-0${seed}T10:00:00.000Z`,
    updatedAt: '',
    hasCheckpoint: true,
  } as RunStatus;
  const config = {
    datasetRoot: '/data/leaves',
    options: { seed, epochs: 5 * seed },
    model: { id: 'mobilenet_v2_0.35' },
  } as unknown as ComparableRun['config'];
  return { runDir: `/runs/${name}`, name, status, config, evaluation, epochs: syntheticEpochs(3 * seed) };
}

function comparisonView(): ComparisonView {
  const a = run('leaves-a', 1, 0.6);
  const b = run('leaves-b', 2, 0.9);
  return toView(compareRuns(a, b), a, b);
}

/** A feature map of the evaluation's validation images at the given positions. */
function mapOf(evaluation: Evaluation, x: number[], y: number[]): FeatureMapFile {
  const paths = evaluation.predictions.map((p) => p.path);
  return {
    format: 'image-trainer/feature-map@1',
    method: { pca: 32, nNeighbors: 15, minDist: 0.1, nEpochs: 200, seed: 1 },
    classes: CLASSES,
    paths,
    labels: evaluation.predictions.map((p) => p.actual),
    sides: paths.map(() => 1),
    x,
    y,
    ms: { pca: 1, umap: 2 },
    cached: false,
  };
}

test('the explore buttons wait for a finished run and each asks the host for its view', async () => {
  const api = fakeVsCodeApi();
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  deliver({ type: 'state', state: sampleState() });
  assert.equal($('#explore').hidden, true);
  deliver({ type: 'state', state: sampleState({ state: 'finished', evaluation: syntheticEvaluation(CLASSES, 6) }) });
  await settle();
  assert.equal($('#explore').hidden, false);
  $('#explore-compare').click();
  $('#explore-runs').click();
  $('#explore-map').click();
  assert.deepEqual(api.posted.slice(-3), [{ type: 'compare/pick' }, { type: 'runs/show' }, { type: 'map/show' }]);
  app.dispose();
});

test('a comparison shows settings, figures, both curves, three matrices and every flip as a thumbnail that opens its image', async () => {
  const { app, api } = finishedApp();
  const view = comparisonView();
  deliver({ type: 'comparison', view });
  await settle();
  assert.equal($('#compare').hidden, false);
  assert.deepEqual(
    [...document.querySelectorAll('#compare-settings tr')].slice(1).map((r) => [...r.children].map((c) => c.textContent)),
    [
      ['epochs', '5', '10'],
      ['seed', '1', '2'],
    ],
  );
  assert.equal(document.querySelectorAll('.overlay-chart polyline').length, 4, 'A and B in each of two charts');
  assert.equal(document.querySelectorAll('#compare-matrices table').length, 3);
  // In B − A, more on the diagonal or fewer off it is marked better; the opposite worse.
  const diffCells = [...document.querySelectorAll<HTMLElement>('#compare-matrices table.diff td')];
  assert.ok(diffCells.some((td) => td.classList.contains('better')));
  for (const td of diffCells) {
    const v = Number(td.textContent);
    const diagonal = td.classList.contains('diagonal');
    assert.equal(td.classList.contains('better'), v !== 0 && diagonal === v > 0, `${td.textContent} diagonal=${diagonal}`);
    assert.equal(td.classList.contains('worse'), v !== 0 && diagonal !== v > 0);
  }
  const flips = view.comparison.flips;
  for (const kind of ['fixed', 'broken', 'changed'] as const) {
    const thumbs = [...document.querySelectorAll<HTMLElement>(`#flips-${kind} .thumb`)];
    assert.deepEqual(
      thumbs.map((t) => t.dataset.path),
      flips[kind].map((f) => f.path),
    );
    assert.match($(`#flips-${kind}-title`).textContent ?? '', new RegExp(`${flips[kind].length} image`));
  }
  assert.ok(flips.fixed.length > 0, 'a 60% and a 90% run differ');
  const first = document.querySelector<HTMLElement>('#flips-fixed .thumb')!;
  assert.match(
    first.querySelector('.confidence')!.textContent ?? '',
    new RegExp(`^${flips.fixed[0]!.label}: ${flips.fixed[0]!.before} \\d+% → ${flips.fixed[0]!.after} \\d+%$`),
  );
  first.querySelector<HTMLElement>('.open')!.click();
  assert.deepEqual(api.posted.at(-1), { type: 'openImage', path: flips.fixed[0]!.path });
  app.dispose();
});

test('the Runs table lets exactly two runs be picked and asks to compare them by name', async () => {
  const { app, api } = finishedApp();
  const runs: RunRow[] = [
    {
      name: 'leaves-3',
      startedAt: '2026-12-03T10:00:00.000Z',
      state: 'finished',
      model: 'mobilenet_v2_0.35',
      accuracy: 0.9,
      wallMs: 4000,
      changes: ['seed: 2 → 3'],
      current: true,
    },
    { name: 'leaves-2', startedAt: '2026-12-02T10:00:00.000Z', state: 'failed', changes: [], current: false },
    {
      name: 'leaves-1',
      startedAt: '2026-12-01T10:00:00.000Z',
      state: 'finished',
      model: 'mobilenet_v2_0.35',
      accuracy: 0.8,
      wallMs: 5000,
      changes: [],
      current: false,
    },
  ];
  deliver({ type: 'runs', runs });
  await settle();
  const boxes = [...document.querySelectorAll<HTMLInputElement>('#runs-table input.pick')];
  assert.deepEqual(
    boxes.map((b) => b.disabled),
    [false, true, false],
    'a failed run cannot be compared',
  );
  assert.equal($<HTMLButtonElement>('#runs-compare').disabled, true);
  for (const i of [0, 2]) {
    boxes[i]!.checked = true;
    boxes[i]!.dispatchEvent(new dom.window.Event('change', { bubbles: true }));
  }
  assert.equal($<HTMLButtonElement>('#runs-compare').disabled, false);
  $('#runs-compare').click();
  assert.deepEqual(api.posted.at(-1), { type: 'compare/runs', a: 'leaves-3', b: 'leaves-1' });
  assert.match($('#runs-table').textContent ?? '', /seed: 2 → 3/);
  app.dispose();
});

test('the map marks validation mistakes and doctor findings, and a click on a point opens its image', async () => {
  const { app, api } = finishedApp();
  const evaluation = app.current!.evaluation!;
  const paths = evaluation.predictions.map((p) => p.path);
  const n = paths.length;
  const map = mapOf(
    evaluation,
    paths.map((_, i) => (i % 6) / 5),
    paths.map((_, i) => Math.floor(i / 6) / Math.max(1, Math.ceil(n / 6) - 1)),
  );
  deliver({ type: 'featureMap', map, marks: { doctor: [{ path: paths[3]!, finding: 'outlier' }] } });
  await settle();
  assert.equal($('#map').hidden, false);
  const mistakes = evaluation.predictions.filter((p) => p.actual !== p.predicted).length;
  assert.match($('#map-caption').textContent ?? '', new RegExp(`Ringed: ${mistakes} validation mistake`));
  assert.match($('#map-caption').textContent ?? '', /boxed: 1 doctor finding/);
  assert.equal(document.querySelectorAll('#map-legend li').length, 4);
  const view = app.views.explore.map;
  const p = view.screenOf(7);
  assert.equal(p.x, MAP_PAD + map.x[7]! * (view.screenOf(5).x - MAP_PAD));
  const canvas = $('#map-canvas');
  canvas.dispatchEvent(new dom.window.MouseEvent('mousemove', { clientX: p.x + 1, clientY: p.y }));
  assert.equal($('#map-tip').hidden, false);
  assert.match($('#map-tip').textContent ?? '', new RegExp(paths[7]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  canvas.dispatchEvent(new dom.window.MouseEvent('mousedown', { clientX: p.x, clientY: p.y, buttons: 1 }));
  canvas.dispatchEvent(new dom.window.MouseEvent('mouseup', { clientX: p.x, clientY: p.y }));
  assert.deepEqual(api.posted.at(-1), { type: 'openImage', path: paths[7] });
  app.dispose();
});

test('a Shift-drag lasso selects the points inside it, and Move sends exactly those to the chosen class', async () => {
  const { app, api } = finishedApp();
  const evaluation = app.current!.evaluation!;
  const paths = evaluation.predictions.map((p) => p.path);
  // The first 6 images in the top-left quarter, the rest in the bottom-right one.
  const map = mapOf(
    evaluation,
    paths.map((_, i) => (i < 6 ? 0.1 + i * 0.02 : 0.8)),
    paths.map((_, i) => (i < 6 ? 0.1 : 0.8)),
  );
  deliver({ type: 'featureMap', map, marks: {} });
  await settle();
  const view = app.views.explore.map;
  const corner = view.screenOf(0);
  const far = view.screenOf(5);
  const canvas = $('#map-canvas');
  const at = (x: number, y: number, extra: MouseEventInit = {}) => ({ clientX: x, clientY: y, ...extra });
  canvas.dispatchEvent(new dom.window.MouseEvent('mousedown', at(corner.x - 10, corner.y - 10, { shiftKey: true, buttons: 1 })));
  canvas.dispatchEvent(new dom.window.MouseEvent('mousemove', at(far.x + 10, corner.y - 10, { buttons: 1 })));
  canvas.dispatchEvent(new dom.window.MouseEvent('mousemove', at(far.x + 10, corner.y + 10, { buttons: 1 })));
  canvas.dispatchEvent(new dom.window.MouseEvent('mouseup', at(corner.x - 10, corner.y + 10)));
  assert.deepEqual(view.selection, paths.slice(0, 6));
  assert.equal($('#map-selection').hidden, false);
  assert.match($('#map-selection').textContent ?? '', /^6 images selected/);
  $<HTMLSelectElement>('#map-move-target').value = 'scab';
  $('#map-move').click();
  assert.deepEqual(api.posted.at(-1), { type: 'map/move', paths: paths.slice(0, 6), toClass: 'scab' });
  $('#map-clear').click();
  assert.equal($('#map-selection').hidden, true);
  app.dispose();
});

test('malformed exploring messages are ignored', async () => {
  const { app } = finishedApp();
  deliver({ type: 'comparison', view: { comparison: { format: 'nope' } } });
  deliver({ type: 'runs', runs: [{ name: 1 }] });
  deliver({
    type: 'featureMap',
    map: { format: 'image-trainer/feature-map@1', classes: ['a'], paths: ['x'], labels: [3], sides: [0], x: [0], y: [0] },
    marks: {},
  });
  await settle();
  assert.equal($('#compare').hidden, true);
  assert.equal($('#runs').hidden, true);
  assert.equal($('#map').hidden, true);
  app.dispose();
});
