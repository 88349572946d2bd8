import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_TRAIN_OPTIONS } from '../../../src/shared/types';
import { configurationProperties, TRAIN_OPTION_SPECS, validateSettings } from '../../../src/extension/settingsSchema';

const repoRoot = path.resolve(import.meta.dirname, '../../..');

function settingsFrom(values: Record<string, unknown>) {
  return validateSettings((name) => values[name]);
}

test('unset settings give exactly the engine defaults and no problems', () => {
  const { settings, problems } = settingsFrom({});
  assert.deepEqual(settings.train, DEFAULT_TRAIN_OPTIONS);
  assert.equal(settings.runsFolder, '');
  assert.equal(settings.cacheFolder, '');
  assert.deepEqual(problems, []);
});

test('valid values are used, numbers written as strings included', () => {
  const { settings, problems } = settingsFrom({
    epochs: 7,
    learningRate: '0.01',
    backend: 'wasm',
    classWeights: true,
    runsFolder: ' runs ',
  });
  assert.deepEqual(problems, []);
  assert.equal(settings.train.epochs, 7);
  assert.equal(settings.train.learningRate, 0.01);
  assert.equal(settings.train.backend, 'wasm');
  assert.equal(settings.train.classWeights, true);
  assert.equal(settings.runsFolder, 'runs');
});

test('NaN, out-of-range, fractional and wrongly typed values are refused with a message naming the setting', () => {
  const { settings, problems } = settingsFrom({
    epochs: 0,
    batchSize: 12.5,
    learningRate: Number.NaN,
    valSplit: 'a fifth',
    classWeights: 'yes',
    backend: 'cuda',
    model: '   ',
    cacheFolder: 42,
  });
  assert.deepEqual(settings.train, DEFAULT_TRAIN_OPTIONS, 'every refused value falls back to its default');
  const byKey = new Map(problems.map((p) => [p.key, p.message]));
  assert.deepEqual([...byKey.keys()].sort(), [
    'imageTrainer.backend',
    'imageTrainer.batchSize',
    'imageTrainer.cacheFolder',
    'imageTrainer.classWeights',
    'imageTrainer.epochs',
    'imageTrainer.learningRate',
    'imageTrainer.model',
    'imageTrainer.valSplit',
  ]);
  assert.equal(
    byKey.get('imageTrainer.epochs'),
    'Setting "imageTrainer.epochs" is 0; it must be a whole number from 1 to 1000. Using the default, 20.',
  );
  assert.match(byKey.get('imageTrainer.learningRate') ?? '', /is NaN; it must be a number from 1e-7 to 1/);
  assert.match(byKey.get('imageTrainer.backend') ?? '', /"cuda"; it must be one of "auto", "gpu", "cpu-native", "wasm"/);
  assert.match(byKey.get('imageTrainer.classWeights') ?? '', /must be true or false/);
});

test('package.json declares one setting per training option with the engine default and the same bounds', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const declared = pkg.contributes.configuration.properties as Record<string, Record<string, unknown>>;
  assert.deepEqual(declared, configurationProperties(), 'package.json is out of date with settingsSchema.ts');
  for (const name of Object.keys(DEFAULT_TRAIN_OPTIONS)) {
    const entry = declared[`imageTrainer.${name}`];
    assert.ok(entry, `imageTrainer.${name} is declared`);
    assert.deepEqual(entry.default, DEFAULT_TRAIN_OPTIONS[name as keyof typeof DEFAULT_TRAIN_OPTIONS]);
    assert.ok(typeof entry.markdownDescription === 'string' && entry.markdownDescription.length > 10);
  }
  assert.deepEqual(Object.keys(TRAIN_OPTION_SPECS).sort(), Object.keys(DEFAULT_TRAIN_OPTIONS).sort());
  assert.ok(declared['imageTrainer.runsFolder'] && declared['imageTrainer.cacheFolder']);
});

test('every default passes its own validation', () => {
  const { problems } = settingsFrom({ ...DEFAULT_TRAIN_OPTIONS, runsFolder: '', cacheFolder: '' });
  assert.deepEqual(problems, []);
});
