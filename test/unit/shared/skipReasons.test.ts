// The words for skipped files that the CLI, report.md and the panel share, and the cap that keeps a
// link to a system folder from putting thousands of paths in each of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capSkipped, skippedLines, summarizeSkipped } from '../../../src/shared/skipReasons';
import type { SkippedFile } from '../../../src/shared/types';

const icons: SkippedFile[] = Array.from({ length: 5003 }, (_, i) => ({
  path: `daisy/share/icon${i}.png`,
  reason: 'external-symlink',
  detail: 'symlink outside the dataset folder: not followed',
}));

test('the terminal gets one summary line for one reason, with the first paths, not 5,003 of them', () => {
  const { skipped, unlisted } = capSkipped(icons);
  assert.deepEqual(skippedLines(skipped, unlisted), [
    'Skipped 5,003 files: 5,003 outside the dataset (symlinks; first: daisy/share/icon0.png, daisy/share/icon1.png, daisy/share/icon2.png …)',
  ]);
});

test('several reasons give a total and one line per reason, largest first', () => {
  const skipped: SkippedFile[] = [
    { path: 'a/notes.txt', reason: 'not-image', detail: 'text file' },
    { path: 'a/x.jpg', reason: 'empty', detail: '0 bytes' },
    { path: 'b/y.jpg', reason: 'not-image', detail: 'text file' },
  ];
  assert.deepEqual(skippedLines(skipped), [
    'Skipped 3 files:',
    '  2 not images (first: a/notes.txt, b/y.jpg)',
    '  1 empty file (first: a/x.jpg)',
  ]);
  assert.deepEqual(skippedLines([]), []);
});

test('capping keeps the first 200 paths of each reason, in order, and counts the rest per reason', () => {
  const other: SkippedFile = { path: 'rose/notes.txt', reason: 'not-image', detail: 'text file' };
  const { skipped, unlisted } = capSkipped([...icons.slice(0, 250), other]);
  assert.equal(skipped.length, 201);
  assert.equal(skipped[199].path, 'daisy/share/icon199.png');
  assert.equal(skipped[200], other);
  assert.deepEqual(unlisted, { 'external-symlink': 50 });
  assert.equal(summarizeSkipped(skipped, unlisted), '251 files skipped: 250 outside the dataset (symlinks), 1 not an image');
});
