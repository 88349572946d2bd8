import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImagePathGuard, relativePathProblem, UNKNOWN_ROOT_REASON } from '../../../src/extension/imagePathGuard';
import { datasetRootOf, readRunFolder } from '../../../src/extension/panelState';

let base: string;
let root: string;
let otherRoot: string;

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'image-path-guard-'));
  root = path.join(base, 'leaves');
  otherRoot = path.join(base, 'other-dataset');
  for (const dir of ['scab', 'healthy', 'val/scab', 'val/healthy']) await fs.mkdir(path.join(root, dir), { recursive: true });
  await fs.mkdir(path.join(otherRoot, 'x'), { recursive: true });
  await fs.mkdir(path.join(base, 'other-folder'), { recursive: true });
  for (const file of ['scab/a.jpg', 'scab/b b.jpg', 'healthy/c.jpg', 'val/scab/v.jpg', 'healthy/taken.jpg', 'scab/taken.jpg'])
    await fs.writeFile(path.join(root, file), 'jpeg');
  await fs.writeFile(path.join(otherRoot, 'x/y.jpg'), 'jpeg');
  await fs.writeFile(path.join(base, 'other-folder/x.jpg'), 'jpeg');
  await fs.writeFile(path.join(base, 'secret.txt'), 'secret');
  // A link inside the dataset pointing out of it, and one pointing to another image inside it.
  await fs.symlink(path.join(base, 'secret.txt'), path.join(root, 'scab/escape.jpg'));
  await fs.symlink(path.join(root, 'scab/a.jpg'), path.join(root, 'healthy/alias.jpg'));
  await fs.symlink(path.join(base, 'other-folder'), path.join(root, 'linked-class'));
});

after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

/** The datasets the workspace's discovery found, as the tree would list them. */
const trusted = () => [root, otherRoot];

const known = [
  'scab/a.jpg',
  'scab/b b.jpg',
  'healthy/c.jpg',
  'val/scab/v.jpg',
  'scab/escape.jpg',
  'healthy/alias.jpg',
  'linked-class/x.jpg',
  'scab/taken.jpg',
];

test('an image of the run inside the dataset root resolves to its file', async () => {
  const guard = new ImagePathGuard(root, known, trusted);
  const result = await guard.resolve('scab/b b.jpg');
  assert.deepEqual(result, { ok: true, relativePath: 'scab/b b.jpg', absolutePath: path.join(root, 'scab', 'b b.jpg') });
  // A link to another file inside the root is fine, and what comes back is the file that was checked.
  assert.deepEqual(await guard.resolve('healthy/alias.jpg'), {
    ok: true,
    relativePath: 'healthy/alias.jpg',
    absolutePath: path.join(root, 'scab', 'a.jpg'),
  });
});

test('forged paths from the webview are refused', async () => {
  // Even if a forged path were somehow in the known set, the file-system checks still refuse it.
  const forged = [
    '../../etc/passwd',
    '/etc/passwd',
    'other-folder/x.jpg',
    '..%2F..%2Fetc%2Fpasswd',
    '..%2Fsecret.txt',
    'scab/../../secret.txt',
    './scab/a.jpg',
    'scab//a.jpg',
    'scab\\..\\..\\secret.txt',
    'C:/Windows/win.ini',
    'c:secret',
    '\\\\server\\share\\x.jpg',
    'scab/a.jpg\u0000.png',
    '',
  ];
  const guard = new ImagePathGuard(root, [...known, ...forged], trusted);
  for (const candidate of forged) {
    const result = await guard.resolve(candidate);
    assert.equal(result.ok, false, `${JSON.stringify(candidate)} must be refused`);
  }
  assert.equal((await guard.resolve(42)).ok, false);
  assert.equal((await guard.resolve({ path: 'scab/a.jpg' })).ok, false);
});

test('a path of another run (or any file the run did not evaluate) is refused', async () => {
  const guard = new ImagePathGuard(root, known, trusted);
  assert.deepEqual(await guard.resolve('x/y.jpg'), { ok: false, reason: 'not an image of this run' });
  assert.deepEqual(
    await guard.resolve('healthy/taken.jpg'),
    { ok: false, reason: 'not an image of this run' },
    'exists in the root but not in the evaluation',
  );
  const otherRun = new ImagePathGuard(otherRoot, ['x/y.jpg'], trusted);
  assert.equal((await otherRun.resolve('scab/a.jpg')).ok, false);
});

test('a symlink pointing out of the dataset root is refused', async () => {
  const guard = new ImagePathGuard(root, known, trusted);
  assert.deepEqual(await guard.resolve('scab/escape.jpg'), { ok: false, reason: 'outside the dataset root (after resolving links)' });
  assert.deepEqual(await guard.resolve('linked-class/x.jpg'), { ok: false, reason: 'outside the dataset root (after resolving links)' });
});

test('a known path whose file is gone is refused', async () => {
  const guard = new ImagePathGuard(root, ['scab/gone.jpg'], trusted);
  assert.deepEqual(await guard.resolve('scab/gone.jpg'), { ok: false, reason: 'file not found' });
});

test('paths the host itself created by moving an image become allowed', async () => {
  const guard = new ImagePathGuard(root, known, trusted);
  assert.equal((await guard.resolve('healthy/taken.jpg')).ok, false);
  guard.allow('healthy/taken.jpg');
  assert.equal((await guard.resolve('healthy/taken.jpg')).ok, true);
});

test('only plain relative paths pass the syntax check', () => {
  assert.equal(relativePathProblem('scab/a.jpg'), undefined);
  assert.equal(relativePathProblem('a b/ü #1.jpg'), undefined);
  assert.equal(relativePathProblem('../x'), 'not normalised (empty, "." or ".." segment)');
  assert.equal(relativePathProblem('/x'), 'absolute path');
  assert.equal(relativePathProblem('a\\b'), 'backslash');
});

test('a move goes into the target class folder of the same split, never over an existing file', async () => {
  const guard = new ImagePathGuard(root, known, trusted);
  const classes = ['healthy', 'scab'];
  assert.deepEqual(await guard.moveTarget('scab/a.jpg', 'scab', 'healthy', classes), {
    ok: true,
    relativePath: 'healthy/a.jpg',
    absolutePath: path.join(root, 'healthy', 'a.jpg'),
  });
  assert.deepEqual(await guard.moveTarget('val/scab/v.jpg', 'scab', 'healthy', classes), {
    ok: true,
    relativePath: 'val/healthy/v.jpg',
    absolutePath: path.join(root, 'val', 'healthy', 'v.jpg'),
  });
  assert.deepEqual(await guard.moveTarget('scab/taken.jpg', 'scab', 'healthy', classes), {
    ok: false,
    reason: 'healthy/taken.jpg already exists',
  });
  assert.deepEqual(await guard.moveTarget('scab/a.jpg', 'scab', '../../tmp', classes), { ok: false, reason: 'unknown class' });
  assert.deepEqual(await guard.moveTarget('scab/a.jpg', 'scab', 'scab', classes), { ok: false, reason: 'already in that class' });
  assert.deepEqual(await guard.moveTarget('scab/a.jpg', 'scab', 'linked-class', [...classes, 'linked-class']), {
    ok: false,
    reason: 'class folder outside the dataset root',
  });
});

test('a path that leaves the dataset root is refused with the reason', async () => {
  const guard = new ImagePathGuard(root, ['../secret.txt', 'scab/../../secret.txt'], trusted);
  assert.deepEqual(await guard.resolve('../secret.txt'), { ok: false, reason: 'not normalised (empty, "." or ".." segment)' });
  assert.deepEqual(await guard.resolve('scab/../../secret.txt'), { ok: false, reason: 'not normalised (empty, "." or ".." segment)' });
  assert.deepEqual(await guard.resolve('/etc/passwd'), { ok: false, reason: 'absolute path' });
});

/** A small dataset of its own for a test that swaps files for links. */
async function swapDataset(name: string): Promise<string> {
  const dir = path.join(base, name);
  for (const sub of ['scab', 'healthy', 'train/scab', 'train/healthy', 'val/scab', 'val/healthy'])
    await fs.mkdir(path.join(dir, sub), { recursive: true });
  for (const file of ['scab/a.jpg', 'train/scab/t.jpg']) await fs.writeFile(path.join(dir, file), 'jpeg');
  return dir;
}

test('a symlink swapped in for the image between the check and the move makes the move refuse', async () => {
  const dir = await swapDataset('swap-image');
  const guard = new ImagePathGuard(dir, ['scab/a.jpg'], () => [dir]);
  const planned = await guard.planMove('scab/a.jpg', 'scab', 'healthy', ['healthy', 'scab']);
  assert.ok(planned.ok);
  assert.equal(planned.plan.from, path.join(dir, 'scab', 'a.jpg'));
  // While the confirmation dialog is open, the image becomes a link to a file outside the dataset.
  await fs.rm(path.join(dir, 'scab', 'a.jpg'));
  await fs.symlink(path.join(base, 'secret.txt'), path.join(dir, 'scab', 'a.jpg'));
  assert.deepEqual(await guard.recheckMove(planned.plan, 'scab', 'healthy', ['healthy', 'scab']), {
    ok: false,
    reason: 'outside the dataset root (after resolving links) (changed since the move was confirmed)',
  });
});

test('a class folder swapped for a symlink out of the dataset between the check and the move makes the move refuse', async () => {
  const dir = await swapDataset('swap-folder');
  const guard = new ImagePathGuard(dir, ['scab/a.jpg'], () => [dir]);
  const planned = await guard.planMove('scab/a.jpg', 'scab', 'healthy', ['healthy', 'scab']);
  assert.ok(planned.ok);
  await fs.rm(path.join(dir, 'healthy'), { recursive: true });
  await fs.symlink(path.join(base, 'other-folder'), path.join(dir, 'healthy'));
  assert.deepEqual(await guard.recheckMove(planned.plan, 'scab', 'healthy', ['healthy', 'scab']), {
    ok: false,
    reason: 'class folder outside the dataset root (changed since the move was confirmed)',
  });
});

test('an unchanged move passes the second check with the real paths that were checked', async () => {
  const dir = await swapDataset('no-swap');
  const guard = new ImagePathGuard(dir, ['scab/a.jpg'], () => [dir]);
  const planned = await guard.planMove('scab/a.jpg', 'scab', 'healthy', ['healthy', 'scab']);
  assert.ok(planned.ok);
  assert.deepEqual(await guard.recheckMove(planned.plan, 'scab', 'healthy', ['healthy', 'scab']), {
    ok: true,
    relativePath: 'healthy/a.jpg',
    absolutePath: path.join(dir, 'healthy', 'a.jpg'),
  });
});

test('a run folder whose status.json names another root than the workspace datasets gets no file access there', async () => {
  // A forged run folder: its status.json says the dataset is the folder holding secret.txt.
  const runDir = path.join(base, 'forged-run');
  await fs.mkdir(runDir, { recursive: true });
  const status = { state: 'finished', datasetRoot: base, datasetName: 'x', startedAt: '', updatedAt: '', hasCheckpoint: false };
  await fs.writeFile(path.join(runDir, 'status.json'), JSON.stringify(status));
  const contents = await readRunFolder(runDir);
  assert.ok(contents);
  assert.equal(datasetRootOf(contents), base);
  const guard = new ImagePathGuard(datasetRootOf(contents), ['secret.txt', 'leaves/scab/a.jpg'], trusted);
  assert.deepEqual(await guard.resolve('secret.txt'), { ok: false, reason: UNKNOWN_ROOT_REASON });
  assert.deepEqual(await guard.resolve('leaves/scab/a.jpg'), { ok: false, reason: UNKNOWN_ROOT_REASON });
  assert.deepEqual(await guard.moveTarget('leaves/scab/a.jpg', 'leaves', 'healthy', ['healthy', 'leaves']), {
    ok: false,
    reason: "the run's dataset folder is not one of the workspace's datasets",
  });
});

test('in an explicit train/val layout a move stays in the same split folder', async () => {
  const dir = await swapDataset('split');
  const guard = new ImagePathGuard(dir, ['train/scab/t.jpg'], () => [dir]);
  const planned = await guard.planMove('train/scab/t.jpg', 'scab', 'healthy', ['healthy', 'scab']);
  assert.deepEqual(planned, {
    ok: true,
    plan: {
      relativePath: 'train/scab/t.jpg',
      from: path.join(dir, 'train', 'scab', 't.jpg'),
      target: { ok: true, relativePath: 'train/healthy/t.jpg', absolutePath: path.join(dir, 'train', 'healthy', 't.jpg') },
    },
  });
});
