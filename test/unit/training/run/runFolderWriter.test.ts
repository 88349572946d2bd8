import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRunFolder, defaultRunsDir, runFolderName } from '../../../../src/training/run/runFolderWriter';
import { writeJsonAtomic } from '../../../../src/training/util/atomicWrite';
import { isInside } from '../../../../src/training/util/paths';
import { ProgressThrottle, RateMeter } from '../../../../src/training/run/progressThrottle';

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
  await assert.rejects(createRunFolder(path.join(data, 'runs'), data, 'data', new Date()), /never writes into a dataset folder/);
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
