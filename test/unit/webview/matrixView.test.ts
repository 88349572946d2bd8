import { dom, freshRoot, syntheticEvaluation } from '../../support/webviewTestKit';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MatrixView, cellLabel } from '../../../src/webview/matrixView';

const document = dom.window.document;
const classes = ['black_rot', 'cedar_rust', 'healthy', 'scab'];

function mount(evaluation = syntheticEvaluation(classes, 25, { accuracy: 0.7 })) {
  const selected: [number, number][] = [];
  const normalised: boolean[] = [];
  const view = new MatrixView(
    (a, p) => selected.push([a, p]),
    (n) => normalised.push(n),
  );
  freshRoot().appendChild(view.element);
  view.render(evaluation, false, undefined);
  return { view, evaluation, selected, normalised };
}

const cell = (a: number, p: number): HTMLElement => {
  const el = document.querySelector<HTMLElement>(`#matrix td[data-actual="${a}"][data-predicted="${p}"]`);
  assert.ok(el, `cell ${a},${p}`);
  return el;
};

test('the matrix has one cell per (true, predicted) pair showing its count', () => {
  const { evaluation } = mount();
  assert.equal(document.querySelectorAll('#matrix td[data-actual][data-predicted]').length, 16);
  for (let a = 0; a < 4; a++) for (let p = 0; p < 4; p++) assert.equal(cell(a, p).textContent, String(evaluation.matrix[a]![p]));
  const total = [...document.querySelectorAll('#matrix td[data-actual]')].reduce((s, td) => s + Number(td.textContent), 0);
  assert.equal(total, 100);
});

test('class names label both axes', () => {
  mount();
  const columns = [...document.querySelectorAll('#matrix thead th.col-head')].map((th) => th.textContent);
  const rows = [...document.querySelectorAll('#matrix tbody th[scope="row"]')].map((th) => th.textContent);
  assert.deepEqual(columns, classes);
  assert.deepEqual(rows, classes);
});

test('every cell has a screen-reader label naming the true and the predicted class', () => {
  const { evaluation } = mount();
  const count = evaluation.matrix[3]![2]!;
  const rowTotal = evaluation.matrix[3]!.reduce((a, b) => a + b, 0);
  assert.equal(
    cell(3, 2).getAttribute('aria-label'),
    `True scab, predicted healthy: ${count} ${count === 1 ? 'image' : 'images'}, ${Math.round((100 * count) / rowTotal)}% of scab`,
  );
  assert.equal(cellLabel(['x', 'y'], 0, 1, 1, 4), 'True x, predicted y: 1 image, 25% of x');
  assert.equal(document.querySelector('#matrix')?.getAttribute('role'), 'grid');
});

test('the normalise toggle shows each cell as a share of its true class and back', () => {
  const { evaluation, normalised } = mount();
  const toggle = document.querySelector('#normalise') as HTMLElement & { checked?: boolean };
  toggle.checked = true;
  toggle.dispatchEvent(new dom.window.Event('change'));
  assert.deepEqual(normalised, [true]);
  assert.equal(document.querySelector('#matrix')?.getAttribute('data-normalised'), 'true');
  for (let a = 0; a < 4; a++) {
    const row = evaluation.matrix[a]!;
    const total = row.reduce((x, y) => x + y, 0);
    for (let p = 0; p < 4; p++) {
      assert.equal(cell(a, p).textContent, `${Math.round((100 * row[p]!) / total)}%`);
      assert.equal(cell(a, p).dataset.count, String(row[p]), 'the count stays available');
    }
  }
  // Heat follows the share of the row when normalised.
  const diagonalHeat = Number(cell(0, 0).style.getPropertyValue('--heat').replace('%', ''));
  assert.equal(diagonalHeat, Math.round(Math.sqrt(evaluation.matrix[0]![0]! / 25) * 100));
  toggle.checked = false;
  toggle.dispatchEvent(new dom.window.Event('change'));
  assert.equal(cell(0, 0).textContent, String(evaluation.matrix[0]![0]));
});

test('arrow keys move the focus from cell to cell with one tab stop, and Enter opens the cell', () => {
  const { selected } = mount();
  const tabStops = () => [...document.querySelectorAll<HTMLElement>('#matrix td[tabindex="0"]')];
  assert.equal(tabStops().length, 1);
  assert.equal(tabStops()[0], cell(0, 0));
  const press = (key: string, options: KeyboardEventInit = {}) =>
    (document.activeElement as HTMLElement).dispatchEvent(new dom.window.KeyboardEvent('keydown', { key, bubbles: true, ...options }));
  cell(0, 0).focus();
  press('ArrowRight');
  assert.equal(document.activeElement, cell(0, 1));
  press('ArrowDown');
  press('ArrowDown');
  assert.equal(document.activeElement, cell(2, 1));
  press('ArrowLeft');
  press('ArrowLeft');
  assert.equal(document.activeElement, cell(2, 0), 'stops at the edge');
  press('End');
  assert.equal(document.activeElement, cell(2, 3));
  press('ArrowUp');
  assert.equal(document.activeElement, cell(1, 3));
  assert.deepEqual(tabStops(), [cell(1, 3)]);
  assert.deepEqual(selected, [], 'moving does not open a cell');
  press('Enter');
  assert.deepEqual(selected, [[1, 3]]);
  assert.equal(cell(1, 3).getAttribute('aria-selected'), 'true');
  press('ArrowLeft');
  press(' ');
  assert.deepEqual(selected, [
    [1, 3],
    [1, 2],
  ]);
});

test('clicking a cell selects it and reports (true, predicted)', () => {
  const { selected } = mount();
  cell(3, 2).dispatchEvent(new dom.window.MouseEvent('click', { bubbles: true }));
  assert.deepEqual(selected, [[3, 2]]);
  assert.equal(document.querySelectorAll('#matrix td[aria-selected="true"]').length, 1);
});

test('without an evaluation the matrix says when it will appear', () => {
  const view = new MatrixView(
    () => undefined,
    () => undefined,
  );
  freshRoot().appendChild(view.element);
  view.render(undefined, false, undefined);
  assert.equal(document.querySelector('#matrix'), null);
  assert.match(view.element.textContent ?? '', /appears when training ends/);
});

test('a 10-class matrix over 2,000 validation images renders every cell with its count', () => {
  const names = Array.from({ length: 10 }, (_, i) => `class_${i}`);
  const evaluation = syntheticEvaluation(names, 200, { accuracy: 0.8 });
  const view = new MatrixView(
    () => undefined,
    () => undefined,
  );
  freshRoot().appendChild(view.element);
  // How long this takes is a speed target of `npm run bench`, not a test.
  view.render(evaluation, false, undefined);
  const cells = [...document.querySelectorAll<HTMLElement>('#matrix td[data-actual]')];
  assert.equal(cells.length, 100);
  for (const td of cells) assert.equal(td.textContent, String(evaluation.matrix[Number(td.dataset.actual)]![Number(td.dataset.predicted)]));
  assert.equal(
    cells.reduce((s, td) => s + Number(td.textContent), 0),
    2000,
  );
});
