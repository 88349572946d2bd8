import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import type { RunStatus } from '../../../../src/shared/runFolder';
import {
  createRunFolder,
  defaultRunsDir,
  removeCrashedRunsTempFiles,
  runFolderName,
  RunFolderWriter,
} from '../../../../src/training/run/runFolderWriter';
import { writeJsonAtomic } from '../../../../src/training/util/atomicWrite';
import { isInside } from '../../../../src/training/util/paths';
import { ProgressThrottle, RateMeter } from '../../../../src/training/run/progressThrottle';
import { smallDisk } from '../../../support/smallDisk';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'it-runfolder-'));

test('run folder names carry the dataset and a sortable local timestamp', () => {
  assert.equal(runFolderName('my leaves', new Date(2026, 0, 2, 3, 4, 5)), 'my_leaves-20260102-030405');
});

test('a second run in the same second gets its own folder', async () => {
  const root = tmp();
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  const runs = path.join(root, 'runs');
  const now = new Date(2026, 0, 2, 3, 4, 5);
  const a = await createRunFolder(runs, data, 'data', now);
  const b = await createRunFolder(runs, data, 'data', now);
  assert.notEqual(a, b);
  assert.ok(fs.statSync(b).isDirectory());
});

test('a runs folder inside the dataset is refused, and the default moves next to the dataset', async () => {
  const root = tmp();
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  await assert.rejects(createRunFolder(path.join(data, 'runs'), data, 'data', new Date()), {
    name: 'TrainerError',
    kind: 'options',
    message: `The runs folder ${path.join(data, 'runs')} is inside the dataset ${data}: choose a folder outside it (nothing was written).`,
  });
  assert.deepEqual(fs.readdirSync(data), []);
  assert.equal(defaultRunsDir(data, data), path.join(root, '.image-trainer', 'runs'));
  assert.equal(defaultRunsDir(root, data), path.join(root, '.image-trainer', 'runs'));
  assert.equal(isInside(data, path.join(data, 'x')), true);
  assert.equal(isInside(data, path.join(root, 'data2')), false);
});

test('atomic JSON writes leave no temporary files behind', async () => {
  const dir = tmp();
  await writeJsonAtomic(path.join(dir, 'a.json'), { x: 1 });
  await writeJsonAtomic(path.join(dir, 'a.json'), { x: 2 });
  assert.deepEqual(fs.readdirSync(dir), ['a.json']);
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, 'a.json'), 'utf8')), { x: 2 });
});

test('progress is throttled to one message per interval, but stage changes and completion always pass', () => {
  let t = 0;
  const seen: string[] = [];
  const th = new ProgressThrottle(
    (p) => seen.push(`${p.stage}:${p.done}`),
    100,
    () => t,
  );
  th.offer({ stage: 'features', done: 0, total: 10 });
  t = 50;
  th.offer({ stage: 'features', done: 1, total: 10 });
  t = 120;
  th.offer({ stage: 'features', done: 2, total: 10 });
  t = 130;
  th.offer({ stage: 'features', done: 10, total: 10 });
  th.offer({ stage: 'head', done: 0, total: 3 });
  assert.deepEqual(seen, ['features:0', 'features:2', 'features:10', 'head:0']);
});

test('the rate meter reports units per second and the time left', () => {
  let t = 1000;
  const m = new RateMeter(100, () => t);
  t = 3000;
  const r = m.measure(50);
  assert.equal(r.perSec, 25);
  assert.equal(r.etaSec, 2);
});

test('temporary files that crashed runs left in run folders are removed at the next start, nothing else', async () => {
  const runs = tmp();
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const run = path.join(runs, 'data-20260101-000000');
  fs.mkdirSync(path.join(run, 'model'), { recursive: true });
  fs.writeFileSync(path.join(run, 'status.json'), '{}');
  const stale = [path.join(run, `status.json.tmp-${dead}-1`), path.join(run, 'model', `weights-x.bin.tmp-${dead}-2`)];
  const kept = [path.join(run, `status.json.tmp-${process.pid}-1`), path.join(run, 'notes.tmp')];
  // A folder under the runs folder that is not a run folder is not the product's to clean.
  const stranger = path.join(runs, 'mine', `a.tmp-${dead}-1`);
  fs.mkdirSync(path.dirname(stranger));
  for (const f of [...stale, ...kept, stranger]) fs.writeFileSync(f, 'x');
  assert.deepEqual((await removeCrashedRunsTempFiles(runs)).sort(), stale.sort());
  for (const f of stale) assert.equal(fs.existsSync(f), false, f);
  for (const f of [...kept, stranger]) assert.equal(fs.existsSync(f), true, f);
});

test('on a full disk the final status is still written in place and a failed log write does not stop the run', async (t) => {
  const disk = smallDisk(t, 64);
  if (!disk) return;
  const writer = new RunFolderWriter(disk, {
    state: 'running',
    datasetRoot: '/d',
    datasetName: 'd',
    startedAt: 'now',
    hasCheckpoint: false,
    pid: 1,
  });
  await writer.updateStatus({ hasCheckpoint: true, bestEpoch: 1, valAccuracy: 0.5 });
  fs.writeFileSync(path.join(disk, 'filler'), Buffer.alloc(48 * 1024));
  // Fill the rest to the last byte: the status cannot be written beside itself any more.
  const fd = fs.openSync(path.join(disk, 'filler'), 'a');
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(1024));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    fs.closeSync(fd);
  }
  for (let i = 0; i < 100; i++) writer.log('a line that no longer fits '.repeat(40));
  await assert.rejects(writer.updateStatus({ message: 'x'.repeat(8000) }), { code: 'ENOSPC' });
  assert.equal(await writer.writeFinalStatus({ state: 'failed', message: 'disk full', pid: undefined }), true);
  const status = JSON.parse(fs.readFileSync(path.join(disk, 'status.json'), 'utf8')) as RunStatus;
  assert.equal(status.state, 'failed');
  assert.equal(status.bestEpoch, 1);
  assert.equal(writer.statusOnDisk?.state, 'failed');
  assert.deepEqual(
    fs.readdirSync(disk).filter((f) => f.includes('.tmp-')),
    [],
  );
  await writer.close();
});
