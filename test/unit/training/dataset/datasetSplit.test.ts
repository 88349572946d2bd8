import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { type SplitInput, splitKey, stratifiedSplit, validationCount } from '../../../../src/training/dataset/datasetSplit';

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

test('each class sends exactly ⌈valSplit · n⌉ of its distinct images to validation, the first by rank key', () => {
  const input = [...items(0, 1000), ...items(1, 400), ...items(2, 50), ...items(3, 30)];
  const sides = stratifiedSplit(input, 0.2, 42);
  for (const [classIndex, size] of [
    [0, 1000],
    [1, 400],
    [2, 50],
    [3, 30],
  ]) {
    const rows = input.map((it, i) => ({ it, side: sides[i] })).filter(({ it }) => it.classIndex === classIndex);
    const val = rows.filter((r) => r.side === 'val');
    assert.equal(val.length, Math.ceil(0.2 * size), `class ${classIndex}`);
    // The validation files are the ones with the smallest keys.
    const ranked = rows.map((r) => splitKey(r.it.sha256, 42)).sort((a, b) => a - b);
    assert.ok(val.every((r) => splitKey(r.it.sha256, 42) <= ranked[val.length - 1]));
  }
  assert.equal(validationCount(7, 0.2), 2);
  assert.equal(validationCount(5, 0.2), 1);
  assert.equal(validationCount(2, 0.9), 1);
  assert.equal(validationCount(1, 0.5), 0);
});

test('adding a file to a class moves at most one other file of it', () => {
  for (let n = 2; n < 60; n++) {
    const before = items(0, n);
    const after = items(0, n + 1);
    const sidesBefore = stratifiedSplit(before, 0.2, 7);
    const sidesAfter = stratifiedSplit(after, 0.2, 7);
    const moved = before.filter((_, i) => sidesAfter[i] !== sidesBefore[i]).length;
    assert.ok(moved <= 1, `n=${n}: ${moved} files moved`);
  }
  // The order of the input does not matter.
  const input = [...items(0, 500), ...items(1, 450), ...items(2, 100)];
  assert.deepEqual(stratifiedSplit([...input].reverse(), 0.2, 7).reverse(), stratifiedSplit(input, 0.2, 7));
});

test('groups share a side, and the class shares stay within one group of exact', () => {
  const input = [...items(0, 200), ...items(1, 200)];
  // Groups of 3 consecutive files of a class (a photo and two resized copies), one group across the classes.
  const groups = input.map((_, i) => Math.floor(i / 3));
  groups[200] = groups[0];
  const sides = stratifiedSplit(input, 0.2, 9, groups);
  const sideOfGroup = new Map<number, string>();
  groups.forEach((g, i) => {
    const seen = sideOfGroup.get(g);
    if (seen) assert.equal(sides[i], seen, `group ${g} is on one side`);
    else sideOfGroup.set(g, sides[i]);
  });
  for (const c of [0, 1]) {
    const val = sides.filter((s, i) => s === 'val' && input[i].classIndex === c).length;
    assert.ok(val >= 40 && val < 40 + 3, `class ${c}: ${val} in validation`);
  }
});

test('the seed decides the split', () => {
  const input = items(0, 200);
  assert.deepEqual(stratifiedSplit(input, 0.2, 1), stratifiedSplit(input, 0.2, 1));
  assert.notDeepEqual(stratifiedSplit(input, 0.2, 1), stratifiedSplit(input, 0.2, 2));
});

test('every class with at least two distinct images gets one validation and one training image', () => {
  const input = Array.from({ length: 200 }, (_, c) => items(c, 2 + (c % 4))).flat();
  const sides = stratifiedSplit(input, 0.2, 42);
  for (let c = 0; c < 200; c++) {
    const classSides = sides.filter((_, i) => input[i].classIndex === c);
    assert.ok(classSides.includes('val'), `class ${c} has a validation image`);
    assert.ok(classSides.includes('train'), `class ${c} has a training image`);
  }
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
