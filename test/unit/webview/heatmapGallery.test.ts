// The gallery's heatmap toggle, overlays and unknown markers, and the reliability diagrams, in the
// real panel code on a jsdom page (the host's replies delivered as VS Code delivers them).
import { dom, deliver, evaluationOf, fakeVsCodeApi, freshRoot, sampleState } from '../../support/webviewTestKit';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heatmapRgba } from '../../../src/shared/heatColours';
import type { PanelHeatmap } from '../../../src/shared/protocol/panel';
import type { Evaluation, Prediction } from '../../../src/shared/types';
import { drawHeatmap } from '../../../src/webview/heatmapOverlay';
import { isPersistedPanel, PanelApp } from '../../../src/webview/panelApp';

const document = dom.window.document;
const classes = ['black_rot', 'healthy', 'scab'];
const predictions: Prediction[] = [
  { path: 'scab/a.jpg', actual: 2, predicted: 1, confidence: 0.55, probs: [0.05, 0.55, 0.4], novelty: 61.2, unknown: true },
  { path: 'scab/b.jpg', actual: 2, predicted: 1, confidence: 0.97, probs: [0.01, 0.97, 0.02], novelty: 20.5, unknown: false },
  { path: 'scab/c.jpg', actual: 2, predicted: 1, confidence: 0.8, probs: [0.1, 0.8, 0.1], novelty: 18.1, unknown: false },
  { path: 'scab/d.jpg', actual: 2, predicted: 2, confidence: 0.9, probs: [0.05, 0.05, 0.9], novelty: 12.0, unknown: false },
  { path: 'healthy/e.jpg', actual: 1, predicted: 1, confidence: 0.9, probs: [0.05, 0.9, 0.05], novelty: 55.0, unknown: true },
];
const bins = (pairs: [number, number, number][]) =>
  Array.from({ length: 15 }, (_, i) => {
    const hit = pairs.find(([bin]) => bin === i);
    return hit ? { count: hit[1], confidence: (i + 0.5) / 15, accuracy: hit[2] } : { count: 0, confidence: 0, accuracy: 0 };
  });
const evaluation: Evaluation = {
  ...evaluationOf(classes, predictions, 2),
  calibration: {
    temperature: 1.8,
    eceBefore: 0.1234,
    eceAfter: 0.0456,
    heldOut: 40,
    bins: 15,
    reliability: {
      before: bins([
        [13, 10, 0.6],
        [14, 30, 0.9],
      ]),
      after: bins([
        [10, 12, 0.7],
        [12, 28, 0.85],
      ]),
    },
  },
  novelty: {
    method: 'mahalanobis-nearest-mean',
    shrinkage: 0.3,
    threshold: 49.54,
    percentile: 99,
    trainImages: 20,
    valImages: 5,
    valFlagged: 2,
  },
};

function heatmap(path: string, width = 4, height = 3): PanelHeatmap {
  return { path, width, height, values: Array.from({ length: width * height }, (_, i) => i / (width * height - 1)) };
}

function openCell(api = fakeVsCodeApi(), state = sampleState({ evaluation })) {
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  deliver({ type: 'state', state });
  document.querySelector<HTMLElement>('#matrix td[data-actual="2"][data-predicted="1"]')!.click();
  return { app, api };
}

const thumbs = (): HTMLElement[] => [...document.querySelectorAll<HTMLElement>('#gallery .thumb')];
const toggle = () => document.querySelector('#heatmap-toggle') as HTMLElement & { checked?: boolean };
function setToggle(on: boolean): void {
  toggle().checked = on;
  toggle().dispatchEvent(new dom.window.Event('change'));
}
const explainRequests = (posted: unknown[]) =>
  posted.filter((m) => (m as { type: string }).type === 'explainImages') as { paths: string[] }[];

test('turning the heatmap toggle on asks the host once for the shown thumbnails, then lays each heatmap over its image', () => {
  const { app, api } = openCell();
  assert.equal(document.querySelector('#gallery')?.getAttribute('data-heatmaps'), 'off');
  assert.deepEqual(explainRequests(api.posted), [], 'nothing is computed before the user asks');
  setToggle(true);
  assert.equal(document.querySelector('#gallery')?.getAttribute('data-heatmaps'), 'on');
  assert.deepEqual(explainRequests(api.posted), [{ type: 'explainImages', paths: ['scab/b.jpg', 'scab/c.jpg', 'scab/a.jpg'] }]);
  assert.deepEqual(
    thumbs().map((t) => t.dataset.heatmap),
    ['pending', 'pending', 'pending'],
  );
  deliver({
    type: 'heatmaps',
    heatmaps: [heatmap('scab/b.jpg'), heatmap('scab/a.jpg', 3, 4)],
    failed: [{ path: 'scab/c.jpg', reason: 'not an image' }],
  });
  const [b, c, a] = thumbs();
  assert.equal(b!.dataset.heatmap, 'shown');
  const canvas = b!.querySelector<HTMLCanvasElement>('.open canvas.heatmap')!;
  assert.deepEqual([canvas.width, canvas.height], [4, 3], 'drawn at the heatmap’s own resolution, in the image’s aspect');
  assert.deepEqual(
    [a!.querySelector<HTMLCanvasElement>('canvas.heatmap')!.width, a!.querySelector<HTMLCanvasElement>('canvas.heatmap')!.height],
    [3, 4],
  );
  assert.equal(c!.dataset.heatmap, 'failed');
  assert.equal(c!.querySelector('canvas.heatmap'), null);
  assert.equal(c!.querySelector('.heatmap-note')?.textContent, 'No heatmap: not an image');
  // Off and on again: the heatmaps are kept, nothing is asked twice.
  setToggle(false);
  setToggle(true);
  assert.equal(explainRequests(api.posted).length, 1);
  assert.deepEqual((api.saved as { ui: { heatmaps?: boolean } }).ui.heatmaps, true, 'the toggle is persisted');
  app.dispose();
});

test('a heatmap the panel did not ask for, or for an image not shown, is ignored', () => {
  const { app } = openCell();
  deliver({ type: 'heatmaps', heatmaps: [heatmap('scab/b.jpg')], failed: [] });
  assert.equal(thumbs()[0]!.dataset.heatmap, undefined);
  assert.equal(document.querySelector('canvas.heatmap'), null);
  // A malformed one (values outside [0, 1]) never reaches the gallery.
  setToggle(true);
  deliver({ type: 'heatmaps', heatmaps: [{ ...heatmap('scab/b.jpg'), values: new Array<number>(12).fill(2) }], failed: [] });
  assert.equal(thumbs()[0]!.dataset.heatmap, 'pending');
  app.dispose();
});

test('with heatmaps on, opening a thumbnail asks for the image with its heatmap; another cell asks only for its own images', () => {
  const { app, api } = openCell();
  setToggle(true);
  api.posted.length = 0;
  thumbs()[0]!
    .querySelector('img')!
    .dispatchEvent(new dom.window.MouseEvent('click', { bubbles: true }));
  assert.deepEqual(api.posted, [{ type: 'openImage', path: 'scab/b.jpg', heatmap: true }]);
  api.posted.length = 0;
  document.querySelector<HTMLElement>('#matrix td[data-actual="2"][data-predicted="2"]')!.click();
  assert.deepEqual(explainRequests(api.posted), [{ type: 'explainImages', paths: ['scab/d.jpg'] }]);
  setToggle(false);
  api.posted.length = 0;
  thumbs()[0]!
    .querySelector('img')!
    .dispatchEvent(new dom.window.MouseEvent('click', { bubbles: true }));
  assert.deepEqual(api.posted, [{ type: 'openImage', path: 'scab/d.jpg' }]);
  app.dispose();
});

test('the toggle comes back on after a reload, and another run forgets the previous run’s heatmaps', () => {
  const first = openCell();
  setToggle(true);
  deliver({ type: 'heatmaps', heatmaps: [heatmap('scab/b.jpg')], failed: [] });
  const saved = first.api.saved;
  assert.ok(isPersistedPanel(saved));
  first.app.dispose();
  const api = fakeVsCodeApi(saved);
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  assert.equal(toggle().checked, true);
  assert.deepEqual(explainRequests(api.posted)[0]?.paths, ['scab/b.jpg', 'scab/c.jpg', 'scab/a.jpg']);
  api.posted.length = 0;
  deliver({ type: 'state', state: sampleState({ evaluation, runId: 'leaves-2', runName: 'leaves-2' }) });
  assert.equal(document.querySelector('canvas.heatmap'), null);
  app.dispose();
});

test('validation images flagged unknown carry a marker with their novelty and the threshold', () => {
  const { app } = openCell();
  const [b, , a] = thumbs();
  assert.equal(a!.dataset.unknown, 'true');
  const badge = a!.querySelector<HTMLElement>('.unknown-badge')!;
  assert.equal(badge.textContent, 'unknown');
  assert.equal(badge.title, 'Unlike every class the model knows: novelty 61.2 above the threshold 49.5');
  assert.equal(b!.querySelector('.unknown-badge'), null);
  assert.equal(b!.dataset.unknown, undefined);
  app.dispose();
});

test('the reliability section shows both diagrams with their ECE, the temperature and the unknown count', () => {
  const { app } = openCell();
  const section = document.querySelector<HTMLElement>('#reliability-section')!;
  assert.equal(section.hidden, false);
  assert.equal(
    document.querySelector('#calibration-summary')?.textContent,
    'Temperature 1.80: confidences softened by dividing the logits by it.',
  );
  assert.equal(
    document.querySelector('#ece-summary')?.textContent,
    'Expected calibration error (15 bins) on 40 held-out validation images: 0.123 before, 0.046 after scaling.',
  );
  const figures = [...section.querySelectorAll<HTMLElement>('figure.reliability')];
  assert.deepEqual(
    figures.map((f) => [f.dataset.when, f.querySelector('figcaption')?.textContent]),
    [
      ['before', 'Before scaling · ECE 0.123'],
      ['after', 'After scaling (T = 1.80) · ECE 0.046'],
    ],
  );
  // One bar per bin with images, as tall as its accuracy (the plot is 160 units high), with the figures in its tooltip.
  const bars = [...figures[0]!.querySelectorAll('rect.reliability-bar')];
  assert.deepEqual(
    bars.map((r) => [r.getAttribute('data-bin'), Number(r.getAttribute('height')).toFixed(1)]),
    [
      ['13', (0.6 * 160).toFixed(1)],
      ['14', (0.9 * 160).toFixed(1)],
    ],
  );
  assert.equal(bars[0]!.querySelector('title')?.textContent, '87%–93%: 10 images, mean confidence 90.0%, 60.0% right');
  assert.equal(figures[1]!.querySelectorAll('rect.reliability-bar').length, 2);
  assert.equal(
    document.querySelector('#unknown-summary')?.textContent,
    'Unknown: 2 of 5 validation images unlike every class (novelty above 49.5, the 99th percentile of the validation scores); marked “unknown” in the gallery.',
  );
  app.dispose();
});

test('a temperature kept at 1 by the calibration guard says why', () => {
  const guarded: Evaluation = {
    ...evaluation,
    calibration: {
      ...evaluation.calibration!,
      temperature: 1,
      eceAfter: evaluation.calibration!.eceBefore,
      fallback: 'none of the 24 validation images is misclassified: the fit would sharpen every confidence towards 100%',
    },
  };
  const { app } = openCell(fakeVsCodeApi(), sampleState({ evaluation: guarded }));
  assert.equal(
    document.querySelector('#calibration-summary')?.textContent,
    'Temperature kept at 1: none of the 24 validation images is misclassified: the fit would sharpen every confidence towards 100%.',
  );
  // Nothing was scaled: one diagram, not two identical ones.
  assert.deepEqual(
    [...document.querySelectorAll('#reliability-section figcaption')].map((f) => f.textContent),
    ['Not scaled (T = 1) · ECE 0.123'],
  );
  assert.equal(
    document.querySelector('#ece-summary')?.textContent,
    'Expected calibration error (15 bins) on 40 held-out validation images: 0.123.',
  );
  app.dispose();
});

test('a run without calibration or unknown detection has no reliability section', () => {
  const { calibration: _c, novelty: _n, ...plain } = evaluation;
  const { app } = openCell(fakeVsCodeApi(), sampleState({ evaluation: plain }));
  assert.equal(document.querySelector<HTMLElement>('#reliability-section')!.hidden, true);
  app.dispose();
});

test('a heatmap is drawn pixel for pixel in the engine’s colour scale', () => {
  const canvas = document.createElement('canvas');
  let put: { data: Uint8ClampedArray; width: number; height: number } | undefined;
  (canvas as unknown as { getContext: () => unknown }).getContext = () => ({
    createImageData: (width: number, height: number) => ({ width, height, data: new Uint8ClampedArray(width * height * 4) }),
    putImageData: (image: { data: Uint8ClampedArray; width: number; height: number }) => (put = image),
  });
  const map = heatmap('x.jpg', 2, 2);
  drawHeatmap(canvas, map);
  assert.ok(put);
  assert.deepEqual([put.width, put.height], [2, 2]);
  assert.deepEqual([...put.data], [...heatmapRgba(map.values)]);
  // 0 is transparent; 1 is red and the most opaque.
  assert.deepEqual([...put.data.subarray(0, 4)], [0, 0, 255, 0]);
  assert.deepEqual([...put.data.subarray(12, 16)], [255, 0, 0, 153]);
});
