import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { applyView, RECIPE_VIEWS, VIEW_NAMES, VIEW_SPECS, viewCacheKey } from '../../../src/shared/views';
import { decodeImage } from '../../../src/training/dataset/imageDecoder';

const SIZE = 224;
const leaf = path.resolve(__dirname, '../../../samples/leaves/scab/scab_01.jpg');

/** The view built from tfjs ops (reverse rows, reverse columns, transpose), independently of applyView. */
function viewByTf(pixels: Uint8Array, name: keyof typeof VIEW_SPECS): Uint8Array {
  const { v, h, t } = VIEW_SPECS[name];
  return tf.tidy(() => {
    let x: tf.Tensor = tf.tensor4d(pixels, [1, SIZE, SIZE, 3], 'int32');
    const axes = [...(v ? [1] : []), ...(h ? [2] : [])];
    if (axes.length) x = tf.reverse(x, axes);
    if (t) x = tf.transpose(x, [0, 2, 1, 3]);
    return Uint8Array.from(x.dataSync());
  });
}

describe('views of a decoded image', () => {
  let pixels: Uint8Array;
  before(async () => {
    await tf.setBackend('wasm');
    pixels = await decodeImage(leaf, SIZE, 1e8);
  });

  it('are the transforms tfjs reverse and transpose give, for all eight', () => {
    for (const name of VIEW_NAMES) assert.deepEqual(applyView(pixels, 1, SIZE, name), viewByTf(pixels, name), name);
  });

  it('are eight different images of a real photo, and the identity is a copy', () => {
    const seen = new Set(VIEW_NAMES.map((name) => Buffer.from(applyView(pixels, 1, SIZE, name)).toString('base64')));
    assert.equal(seen.size, 8);
    const copy = applyView(pixels, 1, SIZE, 'identity');
    assert.notEqual(copy, pixels);
    assert.deepEqual(copy, pixels);
  });

  it('turn a quarter counter-clockwise with rot90: the right column becomes the top row, four turns give the image back', () => {
    const turned = applyView(pixels, 1, SIZE, 'rot90');
    for (let c = 0; c < SIZE; c++) {
      const from = (c * SIZE + (SIZE - 1)) * 3;
      assert.deepEqual(turned.subarray(c * 3, c * 3 + 3), pixels.subarray(from, from + 3));
    }
    let x = pixels;
    for (let i = 0; i < 4; i++) x = applyView(x, 1, SIZE, 'rot90');
    assert.deepEqual(x, pixels);
    assert.deepEqual(applyView(applyView(pixels, 1, SIZE, 'rot90'), 1, SIZE, 'rot270'), pixels);
  });

  it('transform every image of a batch on its own', () => {
    const other = applyView(pixels, 1, SIZE, 'rot180');
    const batch = new Uint8Array(2 * pixels.length);
    batch.set(pixels, 0);
    batch.set(other, pixels.length);
    const out = applyView(batch, 2, SIZE, 'flip-h');
    assert.deepEqual(out.subarray(0, pixels.length), applyView(pixels, 1, SIZE, 'flip-h'));
    assert.deepEqual(out.subarray(pixels.length), applyView(other, 1, SIZE, 'flip-h'));
  });
});

describe('recipes and cache keys', () => {
  it('list the identity first, and plain, flip and dihedral have 1, 2 and 8 distinct views', () => {
    assert.deepEqual(
      Object.values(RECIPE_VIEWS).map((v) => [v[0], new Set(v).size]),
      [
        ['identity', 1],
        ['identity', 2],
        ['identity', 8],
      ],
    );
  });

  it('file the identity under the base key (plain runs keep their cache) and every other view under its own', () => {
    assert.equal(viewCacheKey('mobilenet|fused', 'identity'), 'mobilenet|fused');
    assert.equal(new Set(VIEW_NAMES.map((v) => viewCacheKey('k', v))).size, 8);
  });
});
