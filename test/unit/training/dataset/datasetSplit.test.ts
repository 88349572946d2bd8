import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type SplitInput, splitKey, stratifiedSplit } from '../../../../src/training/dataset/datasetSplit';

/** Stand-in content hashes: sha256 of a name, as the scanner would compute for distinct files. */
function sha(name: string): string {
  return createHash('sha256').update(name).digest('hex');
}

function items(classIndex: number, count: number, prefix = `c${classIndex}-`): SplitInput[] {
  return Array.from({ length: count }, (_, i) => ({ classIndex, sha256: sha(`${prefix}${i}`) }));
}

test('split keys are numbers in [0, 1) that depend only on the content hash and the seed', () => {
  const keys = Array.from({ length: 1000 }, (_, i) => splitKey(sha(`f${i}`), 42));
  assert.ok(keys.every((k) => k >= 0 && k < 1));
  assert.equal(splitKey(sha('f1'), 42), keys[1]);
  assert.notEqual(splitKey(sha('f1'), 43), keys[1]);
  const mean = keys.reduce((a, b) => a + b, 0) / keys.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
});

test('each large class sends about valSplit of its images to validation', () => {
  const input = [...items(0, 1000), ...items(1, 400), ...items(2, 50)];
  const sides = stratifiedSplit(input, 0.2, 42);
  for (const [classIndex, size] of [
    [0, 1000],
    [1, 400],
    [2, 50],
  ]) {
    const val = sides.filter((s, i) => s === 'val' && input[i].classIndex === classIndex).length;
    // Binomial: 4 standard deviations either way.
    const sd = Math.sqrt(size * 0.2 * 0.8);
    assert.ok(Math.abs(val - size * 0.2) < 4 * sd, `class ${classIndex}: ${val} of ${size} in val`);
  }
});

test('adding files leaves the side of every existing file unchanged', () => {
  const before = [...items(0, 300), ...items(1, 300)];
  const after = [...items(0, 500), ...items(1, 450), ...items(2, 100)];
  const sidesBefore = stratifiedSplit(before, 0.2, 7);
  const sidesAfter = stratifiedSplit(after, 0.2, 7);
  const bySha = new Map(after.map((it, i) => [it.sha256, sidesAfter[i]]));
  before.forEach((it, i) => assert.equal(bySha.get(it.sha256), sidesBefore[i]));
  // The order of the input does not matter either.
  const reversed = stratifiedSplit([...after].reverse(), 0.2, 7).reverse();
  assert.deepEqual(reversed, sidesAfter);
});

test('the seed decides the split', () => {
  const input = items(0, 200);
  assert.deepEqual(stratifiedSplit(input, 0.2, 1), stratifiedSplit(input, 0.2, 1));
  assert.notDeepEqual(stratifiedSplit(input, 0.2, 1), stratifiedSplit(input, 0.2, 2));
});

test('every class with at least two distinct images gets one validation and one training image', () => {
  // Many small classes: with valSplit 0.2 some would have no validation image by hash alone.
  const input = Array.from({ length: 200 }, (_, c) => items(c, 2 + (c % 4))).flat();
  const sides = stratifiedSplit(input, 0.2, 42);
  let forced = 0;
  for (let c = 0; c < 200; c++) {
    const classSides = sides.filter((_, i) => input[i].classIndex === c);
    assert.ok(classSides.includes('val'), `class ${c} has a validation image`);
    assert.ok(classSides.includes('train'), `class ${c} has a training image`);
    const byHash = input.filter((it) => it.classIndex === c).map((it) => (splitKey(it.sha256, 42) < 0.2 ? 'val' : 'train'));
    if (!byHash.includes('val')) forced++;
  }
  assert.ok(forced > 50, `the guarantee was exercised (${forced} classes)`);
  // A high valSplit would put whole small classes in validation: one image stays in training.
  const high = stratifiedSplit(items(0, 2), 0.9, 3);
  assert.deepEqual([...high].sort(), ['train', 'val']);
});

test('a class with a single image, or copies of one image, stays in training', () => {
  const single = stratifiedSplit([{ classIndex: 0, sha256: sha('only') }, ...items(1, 10)], 0.2, 42);
  assert.equal(single[0], 'train');
  const copies = stratifiedSplit(
    [
      { classIndex: 0, sha256: sha('x') },
      { classIndex: 0, sha256: sha('x') },
    ],
    0.2,
    42,
  );
  assert.deepEqual(copies, ['train', 'train']);
});

test('identical files land on the same side, within a class and across classes', () => {
  const input = [...items(0, 50), ...items(1, 50)];
  const dups = input.slice(0, 20).map((it) => ({ classIndex: 1, sha256: it.sha256 }));
  const all = [...input, ...dups, ...input.slice(0, 20)];
  const sides = stratifiedSplit(all, 0.3, 5);
  const bySha = new Map<string, string>();
  all.forEach((it, i) => {
    const seen = bySha.get(it.sha256);
    if (seen) assert.equal(sides[i], seen, 'copies share a side');
    else bySha.set(it.sha256, sides[i]);
  });
});

test('a validation split of 0 puts everything in training; out-of-range splits are refused', () => {
  assert.ok(stratifiedSplit(items(0, 20), 0, 1).every((s) => s === 'train'));
  assert.throws(() => stratifiedSplit(items(0, 2), 1, 1), /at least 0 and below 1, got 1/);
  assert.throws(() => stratifiedSplit(items(0, 2), -0.1, 1), RangeError);
  assert.throws(() => stratifiedSplit(items(0, 2), Number.NaN, 1), RangeError);
});
