import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ACTIVATION_VIEW_SETS,
  VIEW_FLIP_H,
  VIEW_FLIP_W,
  VIEW_TRANSPOSE,
  viewActivations,
  viewRows,
} from '../../../../src/training/fit/activationViews';

/** A 3×3 map with 2 channels whose values say where they are: (row, column, channel) → 100·row + 10·column + channel. */
function labelled(h = 3, w = 3, c = 2): Float32Array {
  const x = new Float32Array(h * w * c);
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let k = 0; k < c; k++) x[(i * w + j) * c + k] = 100 * i + 10 * j + k;
  return x;
}

/** (row, column) of the cell that landed at (i, j), from its labelled value. */
function source(map: Float32Array, i: number, j: number, w = 3, c = 2): [number, number] {
  const v = map[(i * w + j) * c];
  return [Math.floor(v / 100), Math.floor((v % 100) / 10)];
}

const view = (v: number, src = labelled()) => viewActivations(src, 3, 3, 2, v, new Float32Array(src.length));

describe('views of activation maps', () => {
  it('flip left–right and top–bottom, transpose, and move every channel of a cell together', () => {
    assert.deepEqual(source(view(VIEW_FLIP_W), 0, 0), [0, 2]);
    assert.deepEqual(source(view(VIEW_FLIP_H), 0, 0), [2, 0]);
    assert.deepEqual(source(view(VIEW_TRANSPOSE), 0, 1), [1, 0]);
    const flipped = view(VIEW_FLIP_W);
    assert.equal(flipped[1] - flipped[0], 1, 'channel 1 follows channel 0 of the same cell');
  });

  it('are the eight distinct symmetries of a square: each flip twice is the identity, a quarter turn four times is too', () => {
    const all = ACTIVATION_VIEW_SETS.dihedral.map((v) => Array.from(view(v)).join(','));
    assert.equal(new Set(all).size, 8);
    assert.deepEqual(view(VIEW_FLIP_W, view(VIEW_FLIP_W)), labelled());
    const quarter = VIEW_TRANSPOSE | VIEW_FLIP_W;
    let x = labelled();
    for (let k = 0; k < 4; k++) x = view(quarter, x);
    assert.deepEqual(x, labelled());
    assert.notDeepEqual(view(quarter, view(quarter)), labelled(), 'a half turn is not the identity');
  });

  it('refuse to transpose a map that is not square, and flip one', () => {
    const src = labelled(2, 3, 1);
    assert.throws(() => viewActivations(src, 2, 3, 1, VIEW_TRANSPOSE, new Float32Array(6)), /cannot transpose a 2×3 map/);
    const out = viewActivations(src, 2, 3, 1, VIEW_FLIP_H | VIEW_FLIP_W, new Float32Array(6));
    assert.deepEqual(Array.from(out), [120, 110, 100, 20, 10, 0]);
  });

  it('viewRows applies each row its own view in place and leaves identity rows untouched', () => {
    const rows = new Float32Array(3 * 18);
    for (let r = 0; r < 3; r++) rows.set(labelled(), r * 18);
    viewRows(rows, [3, 3, 2], [0, VIEW_FLIP_W, VIEW_FLIP_H], new Float32Array(18));
    assert.deepEqual(rows.subarray(0, 18), labelled());
    assert.deepEqual(rows.subarray(18, 36), view(VIEW_FLIP_W));
    assert.deepEqual(rows.subarray(36, 54), view(VIEW_FLIP_H));
  });
});
