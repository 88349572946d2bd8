import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunStatus } from '../../../src/shared/runFolder';
import {
  closeInterruptedRun,
  describeRun,
  isInside,
  latestFinishedRun,
  listRuns,
  readRunStatus,
  runsOfDataset,
  runsWithModel,
} from '../../../src/extension/runIndex';
import { tempDir } from '../../support/tempDirs';

function writeRun(runsDir: string, name: string, status: Partial<RunStatus>): string {
  const runDir = path.join(runsDir, name);
  fs.mkdirSync(runDir, { recursive: true });
  const full: RunStatus = {
    state: 'finished',
    datasetRoot: '/data/leaves',
    datasetName: 'leaves',
    startedAt: '2025-01-01T10:00:00.000Z',
    updatedAt: '2025-01-01T10:01:00.000Z',
    hasCheckpoint: true,
    ...status,
  };
  fs.writeFileSync(path.join(runDir, 'status.json'), JSON.stringify(full));
  return runDir;
}

test('runs are listed newest first, with unreadable folders left out and dead running runs marked interrupted', async () => {
  const runsDir = tempDir('it-runs-');
  const finished = writeRun(runsDir, 'leaves-20250101-100000', { valAccuracy: 0.9 });
  // Its model folder holds the checkpoint the status names (a listing checks it is there).
  fs.mkdirSync(path.join(finished, 'model'));
  fs.writeFileSync(path.join(finished, 'model', 'model.json'), '{}');
  writeRun(runsDir, 'leaves-20250102-100000', {
    startedAt: '2025-01-02T10:00:00.000Z',
    state: 'running',
    pid: 2 ** 22 + 12345,
    hasCheckpoint: false,
  });
  // A live run: its process (this one) started before the run did.
  writeRun(runsDir, 'flowers-20250103-100000', {
    startedAt: new Date().toISOString(),
    datasetRoot: '/data/flowers',
    state: 'running',
    pid: process.pid,
  });
  fs.mkdirSync(path.join(runsDir, 'garbage'));
  fs.writeFileSync(path.join(runsDir, 'garbage', 'status.json'), '{ not json');
  const runs = await listRuns(runsDir);
  assert.deepEqual(
    runs.map((r) => [r.name, r.interrupted]),
    [
      ['flowers-20250103-100000', false],
      ['leaves-20250102-100000', true],
      ['leaves-20250101-100000', false],
    ],
  );
  const ofLeaves = runsOfDataset(runs, '/data/leaves/');
  assert.equal(ofLeaves.length, 2);
  assert.equal(latestFinishedRun(ofLeaves)?.name, 'leaves-20250101-100000');
  assert.equal(describeRun(ofLeaves[1]), 'val 90.0% · finished');
  assert.equal(describeRun(ofLeaves[0]), 'interrupted');
  assert.deepEqual(await listRuns(path.join(runsDir, 'missing')), []);
});

test('a run left running by a dead process is closed as failed, atomically, and a final run is left alone', async () => {
  const runsDir = tempDir('it-runs-');
  const running = writeRun(runsDir, 'a', { state: 'running', pid: 123 });
  const finished = writeRun(runsDir, 'b', { state: 'finished' });
  assert.equal(await closeInterruptedRun(running, 'failed', 'The training process was killed (SIGKILL).'), true);
  const status = await readRunStatus(running);
  assert.equal(status?.state, 'failed');
  assert.equal(status?.message, 'The training process was killed (SIGKILL).');
  assert.equal(status?.pid, undefined);
  assert.deepEqual(fs.readdirSync(running), ['status.json'], 'no temporary file left behind');
  assert.equal(await closeInterruptedRun(finished, 'failed', 'x'), false);
  assert.equal((await readRunStatus(finished))?.state, 'finished');
});

test('isInside accepts the folder itself and its descendants only', () => {
  assert.equal(isInside('/a/b', '/a/b'), true);
  assert.equal(isInside('/a/b', '/a/b/c/d.jpg'), true);
  assert.equal(isInside('/a/b', '/a/bc'), false);
  assert.equal(isInside('/a/b', '/a/b/../c'), false);
});

test('a run killed between its model.json rename and its status update lists with the model folder’s epoch, as interrupted', async () => {
  const runsDir = tempDir('it-runs-');
  // status.json from an older checkpoint, its pid now someone else's: this process, started after the run.
  const runDir = writeRun(runsDir, 'leaves-20250101-100000', { state: 'running', pid: process.pid, bestEpoch: 1, valAccuracy: 0.5 });
  fs.mkdirSync(path.join(runDir, 'model'));
  const checkpoint = { epoch: 2, valAccuracy: 0.75, valLoss: 0.4, stage: 'head', savedAt: '2025-01-01T10:00:30.000Z' };
  fs.writeFileSync(
    path.join(runDir, 'model', 'model.json'),
    JSON.stringify({ format: 'layers-model', userDefinedMetadata: { imageTrainerCheckpoint: checkpoint }, modelTopology: {} }, null, 2),
  );
  const [run] = await listRuns(runsDir);
  assert.equal(run.interrupted, true, 'a pid reused by a process that started after the run is not the run');
  assert.equal(run.status.bestEpoch, 2);
  assert.equal(run.status.valAccuracy, 0.75);
  assert.equal(describeRun(run), 'val 75.0% · interrupted');
  assert.deepEqual(runsWithModel([run]), [run], 'its checkpoint can classify');
});
