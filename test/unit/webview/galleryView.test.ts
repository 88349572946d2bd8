import {
  dom,
  deliver,
  evaluationOf,
  fakeVsCodeApi,
  freshRoot,
  sampleState,
  settle,
  syntheticEvaluation,
} from '../../support/webviewTestKit';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cellImages, imageUrl } from '../../../src/webview/galleryOrder';
import { GALLERY_PAGE_SIZE } from '../../../src/webview/galleryView';
import { PanelApp } from '../../../src/webview/panelApp';
import type { Prediction } from '../../../src/shared/types';

const document = dom.window.document;
const classes = ['black_rot', 'healthy', 'scab'];

// Five scab images (true 2): three predicted healthy (1) with different confidences, two correct.
const predictions: Prediction[] = [
  { path: 'scab/a.jpg', actual: 2, predicted: 1, confidence: 0.55, probs: [0.05, 0.55, 0.4] },
  { path: 'scab/b b#1.jpg', actual: 2, predicted: 1, confidence: 0.97, probs: [0.01, 0.97, 0.02] },
  { path: 'scab/c.jpg', actual: 2, predicted: 1, confidence: 0.8, probs: [0.1, 0.8, 0.1] },
  { path: 'scab/d.jpg', actual: 2, predicted: 2, confidence: 0.51, probs: [0.2, 0.29, 0.51] },
  { path: 'scab/e.jpg', actual: 2, predicted: 2, confidence: 0.99, probs: [0.0, 0.01, 0.99] },
  { path: 'healthy/f.jpg', actual: 1, predicted: 1, confidence: 0.9, probs: [0.05, 0.9, 0.05] },
  { path: 'black_rot/g.jpg', actual: 0, predicted: 0, confidence: 0.9, probs: [0.9, 0.05, 0.05] },
];
const evaluation = evaluationOf(classes, predictions, 2);

function open(cellActual: number, cellPredicted: number, state = sampleState({ evaluation })) {
  const api = fakeVsCodeApi();
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  deliver({ type: 'state', state });
  const cell = document.querySelector<HTMLElement>(`#matrix td[data-actual="${cellActual}"][data-predicted="${cellPredicted}"]`);
  assert.ok(cell);
  cell.click();
  return { app, api };
}

const thumbs = (): HTMLElement[] => [...document.querySelectorAll<HTMLElement>('#gallery .thumb')];

test('an off-diagonal cell shows its images most confident mistake first, with the confidence for both classes', () => {
  const { app } = open(2, 1);
  assert.deepEqual(
    thumbs().map((t) => t.dataset.path),
    ['scab/b b#1.jpg', 'scab/c.jpg', 'scab/a.jpg'],
  );
  assert.deepEqual(
    thumbs().map((t) => t.querySelector('.confidence')?.textContent),
    ['healthy 97% · scab 2%', 'healthy 80% · scab 10%', 'healthy 55% · scab 40%'],
  );
  assert.equal(
    document.querySelector('#gallery-title')?.textContent,
    'True scab, predicted healthy: 3 images, most confident mistakes first',
  );
  app.dispose();
});

test('a diagonal cell shows its correct images least confident first', () => {
  const { app } = open(2, 2);
  assert.deepEqual(
    thumbs().map((t) => t.dataset.path),
    ['scab/d.jpg', 'scab/e.jpg'],
  );
  assert.deepEqual(
    thumbs().map((t) => t.querySelector('.confidence')?.textContent),
    ['scab 51%', 'scab 99%'],
  );
  assert.match(document.querySelector('#gallery-title')?.textContent ?? '', /^Correct scab: 2 images, least confident first$/);
  app.dispose();
});

test('thumbnails load from the webview URI of the dataset with each path segment encoded', () => {
  const { app } = open(2, 1);
  const img = thumbs()[0]!.querySelector('img')!;
  assert.equal(img.getAttribute('src'), 'https://file+.vscode-resource.vscode-cdn.net/data/leaves/scab/b%20b%231.jpg');
  assert.equal(img.getAttribute('loading'), 'lazy');
  assert.equal(img.getAttribute('alt'), 'scab/b b#1.jpg');
  assert.equal(imageUrl('https://x/base/', 'a/ü?.png'), 'https://x/base/a/%C3%BC%3F.png');
  app.dispose();
});

test('clicking a thumbnail, Reveal and Move post the matching commands with the relative path', () => {
  const { app, api } = open(2, 1);
  api.posted.length = 0;
  const first = thumbs()[0]!;
  first.querySelector('img')!.dispatchEvent(new dom.window.MouseEvent('click', { bubbles: true }));
  first.querySelector<HTMLElement>('.reveal')!.click();
  const select = first.querySelector<HTMLSelectElement>('.move-target')!;
  assert.deepEqual(
    [...select.options].map((o) => o.value),
    ['black_rot', 'healthy'],
    'every class but the one it is in',
  );
  assert.equal(select.value, 'healthy', 'the predicted class is proposed');
  select.value = 'black_rot';
  first.querySelector<HTMLElement>('.move')!.click();
  assert.deepEqual(api.posted, [
    { type: 'openImage', path: 'scab/b b#1.jpg' },
    { type: 'revealImage', path: 'scab/b b#1.jpg' },
    { type: 'moveImage', path: 'scab/b b#1.jpg', toClass: 'black_rot' },
  ]);
  app.dispose();
});

test('a moved image is marked, keeps showing from its new place, and the retrain hint appears', () => {
  const { app, api } = open(2, 1);
  assert.equal(document.querySelector('#retrain-hint'), null);
  deliver({ type: 'imageMoved', path: 'scab/c.jpg', toClass: 'healthy', newPath: 'healthy/c.jpg' });
  const moved = thumbs().find((t) => t.dataset.path === 'scab/c.jpg')!;
  assert.equal(moved.dataset.moved, 'true');
  assert.match(moved.querySelector('img')!.src, /\/healthy\/c\.jpg$/);
  assert.equal(moved.querySelector<HTMLButtonElement>('.move')!.disabled, true);
  assert.equal(moved.querySelector('.moved-note')?.textContent, 'Moved to healthy');
  assert.equal(thumbs().filter((t) => t.dataset.moved === 'true').length, 1);
  const hint = document.querySelector<HTMLElement>('#retrain-hint');
  assert.ok(hint);
  assert.match(hint.textContent ?? '', /1 image moved to another class folder/);
  api.posted.length = 0;
  moved.querySelector('img')!.dispatchEvent(new dom.window.MouseEvent('click', { bubbles: true }));
  document.querySelector<HTMLElement>('#retrain-hint-button')!.click();
  assert.deepEqual(api.posted, [{ type: 'openImage', path: 'healthy/c.jpg' }, { type: 'retrain' }]);
  // Opening another cell and coming back keeps the mark (it is part of the state).
  document.querySelector<HTMLElement>('#matrix td[data-actual="2"][data-predicted="2"]')!.click();
  document.querySelector<HTMLElement>('#matrix td[data-actual="2"][data-predicted="1"]')!.click();
  assert.equal(thumbs().find((t) => t.dataset.path === 'scab/c.jpg')!.dataset.moved, 'true');
  app.dispose();
});

test('the most-confused list opens the cell it names', () => {
  const { app } = open(0, 0);
  const pair = document.querySelector<HTMLElement>('#confused-pairs button');
  assert.equal(pair?.textContent, 'scab → healthy');
  pair!.click();
  assert.deepEqual(
    thumbs().map((t) => t.dataset.path),
    ['scab/b b#1.jpg', 'scab/c.jpg', 'scab/a.jpg'],
  );
  assert.equal(document.querySelector('#matrix td[data-actual="2"][data-predicted="1"]')?.getAttribute('aria-selected'), 'true');
  app.dispose();
});

test('the per-class table lists precision, recall, F1 and support', () => {
  const { app } = open(0, 0);
  const rows = [...document.querySelectorAll('#class-metrics vscode-table-body vscode-table-row')].map((r) =>
    [...r.children].map((c) => c.textContent),
  );
  assert.deepEqual(rows[2], ['scab', '100.0%', '40.0%', '57.1%', '5']);
  assert.deepEqual(rows[1], ['healthy', '25.0%', '100.0%', '40.0%', '1']);
  assert.equal(rows.length, 5, 'three classes, macro and weighted averages');
  app.dispose();
});

test('cell order is computed from probabilities alone', () => {
  assert.deepEqual(
    cellImages(evaluation, 2, 1).map((p) => p.path),
    ['scab/b b#1.jpg', 'scab/c.jpg', 'scab/a.jpg'],
  );
  assert.deepEqual(cellImages(evaluation, 0, 1), []);
});

test('a 300-image cell of a 2,000-image run opens with the first page of thumbnails, the rest as the user scrolls', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `class_${i}`);
  // 2,000 validation images over 10 classes: 1,602 in classes 1–9, and class_0 with 300 images
  // predicted as class_1 plus 98 correct ones.
  const others = syntheticEvaluation(names, 178, { accuracy: 0.85, seed: 3 }).predictions.filter((p) => p.actual !== 0);
  const confused: Prediction[] = Array.from({ length: 300 }, (_, i) => {
    const p1 = 0.5 + (i % 97) / 200;
    return {
      path: `class_0/confused_${i}.jpg`,
      actual: 0,
      predicted: 1,
      confidence: p1,
      probs: names.map((_, j) => (j === 1 ? p1 : j === 0 ? 1 - p1 : 0)),
    };
  });
  const correct: Prediction[] = Array.from({ length: 98 }, (_, i) => ({
    path: `class_0/ok_${i}.jpg`,
    actual: 0,
    predicted: 0,
    confidence: 0.9,
    probs: names.map((_, j) => (j === 0 ? 0.9 : 0.1 / 9)),
  }));
  const all = evaluationOf(names, [...others, ...confused, ...correct]);
  assert.equal(all.predictions.length, 2000);
  const api = fakeVsCodeApi();
  const app = new PanelApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  // How long rendering and opening take is a speed target of `npm run bench`, not a test.
  deliver({ type: 'state', state: sampleState({ evaluation: all }) });
  const cell = document.querySelector<HTMLElement>('#matrix td[data-actual="0"][data-predicted="1"]')!;
  assert.equal(cell.textContent, '300');
  cell.click();
  assert.equal(thumbs().length, GALLERY_PAGE_SIZE);
  assert.equal(app.views.gallery.counts.total, 300);
  const confidences = thumbs().map((t) => Number.parseFloat(t.querySelector('.confidence')!.textContent!.split(' ')[1]!));
  assert.deepEqual(
    confidences,
    [...confidences].sort((a, b) => b - a),
    'worst first',
  );
  const more = document.querySelector<HTMLButtonElement>('#gallery-more')!;
  assert.equal(more.hidden, false);
  assert.equal(more.textContent, `Show ${GALLERY_PAGE_SIZE} more (${300 - GALLERY_PAGE_SIZE} not shown yet)`);
  for (let i = 0; i < 300 && !more.hidden; i++) more.click();
  assert.equal(thumbs().length, 300);
  assert.equal(more.hidden, true);
  assert.equal(new Set(thumbs().map((t) => t.dataset.path)).size, 300, 'no image twice');
  await settle();
  app.dispose();
});
