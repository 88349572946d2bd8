import { dom, freshRoot, settle, syntheticEpochs } from '../../support/webviewTestKit';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { curveMarks } from '../../../src/webview/curveMarks';
import { CurvesView } from '../../../src/webview/curvesView';

const document = dom.window.document;

function mount(): CurvesView {
  const view = new CurvesView();
  freshRoot().appendChild(view.element);
  return view;
}

test('the curves plot one point per epoch, train and validation, for loss and accuracy', async () => {
  const view = mount();
  const epochs = syntheticEpochs(6);
  view.render(epochs, undefined);
  await settle();
  assert.equal(document.querySelector('#curves')?.getAttribute('data-epochs'), '6');
  const { loss, accuracy } = view.plotted();
  assert.deepEqual(loss[0], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(
    loss[1],
    epochs.map((e) => e.loss),
  );
  assert.deepEqual(
    loss[2],
    epochs.map((e) => e.valLoss),
  );
  assert.deepEqual(
    accuracy[1],
    epochs.map((e) => e.acc),
  );
  assert.deepEqual(
    accuracy[2],
    epochs.map((e) => e.valAcc),
  );
  // uPlot really built both charts (a canvas each) with a legend naming the two series.
  assert.equal(document.querySelectorAll('#curves .uplot canvas').length, 2);
  const legend = [...document.querySelectorAll('#curves [data-chart="loss"] .u-legend .u-label')].map((l) => l.textContent);
  assert.deepEqual(legend, ['Train', 'Validation']);
  view.dispose();
});

test('epochs arriving one by one extend the curves live', async () => {
  const view = mount();
  view.render([], undefined);
  assert.equal(document.querySelector('#curves')?.getAttribute('data-epochs'), '0');
  assert.match(document.querySelector('#curves-latest')?.textContent ?? '', /appear when the first epoch ends/);
  for (const e of syntheticEpochs(3)) view.addEpoch(e);
  view.addEpoch(syntheticEpochs(3)[2]!); // a repeated epoch replaces, never duplicates
  await settle();
  assert.equal(document.querySelector('#curves')?.getAttribute('data-epochs'), '3');
  assert.equal(view.plotted().loss[0].length, 3);
  assert.match(
    document.querySelector('#curves-latest')?.textContent ?? '',
    /^Epoch 3: loss 0\.400 \(validation 0\.483\), accuracy 83\.3% \(validation 78\.3%\)$/,
  );
  view.dispose();
});

test('the best epoch is marked on both charts and named in words', async () => {
  const view = mount();
  view.render(syntheticEpochs(8), 5);
  await settle();
  const marks = document.querySelectorAll('#curves .mark-best[data-epoch="5"]');
  assert.equal(marks.length, 2, 'one line per chart');
  const left = Number.parseFloat((marks[0] as HTMLElement).style.left);
  assert.ok(left > 0, `positioned at the epoch (${left}px)`);
  const words = document.querySelector('#curve-marks li[data-kind="best"]')?.textContent ?? '';
  assert.match(words, /^Best epoch 5, weights kept \(validation accuracy 85\.0%, loss 0\.310\)$/);
  view.dispose();
});

test('the start of fine-tuning and learning-rate changes are marked', async () => {
  const view = mount();
  view.render(syntheticEpochs(12, { lrDropAt: 5, fineTuneFrom: 9 }), undefined);
  await settle();
  assert.equal(document.querySelectorAll('#curves .mark-lr[data-epoch="5"]').length, 2);
  assert.equal(document.querySelectorAll('#curves .mark-fine-tune[data-epoch="9"]').length, 2);
  assert.equal(document.querySelectorAll('#curves .mark-best').length, 0, 'no best mark before it is known');
  const words = [...document.querySelectorAll('#curve-marks li')].map((li) => li.textContent);
  assert.deepEqual(words, ['Learning rate 1e-3 → 5e-4 at epoch 5', 'Fine-tuning from epoch 9 (learning rate 1e-5)']);
  view.dispose();
});

test('curve marks are derived from the metrics alone', () => {
  assert.deepEqual(curveMarks([], undefined), []);
  const marks = curveMarks(syntheticEpochs(4, { fineTuneFrom: 3 }), 4);
  assert.deepEqual(
    marks.map((m) => [m.kind, m.epoch]),
    [
      ['fine-tune', 3],
      ['best', 4],
    ],
  );
});
