// The run history behind the tree's Runs group and the panel's Runs table, read from real run
// folder files written here: order, the settings that changed since the previous run, and the
// doctor findings the map marks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunStatus } from '../../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS } from '../../../src/shared/types';
import { comparableRuns, mainSettings, readDoctorMarks, runRows } from '../../../src/extension/runHistory';
import { describeRun, listRuns } from '../../../src/extension/runIndex';
import { tempDir } from '../../support/tempDirs';

function writeRun(runsDir: string, name: string, status: Partial<RunStatus>, options?: object): string {
  const runDir = path.join(runsDir, name);
  fs.mkdirSync(runDir, { recursive: true });
  const full = {
    state: 'finished',
    datasetRoot: '/data/leaves',
    datasetName: 'leaves',
    startedAt: '',
    updatedAt: '',
    hasCheckpoint: false,
    ...status,
  };
  fs.writeFileSync(path.join(runDir, 'status.json'), JSON.stringify(full));
  if (options)
    fs.writeFileSync(path.join(runDir, 'config.json'), JSON.stringify({ datasetRoot: '/data/leaves', options, model: { id: 'x' } }));
  return runDir;
}

test('the runs table lists runs newest first with the settings changed since the run before, accuracy and time', async () => {
  const runsDir = tempDir('ut-history-');
  writeRun(runsDir, 'leaves-1', { startedAt: '2026-12-01T10:00:00.000Z', valAccuracy: 0.8 }, { ...DEFAULT_TRAIN_OPTIONS, seed: 1 });
  const second = writeRun(
    runsDir,
    'leaves-2',
    { startedAt: '2026-12-02T10:00:00.000Z', valAccuracy: 0.9 },
    { ...DEFAULT_TRAIN_OPTIONS, seed: 2, epochs: 40 },
  );
  writeRun(
    runsDir,
    'leaves-3',
    { startedAt: '2026-12-03T10:00:00.000Z', state: 'failed' },
    { ...DEFAULT_TRAIN_OPTIONS, seed: 2, epochs: 40, model: 'mobilenet_v1_0.25' },
  );
  const runs = await listRuns(runsDir);
  const rows = runRows(runs, new Map(runs.map((r) => [r.runDir, r.options])), second);
  assert.deepEqual(
    rows.map((r) => [r.name, r.state, r.model, r.accuracy, r.changes, r.current]),
    [
      ['leaves-3', 'failed', 'mobilenet_v1_0.25', undefined, ['model: mobilenet_v2_0.35 → mobilenet_v1_0.25'], false],
      ['leaves-2', 'finished', 'mobilenet_v2_0.35', 0.9, ['epochs: 20 → 40', 'seed: 1 → 2'], true],
      ['leaves-1', 'finished', 'mobilenet_v2_0.35', 0.8, [], false],
    ],
  );
  assert.deepEqual(
    comparableRuns(runs, second).map((r) => r.name),
    ['leaves-1'],
    'neither the run itself nor a failed one',
  );
  assert.equal(describeRun(runs[1]!), 'val 90.0% · finished · mobilenet_v2_0.35 · 40 epochs · seed 2');
  assert.equal(mainSettings({ model: 'm', epochs: 3, seed: 4, fineTuneLayers: 20 }), 'm · 3 epochs · seed 4 · fine-tune 20');
});

test('doctor findings of this dataset become map marks; another dataset’s doctor is not used', async () => {
  const runsDir = tempDir('ut-doctor-');
  assert.deepEqual(await readDoctorMarks(runsDir, '/data/leaves'), {});
  fs.mkdirSync(path.join(runsDir, 'doctor-a'));
  fs.mkdirSync(path.join(runsDir, 'doctor-b'));
  const report = {
    dataset: '/data/leaves',
    images: 10,
    classes: ['a', 'b'],
    labelIssues: [{ path: 'a/1.jpg', label: 'a', suggested: 'b', score: 0.9 }],
    nearDuplicates: [{ paths: ['a/2.jpg', 'b/3.jpg'], classes: ['a', 'b'], similarity: 0.99, crossesSplit: true }],
    outliers: [{ path: 'b/4.jpg', label: 'b', score: 3 }],
    weakImages: [{ path: 'b/5.jpg', problem: 'dark', value: 4 }],
    shortcuts: [],
  };
  fs.writeFileSync(path.join(runsDir, 'doctor-a', 'doctor.json'), JSON.stringify(report));
  fs.writeFileSync(
    path.join(runsDir, 'doctor-b', 'doctor.json'),
    JSON.stringify({ ...report, dataset: '/data/other', outliers: [{ path: 'x.jpg' }] }),
  );
  assert.deepEqual(await readDoctorMarks(runsDir, '/data/leaves'), {
    doctor: [
      { path: 'a/1.jpg', finding: 'may be b, not a' },
      { path: 'a/2.jpg', finding: 'near-duplicate' },
      { path: 'b/3.jpg', finding: 'near-duplicate' },
      { path: 'b/4.jpg', finding: 'outlier' },
      { path: 'b/5.jpg', finding: 'dark' },
    ],
  });
});
