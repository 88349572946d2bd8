// Failures through the built bundle (dist/training.js), as the CLI and the extension run it: each
// ends with one line (CLI) or one `failed` notification (IPC) that says what kind of problem it is.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FailedNotification, TrainingNotification } from '../../src/shared/protocol/training';
import { isTrainingNotification } from '../../src/shared/protocol/training';
import type { RunStatus } from '../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';

const repo = path.resolve(__dirname, '../..');
const bundle = path.join(repo, 'dist/training.js');
const sample = path.join(repo, 'samples/leaves');

/** A dataset folder with the given classes, each holding `perClass` real leaf photos. */
function leaves(dest: string, classes: string[], perClass = 4): string {
  for (const c of classes) {
    fs.mkdirSync(path.join(dest, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(sample, c)).sort().slice(0, perClass)) {
      fs.copyFileSync(path.join(sample, c, f), path.join(dest, c, f));
    }
  }
  fs.mkdirSync(dest, { recursive: true });
  return dest;
}

/** Runs the CLI to its end: exit code, stdout and stderr (a failing run does not throw here). */
function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** The lines a person reads on stderr. */
function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
});

test('the CLI refuses a folder with one class in one line that says it is a dataset problem, and exits non-zero', async () => {
  const work = tempDir('it-fail-one-class-');
  const data = leaves(path.join(work, 'data'), ['healthy']);
  const runs = path.join(work, 'runs');
  const out = await cli(['train', data, '--out', runs, '--cache', path.join(work, 'cache'), '--quiet'], work);
  assert.equal(out.code, 1);
  assert.doesNotMatch(out.stdout, /Validation accuracy/);
  const failure = lines(out.stderr).filter((l) => l.includes('usable class'));
  assert.equal(failure.length, 1, `expected the reason on one line, got:\n${out.stderr}`);
  assert.equal(failure[0], lines(out.stderr).at(-1), 'the reason is the last thing printed');
  assert.match(failure[0], /^Dataset problem: Found 1 usable class \(healthy\) in .*: need at least 2 class folders with images/);
  // The run folder that recorded the failure is named on the same line, and says it failed.
  const runDir = /\(run folder: (.*)\)$/.exec(failure[0])?.[1];
  assert.ok(runDir && fs.existsSync(runDir), `no run folder on the line: ${failure[0]}`);
  assert.equal(path.dirname(runDir), runs);
  const status = JSON.parse(fs.readFileSync(path.join(runDir, 'status.json'), 'utf8')) as RunStatus;
  assert.equal(status.state, 'failed');
});

test('the CLI says it cannot write when the runs folder cannot be created, and exits non-zero', async () => {
  const work = tempDir('it-fail-disk-');
  const data = leaves(path.join(work, 'data'), ['healthy', 'scab'], 2);
  // A file where the runs folder's parent should be: no folder can be made under it, even as root.
  const blocker = path.join(work, 'blocker');
  fs.writeFileSync(blocker, '');
  const out = await cli(['train', data, '--out', path.join(blocker, 'runs'), '--cache', path.join(work, 'cache'), '--quiet'], work);
  assert.equal(out.code, 1);
  assert.match(lines(out.stderr).at(-1) ?? '', /^Cannot write: ENOTDIR: .*blocker/);
});

test('a refused option value still names the option, and exits non-zero', async () => {
  const work = tempDir('it-fail-options-');
  const out = await cli(['train', work, '--epochs', '0'], work);
  assert.equal(out.code, 1);
  assert.match(out.stderr, /option '--epochs <n>' argument '0' is invalid\. expected an integer ≥ 1, got "0"/);
});

test('forked as the extension forks it, the training process reports a dataset problem as a failed notification of kind dataset with its run folder', async () => {
  const work = tempDir('it-fail-ipc-');
  const data = path.join(work, 'empty-dataset');
  fs.mkdirSync(data);
  const runsDir = path.join(work, 'runs');
  const child = fork(bundle, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
  const messages: unknown[] = [];
  child.on('message', (m) => messages.push(m));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.send({ type: 'start', datasetRoot: data, runsDir, cacheDir: path.join(work, 'cache'), options: DEFAULT_TRAIN_OPTIONS });
  assert.equal(await exited, 1);

  // Everything the child sent passes the guard the host applies.
  for (const m of messages) assert.equal(isTrainingNotification(m), true, JSON.stringify(m));
  const notifications = messages as TrainingNotification[];
  const failed = notifications.filter((n): n is FailedNotification => n.type === 'failed');
  assert.equal(failed.length, 1, `notifications: ${notifications.map((n) => n.type).join(', ')}`);
  assert.equal(failed[0].kind, 'dataset');
  assert.match(failed[0].message, /^Found no usable class in .*empty-dataset: need at least 2 class folders with images/);
  assert.ok(failed[0].runDir, 'the run folder is named');
  assert.equal(path.dirname(failed[0].runDir), runsDir);
  const status = JSON.parse(fs.readFileSync(path.join(failed[0].runDir, 'status.json'), 'utf8')) as RunStatus;
  assert.equal(status.state, 'failed');
  assert.equal(status.message, failed[0].message);
  assert.equal(
    notifications.some((n) => n.type === 'started' || n.type === 'finished'),
    false,
  );
});

test('every notification of a real run passes the payload checks the host applies', async () => {
  const work = tempDir('it-guard-run-');
  const data = leaves(path.join(work, 'data'), ['healthy', 'scab'], 4);
  const child = fork(bundle, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
  const messages: unknown[] = [];
  child.on('message', (m) => messages.push(m));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  child.send({
    type: 'start',
    datasetRoot: data,
    runsDir: path.join(work, 'runs'),
    cacheDir: path.join(work, 'cache'),
    options: { ...DEFAULT_TRAIN_OPTIONS, epochs: 2, patience: 0 },
  });
  assert.equal(await exited, 0);
  const refused = messages.filter((m) => !isTrainingNotification(m));
  assert.deepEqual(refused, []);
  const types = new Set((messages as TrainingNotification[]).map((n) => n.type));
  for (const type of ['started', 'progress', 'epochEnd', 'evaluation', 'finished'] as const) assert.ok(types.has(type), `no ${type}`);
});
