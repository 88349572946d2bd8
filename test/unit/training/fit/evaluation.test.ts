import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate, formatConfusionMatrix } from '../../../../src/training/fit/evaluation';

// Three classes, eight images. Rows are (actual → predicted):
//   cat: cat, cat, dog        dog: dog, cat        fox: dog, dog, cat   (fox is never predicted)
// Confusion matrix (rows actual, columns predicted):
//   cat [2, 1, 0]   dog [1, 1, 0]   fox [1, 2, 0]
const classes = ['cat', 'dog', 'fox'];
const actual = [0, 0, 0, 1, 1, 2, 2, 2];
const rows = [
  [0.7, 0.2, 0.1],
  [0.6, 0.3, 0.1],
  [0.3, 0.6, 0.1],
  [0.1, 0.8, 0.1],
  [0.5, 0.4, 0.1],
  [0.2, 0.5, 0.3],
  [0.1, 0.45, 0.45], // dog and fox tie: the first (dog) wins
  [0.5123456, 0.2, 0.2876544],
];
const probs = new Float32Array(rows.flat());
const paths = actual.map((_, i) => `${classes[actual[i]]}/img${i}.jpg`);

describe('evaluate', () => {
  const ev = evaluate(classes, actual, probs, paths, 4);

  it('counts the confusion matrix as rows of actual and columns of predicted classes', () => {
    assert.deepEqual(ev.matrix, [
      [2, 1, 0],
      [1, 1, 0],
      [1, 2, 0],
    ]);
  });

  it('computes accuracy as the diagonal over all images', () => {
    assert.equal(ev.accuracy, 3 / 8);
  });

  it('computes per-class precision, recall, F1 and support by hand-checked formulas', () => {
    const [cat, dog] = ev.perClass;
    // cat: 2 right of 4 predicted cat, 2 of 3 actual cats found
    assert.equal(cat.precision, 0.5);
    assert.ok(Math.abs(cat.recall - 2 / 3) < 1e-12);
    assert.ok(Math.abs(cat.f1 - 4 / 7) < 1e-12);
    assert.equal(cat.support, 3);
    assert.equal(dog.precision, 0.25);
    assert.equal(dog.recall, 0.5);
    assert.ok(Math.abs(dog.f1 - 1 / 3) < 1e-12);
    assert.equal(dog.support, 2);
  });

  it('gives a never-predicted class precision 0 instead of dividing by zero', () => {
    const fox = ev.perClass[2];
    assert.equal(fox.precision, 0);
    assert.equal(fox.recall, 0);
    assert.equal(fox.f1, 0);
    assert.equal(fox.support, 3);
    assert.ok(Object.values(ev.macro).every(Number.isFinite));
  });

  it('averages macro over classes and weighted by support', () => {
    assert.ok(Math.abs(ev.macro.precision - 0.25) < 1e-12);
    assert.ok(Math.abs(ev.macro.recall - 7 / 18) < 1e-12);
    assert.ok(Math.abs(ev.macro.f1 - 19 / 63) < 1e-12);
    assert.ok(Math.abs(ev.weighted.precision - 0.25) < 1e-12);
    // weighted recall always equals accuracy
    assert.ok(Math.abs(ev.weighted.recall - 3 / 8) < 1e-12);
    assert.ok(Math.abs(ev.weighted.f1 - 25 / 84) < 1e-12);
  });

  it('lists off-diagonal pairs by count, largest first, then by class order', () => {
    assert.deepEqual(ev.mostConfused, [
      { actual: 2, predicted: 1, count: 2 },
      { actual: 0, predicted: 1, count: 1 },
      { actual: 1, predicted: 0, count: 1 },
      { actual: 2, predicted: 0, count: 1 },
    ]);
  });

  it('keeps every image prediction with its path, confidence and probabilities rounded to 4 decimals', () => {
    assert.equal(ev.predictions.length, 8);
    const last = ev.predictions[7];
    assert.equal(last.path, 'fox/img7.jpg');
    assert.equal(last.actual, 2);
    assert.equal(last.predicted, 0);
    assert.deepEqual(last.probs, [0.5123, 0.2, 0.2877]);
    assert.equal(last.confidence, 0.5123);
    assert.equal(ev.bestEpoch, 4);
  });

  it('picks the first class when two probabilities tie', () => {
    const tie = evaluate(['a', 'b'], [1], new Float32Array([0.5, 0.5]), ['b/x.png'], 1);
    assert.equal(tie.predictions[0].predicted, 0);
    assert.deepEqual(tie.matrix, [
      [0, 0],
      [1, 0],
    ]);
  });

  it('returns zeros rather than NaN for an empty validation set', () => {
    const empty = evaluate(['a', 'b'], [], new Float32Array(0), [], 0);
    assert.equal(empty.accuracy, 0);
    assert.deepEqual(empty.weighted, { precision: 0, recall: 0, f1: 0 });
    assert.deepEqual(empty.mostConfused, []);
  });

  it('keeps only the ten most confused pairs', () => {
    // 6 classes, one image of each class predicted as each other class: 30 off-diagonal pairs
    const k = 6;
    const act: number[] = [];
    const pr: number[] = [];
    for (let a = 0; a < k; a++) {
      for (let d = 1; d < k; d++) {
        act.push(a);
        const row = new Array(k).fill(0);
        row[(a + d) % k] = 1;
        pr.push(...row);
      }
    }
    const many = evaluate(
      ['a', 'b', 'c', 'd', 'e', 'f'],
      act,
      new Float32Array(pr),
      act.map((_, i) => `${i}.png`),
      1,
    );
    assert.equal(many.mostConfused.length, 10);
    assert.equal(many.accuracy, 0);
  });

  it('refuses probabilities that do not match the number of images and classes', () => {
    assert.throws(() => evaluate(classes, [0, 1], new Float32Array(5), ['a', 'b'], 1), /5 probabilities for 2 images × 3 classes/);
  });
});

describe('formatConfusionMatrix', () => {
  it('prints the matrix rows, per-class metrics and accuracy as an aligned text table', () => {
    const text = formatConfusionMatrix(evaluate(classes, actual, probs, paths, 4));
    const lines = text.split('\n');
    assert.match(lines[0], /^actual \\ predicted\s+0\s+1\s+2$/);
    assert.match(lines[1], /^0 cat\s+2\s+1\s+0$/);
    assert.match(lines[3], /^2 fox\s+1\s+2\s+0$/);
    // columns line up: every matrix line has the same length
    assert.equal(new Set(lines.slice(0, 4).map((l) => l.length)).size, 1);
    assert.match(text, /^2 fox\s+0\.000\s+0\.000\s+0\.000\s+3$/m);
    assert.match(text, /^macro avg\s+0\.250\s+0\.389\s+0\.302\s+8$/m);
    assert.match(text, /accuracy 37\.5% \(3\/8\), best epoch 4/);
    assert.match(text, /most confused: fox → dog \(2\)/);
  });
});
