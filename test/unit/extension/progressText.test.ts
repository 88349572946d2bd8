import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeProgress, formatDuration, overallPercent } from '../../../src/extension/progressText';

test('durations read as minutes:seconds, with hours when needed', () => {
  assert.equal(formatDuration(0), '0:00');
  assert.equal(formatDuration(65), '1:05');
  assert.equal(formatDuration(3723), '1:02:03');
  assert.equal(formatDuration(-5), '0:00');
});

test('a progress report reads as stage, epoch, speed and ETA', () => {
  assert.equal(
    describeProgress({ stage: 'head', done: 3, total: 10, epoch: 4, epochs: 20, etaSec: 75 }),
    'Training the classifier · epoch 4 of 20 · ETA 1:15',
  );
  assert.equal(
    describeProgress({ stage: 'features', done: 40, total: 120, imagesPerSec: 61.7 }),
    'Extracting features · 40 of 120 · 62 images/s',
  );
});

test('the overall percentage grows through the stages', () => {
  const points = [
    overallPercent({ stage: 'scan', done: 0, total: 0 }),
    overallPercent({ stage: 'features', done: 60, total: 120 }),
    overallPercent({ stage: 'head', done: 1, total: 10 }),
    overallPercent({ stage: 'fine-tune', done: 5, total: 10 }),
    overallPercent({ stage: 'evaluate', done: 30, total: 30 }),
    overallPercent({ stage: 'save', done: 1, total: 1 }),
  ];
  assert.deepEqual(
    points,
    [...points].sort((a, b) => a - b),
  );
  assert.equal(points[1], 27.5);
  assert.equal(points[5], 100);
});
