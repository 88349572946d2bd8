import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunStatus } from '../../../src/shared/runFolder';
import { isRunProcessAlive, parseModelCheckpoint, PID_START_SLACK_MS, reconcileRunStatus } from '../../../src/shared/runState';

const running: RunStatus = {
  state: 'running',
  datasetRoot: '/data/leaves',
  datasetName: 'leaves',
  startedAt: '2025-01-01T10:00:00.000Z',
  updatedAt: '2025-01-01T10:01:00.000Z',
  hasCheckpoint: true,
  bestEpoch: 1,
  valAccuracy: 0.5,
  pid: 4242,
};

const epoch2 = { epoch: 2, valAccuracy: 0.75, valLoss: 0.4, stage: 'head' as const, savedAt: '2025-01-01T10:00:30.000Z' };

test('a status that names older weights than the model folder holds reads with the model folder’s epoch and accuracy', () => {
  const reading = reconcileRunStatus(running, { hasModel: true, checkpoint: epoch2 }, false);
  assert.equal(reading.state, 'interrupted');
  assert.equal(reading.status.bestEpoch, 2);
  assert.equal(reading.status.valAccuracy, 0.75);
  assert.equal(reading.correctedFromModel, true);
});

test('a model committed before status.json said so makes the run read as having a checkpoint', () => {
  const before = { ...running, hasCheckpoint: false, bestEpoch: undefined, valAccuracy: undefined };
  const reading = reconcileRunStatus(before, { hasModel: true, checkpoint: { ...epoch2, epoch: 1 } }, true);
  assert.equal(reading.state, 'running');
  assert.equal(reading.status.hasCheckpoint, true);
  assert.equal(reading.status.bestEpoch, 1);
});

test('a status that claims a checkpoint the model folder does not hold reads as having none', () => {
  const reading = reconcileRunStatus(running, { hasModel: false }, false);
  assert.equal(reading.status.hasCheckpoint, false);
  assert.equal(reading.correctedFromModel, true);
});

test('a finished run keeps its evaluated accuracy when it names the epoch the model folder holds', () => {
  const finished: RunStatus = { ...running, state: 'finished', bestEpoch: 2, valAccuracy: 0.8, pid: undefined };
  const reading = reconcileRunStatus(finished, { hasModel: true, checkpoint: epoch2 }, false);
  assert.equal(reading.state, 'finished');
  assert.equal(reading.status.valAccuracy, 0.8);
  assert.equal(reading.correctedFromModel, false);
});

test('a model folder without a record (written before records existed) leaves the status as it is', () => {
  const reading = reconcileRunStatus(running, { hasModel: true }, true);
  assert.deepEqual(reading.status, running);
  assert.equal(reading.correctedFromModel, false);
});

test('a live pid belongs to the run only if its process started before the run did', () => {
  const start = Date.parse(running.startedAt);
  assert.equal(isRunProcessAlive(running, true, start - 5000), true);
  assert.equal(isRunProcessAlive(running, true, start + PID_START_SLACK_MS + 1000), false, 'a reused pid');
  assert.equal(isRunProcessAlive(running, true, undefined), true, 'no start time known: the pid alone decides');
  assert.equal(isRunProcessAlive(running, false, start - 5000), false);
  assert.equal(isRunProcessAlive({ ...running, pid: undefined }, true), false);
});

test('the checkpoint record is found in the first bytes of a pretty-printed model.json', () => {
  const text = JSON.stringify(
    { format: 'layers-model', userDefinedMetadata: { imageTrainerCheckpoint: epoch2, imageTrainer: { labels: ['a'] } }, modelTopology: {} },
    null,
    2,
  );
  assert.deepEqual(parseModelCheckpoint(text), epoch2);
  assert.equal(parseModelCheckpoint('{"format":"layers-model","modelTopology":{}}'), undefined);
  assert.equal(parseModelCheckpoint('{"userDefinedMetadata":{"imageTrainerCheckpoint":{"epoch":"two","savedAt":"x"}}}'), undefined);
  assert.equal(parseModelCheckpoint('{"userDefinedMetadata":{"imageTrainerCheckpoint":{"epoch":1,'), undefined, 'cut short');
});
