import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSameOrInsideRealPath, outputFolderProblem } from '../../../src/shared/outputFolders';
import { valSplitProblem, VAL_SPLIT_RANGE } from '../../../src/shared/trainOptionRanges';

test('a real path is inside a folder when it is the folder or below it, not when it merely starts with its name', () => {
  assert.equal(isSameOrInsideRealPath('/x/data', '/x/data'), true);
  assert.equal(isSameOrInsideRealPath('/x/data', '/x/data/'), true);
  assert.equal(isSameOrInsideRealPath('/x/data/', '/x/data/cache/a'), true);
  assert.equal(isSameOrInsideRealPath('/x/data', '/x/data-cache'), false);
  assert.equal(isSameOrInsideRealPath('/x/data', '/x'), false);
  assert.equal(isSameOrInsideRealPath('/', '/anything'), true);
  assert.equal(isSameOrInsideRealPath('/x/Data', '/x/data/c'), false);
  assert.equal(isSameOrInsideRealPath('/x/Data', '/x/data/c', true), true);
});

test('Windows real paths compare with either separator and without case', () => {
  assert.equal(isSameOrInsideRealPath('C:\\Users\\me\\Data', 'c:/users/me/data/cache'), true);
  assert.equal(isSameOrInsideRealPath('C:\\', 'C:\\data'), true);
  assert.equal(isSameOrInsideRealPath('C:\\data', 'D:\\data'), false);
  assert.equal(isSameOrInsideRealPath('\\\\server\\share\\data', '\\\\server\\share\\data\\runs'), true);
});

test('the problem of an output folder names it, the dataset, and its real path when a link hides it', () => {
  const data = { given: '/x/data', real: '/x/data' };
  assert.equal(outputFolderProblem('runs', { given: '/x/runs', real: '/x/runs' }, data), undefined);
  assert.equal(outputFolderProblem('cache', { given: '/x', real: '/x' }, data), undefined);
  assert.equal(
    outputFolderProblem('cache', { given: '/x/data/cache', real: '/x/data/cache' }, data),
    'The cache folder /x/data/cache is inside the dataset /x/data: choose a folder outside it (nothing was written).',
  );
  assert.equal(
    outputFolderProblem('runs', { given: '/x/data', real: '/x/data' }, data),
    'The runs folder /x/data is the dataset /x/data itself: choose a folder outside it (nothing was written).',
  );
  assert.equal(
    outputFolderProblem('model cache', { given: '/x/link/m', real: '/x/data/m' }, data),
    'The model cache folder /x/link/m (really /x/data/m) is inside the dataset /x/data: choose a folder outside it (nothing was written).',
  );
});

test('the validation fraction is refused at 0 and above 0.9, in words that say why', () => {
  assert.deepEqual(VAL_SPLIT_RANGE, { min: 0.01, max: 0.9 });
  for (const ok of [0.01, 0.2, 0.9]) assert.equal(valSplitProblem(ok), undefined);
  assert.equal(
    valSplitProblem(0),
    'valSplit must be between 0.01 and 0.9, got 0: a run needs validation images to choose its best epoch and evaluate the model.',
  );
  for (const bad of [0.95, -0.1, Number.NaN]) assert.match(valSplitProblem(bad) ?? '', /^valSplit must be between 0.01 and 0.9/);
});
