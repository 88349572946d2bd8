// Final metrics of a trained classifier, from class indices and predicted probabilities only:
// no tensors, so the same numbers can be computed, tested and shown anywhere.
//
// Zero division: a class that is never predicted has precision 0, a class with no validation
// images has recall 0 (support 0), and F1 is 0 when precision + recall is 0 — scikit-learn's
// `zero_division=0`. Macro averages include every class, weighted averages weight by support.

import type { ClassMetrics, ConfusedPair, Evaluation, Prediction } from '../../shared/types';

const MOST_CONFUSED_LIMIT = 10;

/** Rounds to 4 decimals (probabilities in reports and predictions). */
function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

/** Index of the largest value in `probs[row*k .. row*k+k)`; the first one on ties. */
export function argMaxRow(probs: Float32Array, row: number, k: number): number {
  let best = 0;
  let bestValue = probs[row * k];
  for (let c = 1; c < k; c++) {
    const v = probs[row * k + c];
    if (v > bestValue) {
      bestValue = v;
      best = c;
    }
  }
  return best;
}

/** Confusion matrix, accuracy, per-class and averaged precision/recall/F1, most-confused pairs and every prediction. */
export function evaluate(
  classes: string[],
  actual: ArrayLike<number>,
  probs: Float32Array,
  paths: string[],
  bestEpoch: number,
): Evaluation {
  const k = classes.length;
  const n = actual.length;
  if (probs.length !== n * k) {
    throw new Error(`evaluate: ${probs.length} probabilities for ${n} images × ${k} classes`);
  }
  if (paths.length !== n) throw new Error(`evaluate: ${paths.length} paths for ${n} images`);

  const matrix = classes.map(() => new Array<number>(k).fill(0));
  const predictions: Prediction[] = [];
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    if (!Number.isInteger(a) || a < 0 || a >= k) throw new Error(`evaluate: class index ${a} of ${paths[i]} is out of range`);
    const p = argMaxRow(probs, i, k);
    matrix[a][p]++;
    if (a === p) correct++;
    const rowProbs = Array.from(probs.subarray(i * k, i * k + k), round4);
    predictions.push({ path: paths[i], actual: a, predicted: p, confidence: rowProbs[p], probs: rowProbs });
  }

  const perClass: ClassMetrics[] = classes.map((name, c) => {
    const tp = matrix[c][c];
    const support = matrix[c].reduce((s, v) => s + v, 0);
    const predictedCount = matrix.reduce((s, row) => s + row[c], 0);
    const precision = predictedCount > 0 ? tp / predictedCount : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { name, precision, recall, f1, support };
  });

  const mean = (pick: (m: ClassMetrics) => number): number => (k > 0 ? perClass.reduce((s, m) => s + pick(m), 0) / k : 0);
  const weightedMean = (pick: (m: ClassMetrics) => number): number =>
    n > 0 ? perClass.reduce((s, m) => s + pick(m) * m.support, 0) / n : 0;

  const mostConfused: ConfusedPair[] = [];
  for (let a = 0; a < k; a++) {
    for (let p = 0; p < k; p++) {
      if (a !== p && matrix[a][p] > 0) mostConfused.push({ actual: a, predicted: p, count: matrix[a][p] });
    }
  }
  mostConfused.sort((x, y) => y.count - x.count || x.actual - y.actual || x.predicted - y.predicted);

  return {
    classes: [...classes],
    matrix,
    accuracy: n > 0 ? correct / n : 0,
    perClass,
    macro: { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1) },
    weighted: {
      precision: weightedMean((m) => m.precision),
      recall: weightedMean((m) => m.recall),
      f1: weightedMean((m) => m.f1),
    },
    mostConfused: mostConfused.slice(0, MOST_CONFUSED_LIMIT),
    predictions,
    bestEpoch,
  };
}

function pad(text: string, width: number, align: 'left' | 'right'): string {
  return align === 'left' ? text.padEnd(width) : text.padStart(width);
}

function table(rows: string[][], alignFirstLeft = true): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => pad(cell, widths[c], c === 0 && alignFirstLeft ? 'left' : 'right'))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * The confusion matrix (rows: actual, columns: predicted, columns headed by class number so the
 * table stays narrow with long class names), then per-class precision/recall/F1/support and the
 * averages, as plain text for a terminal.
 */
export function formatConfusionMatrix(ev: Evaluation): string {
  const k = ev.classes.length;
  const rowLabel = (c: number): string => `${c} ${ev.classes[c]}`;
  const matrixRows: string[][] = [['actual \\ predicted', ...ev.classes.map((_, c) => String(c))]];
  for (let a = 0; a < k; a++) matrixRows.push([rowLabel(a), ...ev.matrix[a].map(String)]);

  const f = (v: number): string => v.toFixed(3);
  const metricRows: string[][] = [['class', 'precision', 'recall', 'f1', 'support']];
  ev.perClass.forEach((m, c) => metricRows.push([rowLabel(c), f(m.precision), f(m.recall), f(m.f1), String(m.support)]));
  const total = String(ev.perClass.reduce((s, m) => s + m.support, 0));
  metricRows.push(['macro avg', f(ev.macro.precision), f(ev.macro.recall), f(ev.macro.f1), total]);
  metricRows.push(['weighted avg', f(ev.weighted.precision), f(ev.weighted.recall), f(ev.weighted.f1), total]);

  const correct = ev.matrix.reduce((s, row, a) => s + row[a], 0);
  const lines = [
    table(matrixRows),
    '',
    table(metricRows),
    '',
    `accuracy ${(ev.accuracy * 100).toFixed(1)}% (${correct}/${total})${ev.bestEpoch > 0 ? `, best epoch ${ev.bestEpoch}` : ''}`,
  ];
  if (ev.mostConfused.length > 0) {
    lines.push(
      'most confused: ' +
        ev.mostConfused
          .slice(0, 3)
          .map((p) => `${ev.classes[p.actual]} → ${ev.classes[p.predicted]} (${p.count})`)
          .join(', '),
    );
  }
  return lines.join('\n');
}
