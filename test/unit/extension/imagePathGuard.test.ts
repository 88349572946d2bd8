import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { ImagePathGuard, relativePathProblem } from '../../../src/extension/imagePathGuard';

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
  const guard = new ImagePathGuard(root, known);
  const result = await guard.resolve('scab/b b.jpg');
  assert.deepEqual(result, { ok: true, relativePath: 'scab/b b.jpg', absolutePath: path.join(root, 'scab', 'b b.jpg') });
  assert.equal((await guard.resolve('healthy/alias.jpg')).ok, true, 'a link to another file inside the root is fine');
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
  const guard = new ImagePathGuard(root, [...known, ...forged]);
  for (const candidate of forged) {
    const result = await guard.resolve(candidate);
    assert.equal(result.ok, false, `${JSON.stringify(candidate)} must be refused`);
  }
  assert.equal((await guard.resolve(42)).ok, false);
  assert.equal((await guard.resolve({ path: 'scab/a.jpg' })).ok, false);
});

test('a path of another run (or any file the run did not evaluate) is refused', async () => {
  const guard = new ImagePathGuard(root, known);
  assert.deepEqual(await guard.resolve('x/y.jpg'), { ok: false, reason: 'not an image of this run' });
  assert.deepEqual(
    await guard.resolve('healthy/taken.jpg'),
    { ok: false, reason: 'not an image of this run' },
    'exists in the root but not in the evaluation',
  );
  const otherRun = new ImagePathGuard(otherRoot, ['x/y.jpg']);
  assert.equal((await otherRun.resolve('scab/a.jpg')).ok, false);
});

test('a symlink pointing out of the dataset root is refused', async () => {
  const guard = new ImagePathGuard(root, known);
  assert.deepEqual(await guard.resolve('scab/escape.jpg'), { ok: false, reason: 'outside the dataset root (after resolving links)' });
  assert.deepEqual(await guard.resolve('linked-class/x.jpg'), { ok: false, reason: 'outside the dataset root (after resolving links)' });
});

test('a known path whose file is gone is refused', async () => {
  const guard = new ImagePathGuard(root, ['scab/gone.jpg']);
  assert.deepEqual(await guard.resolve('scab/gone.jpg'), { ok: false, reason: 'file not found' });
});

test('paths the host itself created by moving an image become allowed', async () => {
  const guard = new ImagePathGuard(root, known);
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
  const guard = new ImagePathGuard(root, known);
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
