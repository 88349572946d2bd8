// Stopping a run from outside, through the built bundle as users meet it: the wall-clock limit
// from the CLI and from the options the extension sends, and a cancel during a first scan of a
// large folder (the process must be gone within a second, not after the scan).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { RunStatus } from '../../src/shared/runFolder';
import type { EpochMetrics } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson, sample, startChild } from '../support/trainingBundle';

const run = promisify(execFile);
const tmp = (p: string) => tempDir(`it-control-${p}-`);

before(() => {
  assert.ok(fs.existsSync(bundle), 'run `npm run build` first');
});

function metricsOf(runDir: string): EpochMetrics[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochMetrics);
}

/**
 * A dataset of `files` images in two classes: hard links to the sample's photos, so the folder is
 * large to scan but cheap to make, and every file is a real JPEG with its own scan-index entry.
 */
function largeDataset(root: string, files: number): void {
  const photos = ['healthy', 'scab'].map((c) => {
    const dir = path.join(sample, c);
    return fs
      .readdirSync(dir)
      .sort()
      .slice(0, 10)
      .map((f) => path.join(dir, f));
  });
  for (const [ci, cls] of ['healthy', 'scab'].entries()) {
    const dir = path.join(root, cls);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < files / 2; i++) fs.linkSync(photos[ci][i % photos[ci].length], path.join(dir, `img${i}.jpg`));
  }
}

test('--time-limit stops training after the epoch in which the limit passed, keeps the best checkpoint and says so', async () => {
  const work = tmp('cli-limit');
  const data = path.join(work, 'data');
  copySample(data, 10);
  const runs = path.join(work, 'runs');
  // Far more epochs than 2 s allow, and no early stopping: only the limit can end this run.
  const out = await run(
    process.execPath,
    [
      bundle,
      'train',
      data,
      '--out',
      runs,
      '--cache',
      path.join(work, 'cache'),
      '--epochs',
      '100000',
      '--patience',
      '0',
      '--time-limit',
      '2s',
      '--quiet',
    ],
    { cwd: work, timeout: 180_000 },
  );
  const runDir = onlyRun(runs);
  const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
  const epochs = metricsOf(runDir);
  assert.equal(status.state, 'finished');
  assert.ok(epochs.length >= 1 && epochs.length < 100_000, `${epochs.length} epochs`);
  assert.equal(status.summary?.epochsRun, epochs.length);
  assert.ok(status.summary!.wallMs >= 2000, `stopped after ${status.summary!.wallMs} ms, before the limit`);
  // It stops after the epoch in which the limit passed: the epochs before that one ended in time.
  const lastEpochMs = epochs.at(-1)!.durationMs;
  assert.ok(status.summary!.wallMs < 2000 + lastEpochMs + 5000, `ran ${status.summary!.wallMs} ms`);
  assert.match(status.message ?? '', /^Stopped at the time limit \(2 s\); the best checkpoint was kept\.$/);
  assert.ok(status.bestEpoch! >= 1 && status.bestEpoch! <= epochs.length);
  assert.ok(fs.existsSync(path.join(runDir, 'model', 'model.json')));
  assert.match(out.stdout, new RegExp(`best epoch ${status.bestEpoch} of ${epochs.length}\\)`));
  assert.match(fs.readFileSync(path.join(runDir, 'train.log'), 'utf8'), /Time limit of 2 s reached after [\d.]+ s/);
  assert.match(fs.readFileSync(path.join(runDir, 'report.md'), 'utf8'), /Stopped at the time limit/);
});

test('--time-limit refuses a value that is not a duration, before anything runs', async () => {
  const work = tmp('cli-bad-limit');
  const failed = await run(process.execPath, [bundle, 'train', sample, '--out', path.join(work, 'runs'), '--time-limit', 'soon'], {
    cwd: work,
  }).then(
    () => assert.fail('expected a non-zero exit'),
    (err: { code: number; stderr: string }) => err,
  );
  assert.notEqual(failed.code, 0);
  assert.match(failed.stderr, /--time-limit.*expected a duration such as 90s, 20m or 1\.5h, got "soon"/);
  assert.equal(fs.existsSync(path.join(work, 'runs')), false);
});

test('the time limit the extension sends in the run options stops the child process the same way', async () => {
  const work = tmp('child-limit');
  const data = path.join(work, 'data');
  copySample(data, 10);
  // 1.2 s, as a setting of 0.02 minutes arrives.
  const c = startChild(data, work, { epochs: 100_000, patience: 0, timeLimitMinutes: 0.02 });
  const end = await c.next((n) => n.type === 'finished' || n.type === 'failed', 120_000);
  assert.equal(end.type, 'finished');
  const epochsRun = end.type === 'finished' ? end.summary.epochsRun : 0;
  assert.ok(epochsRun >= 1 && epochsRun < 100_000, `${epochsRun} epochs`);
  assert.ok(end.type === 'finished' && end.summary.wallMs >= 1200);
  assert.equal(end.type === 'finished' && end.summary.cancelled, false);
  const log = c.messages.filter((m) => m.type === 'log').map((m) => (m.type === 'log' ? m.message : ''));
  assert.ok(
    log.some((m) => /^Time limit of 1\.2 s reached/.test(m)),
    log.join('\n'),
  );
});

test('cancelling during the first scan of a 20,000-file folder ends the training process within a second', async () => {
  const work = tmp('scan-cancel');
  const data = path.join(work, 'data');
  largeDataset(data, 20_000);
  const c = startChild(data, work, {});
  const exited = new Promise<number | null>((resolve) => c.child.on('exit', (code) => resolve(code)));
  await c.next((n) => n.type === 'progress' && n.progress.stage === 'scan' && n.progress.done > 0, 120_000);
  const cancelledAt = Date.now();
  c.child.send({ type: 'cancel' });
  const code = await exited;
  const took = Date.now() - cancelledAt;
  assert.ok(took < 1000, `the process took ${took} ms to end after the cancel`);
  assert.equal(code, 0);
  const last = c.messages.at(-1);
  assert.equal(last?.type, 'finished');
  assert.equal(last?.type === 'finished' && last.summary.cancelled, true);
  const status = readJson<RunStatus>(path.join(onlyRun(path.join(work, 'runs')), 'status.json'));
  assert.equal(status.state, 'cancelled');
  assert.equal(status.message, 'Cancelled before a model was trained.');
});

test('Ctrl-C during the first scan of a 20,000-file folder ends the CLI within a second', async () => {
  const work = tmp('scan-sigint');
  const data = path.join(work, 'data');
  largeDataset(data, 20_000);
  const child = spawn(process.execPath, [bundle, 'train', data, '--out', path.join(work, 'runs'), '--cache', path.join(work, 'cache')], {
    cwd: work,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // The scan has started once the scan index folder exists and the run folder says running.
  const runs = path.join(work, 'runs');
  for (let i = 0; i < 600 && !(fs.existsSync(runs) && fs.readdirSync(runs).length > 0); i++) await new Promise((r) => setTimeout(r, 50));
  await new Promise((r) => setTimeout(r, 300));
  const sentAt = Date.now();
  child.kill('SIGINT');
  const code = await exited;
  const took = Date.now() - sentAt;
  assert.ok(took < 1000, `the CLI took ${took} ms to end after Ctrl-C`);
  assert.equal(code, 130);
  assert.match(stderr, /Cancelled\. No checkpoint was saved\./);
});
