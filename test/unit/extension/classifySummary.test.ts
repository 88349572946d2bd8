import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { classifySummary, formatTop, unknownText, unknownThresholdOf } from '../../../src/extension/classifySummary';
import type { PredictionLine } from '../../../src/extension/trainingCli';
import { tempDir } from '../../support/tempDirs';

const known: PredictionLine = {
  path: '/photos/leaf.jpg',
  label: 'scab',
  confidence: 0.912,
  top: [
    { label: 'scab', confidence: 0.912 },
    { label: 'healthy', confidence: 0.06 },
    { label: 'black_rot', confidence: 0.021 },
  ],
  novelty: 31.04,
  unknown: false,
};

test('Classify Image shows the top 3 for an image like the classes it knows', () => {
  assert.equal(formatTop(known), 'scab 91.2% · healthy 6.0% · black_rot 2.1%');
  assert.equal(unknownText(known, 49.54), undefined);
  assert.equal(classifySummary('leaf.jpg', known, 'leaves-1'), 'leaf.jpg: scab 91.2% · healthy 6.0% · black_rot 2.1% (model leaves-1)');
});

test('an image flagged unknown reads "unknown — unlike every class" with its novelty and the threshold, then its closest classes', () => {
  const cat = { ...known, path: '/photos/chelsea.png', novelty: 87.26, unknown: true };
  assert.equal(unknownText(cat, 49.54), 'unknown — unlike every class (novelty 87.3, threshold 49.5)');
  assert.equal(
    classifySummary('chelsea.png', cat, 'leaves-1', 49.54),
    'chelsea.png: unknown — unlike every class (novelty 87.3, threshold 49.5); closest: scab 91.2% · healthy 6.0% · black_rot 2.1% (model leaves-1)',
  );
  // A run folder without a readable threshold still says unknown, with what it knows.
  assert.equal(unknownText(cat, undefined), 'unknown — unlike every class (novelty 87.3)');
});

test('the threshold is read from the model folder, and a missing or broken metadata.json gives none', async () => {
  const runDir = tempDir('classify-threshold-');
  assert.equal(await unknownThresholdOf(runDir), undefined);
  fs.mkdirSync(path.join(runDir, 'model'));
  fs.writeFileSync(path.join(runDir, 'model', 'metadata.json'), '{"unknownThreshold": 49.54, "labels": ["a"]}');
  assert.equal(await unknownThresholdOf(runDir), 49.54);
  fs.writeFileSync(path.join(runDir, 'model', 'metadata.json'), '{"unknownThreshold": "high"}');
  assert.equal(await unknownThresholdOf(runDir), undefined);
  fs.writeFileSync(path.join(runDir, 'model', 'metadata.json'), '{broken');
  assert.equal(await unknownThresholdOf(runDir), undefined);
});
