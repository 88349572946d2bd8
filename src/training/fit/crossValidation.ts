// K-fold cross-validation of the head on cached feature vectors: every row is predicted by a head
// that never saw it. The dataset doctor ranks label issues from these out-of-sample probabilities,
// and the recipe search compares candidate recipes on them without touching the validation images.
//
// Folds are stratified (each class spread evenly over the folds), seeded, and keep the rows of one
// group (copies of one photo, several views of one image) in one fold, so no fold is predicted by a
// head that trained on another copy of the same photo.
import type { TrainOptions } from '../../shared/types';
import type { HeadRuntime } from '../onnx/onnxHead';
import { seededRandom, shuffledIndices } from '../util/random';
import type { Tf } from '../util/tf';
import { buildHead, predictProbs, trainHead, type FeatureSet } from './head';

/**
 * The fold (0 … k-1) of every row. Groups (rows with the same `groups` value; every row its own
 * group when absent) are dealt class by class, in a seeded order, each to the fold of that class
 * that holds the fewest rows so far, so every class is spread evenly and a group never splits.
 * A group's class is that of its first row.
 */
export function stratifiedFolds(y: ArrayLike<number>, k: number, seed: number, groups?: ArrayLike<number>): Int32Array {
  if (!Number.isInteger(k) || k < 2) throw new RangeError(`Cross-validation needs at least 2 folds, got ${k}`);
  const members = new Map<number, number[]>();
  for (let i = 0; i < y.length; i++) {
    const g = groups ? groups[i] : i;
    let rows = members.get(g);
    if (!rows) members.set(g, (rows = []));
    rows.push(i);
  }
  const byClass = new Map<number, number[][]>();
  for (const rows of members.values()) {
    const c = y[rows[0]];
    let list = byClass.get(c);
    if (!list) byClass.set(c, (list = []));
    list.push(rows);
  }
  const random = seededRandom(seed >>> 0);
  const folds = new Int32Array(y.length);
  const totals = new Array<number>(k).fill(0);
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const groupsOfClass = byClass.get(c)!;
    // A seeded order; then larger groups first (a stable sort), so the small ones even out the folds.
    const list = Array.from(shuffledIndices(groupsOfClass.length, random), (i) => groupsOfClass[i]);
    list.sort((a, b) => b.length - a.length);
    const perClass = new Array<number>(k).fill(0);
    for (const rows of list) {
      let best = 0;
      for (let f = 1; f < k; f++) {
        if (perClass[f] < perClass[best] || (perClass[f] === perClass[best] && totals[f] < totals[best])) best = f;
      }
      for (const r of rows) folds[r] = best;
      perClass[best] += rows.length;
      totals[best] += rows.length;
    }
  }
  return folds;
}

/** The rows of `set` listed in `rows`, in that order. */
export function subsetRows(set: FeatureSet, rows: ArrayLike<number>): FeatureSet {
  const f = set.featureSize;
  const x = new Float32Array(rows.length * f);
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    x.set(set.x.subarray(r * f, (r + 1) * f), i * f);
    y[i] = set.y[r];
  }
  return { x, y, n: rows.length, featureSize: f };
}

export interface CrossValidationSpec {
  folds: number;
  seed: number;
  /** Rows that must share a fold (same value = same group). */
  groups?: ArrayLike<number>;
  signal?: AbortSignal;
  /** Told after each fold. */
  onFold?(done: number, total: number): void;
}

export interface OutOfSample {
  /** n × classes probabilities, row by row: row i from the head of the fold that left i out. */
  probs: Float32Array;
  folds: Int32Array;
  /** Share of rows whose out-of-sample arg-max is their label. */
  accuracy: number;
}

/**
 * Out-of-sample class probabilities for every row of `set`: for each fold a fresh head (the run's
 * options, seeded) trains on the other folds for `options.epochs` epochs — with no validation rows,
 * so the held-out fold decides nothing (no early stopping or LR schedule on it) — and predicts the
 * fold.
 */
export async function outOfSampleProbs(
  tf: Tf,
  set: FeatureSet,
  numClasses: number,
  options: TrainOptions,
  spec: CrossValidationSpec,
  runtime: HeadRuntime = { kind: 'tfjs' },
): Promise<OutOfSample> {
  const folds = stratifiedFolds(set.y, spec.folds, spec.seed, spec.groups);
  const probs = new Float32Array(set.n * numClasses);
  const empty: FeatureSet = { x: new Float32Array(0), y: new Int32Array(0), n: 0, featureSize: set.featureSize };
  let hits = 0;
  for (let f = 0; f < spec.folds; f++) {
    const trainRows: number[] = [];
    const testRows: number[] = [];
    for (let i = 0; i < set.n; i++) (folds[i] === f ? testRows : trainRows).push(i);
    if (testRows.length === 0) continue;
    const head = buildHead(tf, set.featureSize, numClasses, { ...options, seed: options.seed + f });
    try {
      await trainHead(tf, head, subsetRows(set, trainRows), empty, numClasses, options, { signal: spec.signal }, runtime);
      const p = await predictProbs(tf, head, subsetRows(set, testRows));
      testRows.forEach((r, i) => {
        const row = p.subarray(i * numClasses, (i + 1) * numClasses);
        probs.set(row, r * numClasses);
        let arg = 0;
        for (let c = 1; c < numClasses; c++) if (row[c] > row[arg]) arg = c;
        if (arg === set.y[r]) hits++;
      });
    } finally {
      head.dispose();
    }
    spec.onFold?.(f + 1, spec.folds);
  }
  return { probs, folds, accuracy: set.n > 0 ? hits / set.n : 0 };
}
