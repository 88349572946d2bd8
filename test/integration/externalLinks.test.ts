// A symlink out of the dataset folder through the built CLI: skipped and summarised in one line by
// default, followed with --follow-external-links.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DatasetReport } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson } from '../support/trainingBundle';

function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** Leaves with a `healthy/more` link to a folder of 250 more leaf photos outside the dataset. */
function linkedLeaves(work: string): string {
  const data = path.join(work, 'leaves');
  copySample(data, 3, ['healthy', 'scab']);
  const outside = path.join(work, 'outside');
  fs.mkdirSync(outside);
  const photo = path.join(data, 'healthy', fs.readdirSync(path.join(data, 'healthy'))[0]);
  for (let i = 0; i < 250; i++) fs.copyFileSync(photo, path.join(outside, `leaf${String(i).padStart(3, '0')}.jpg`));
  fs.symlinkSync(outside, path.join(data, 'healthy', 'more'));
  for (let i = 0; i < 250; i++)
    fs.symlinkSync(path.join(outside, `leaf${String(i).padStart(3, '0')}.jpg`), path.join(data, 'scab', `x${i}.jpg`));
  return data;
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
});

test('the CLI skips symlinks out of the dataset, says so in one line per reason, and caps the report', async () => {
  const work = tempDir('it-links-');
  const data = linkedLeaves(work);
  const runs = path.join(work, 'runs');
  const out = await cli(['train', data, '--epochs', '1', '--out', runs, '--cache', path.join(work, 'cache'), '--quiet'], work);
  assert.equal(out.code, 0, out.stderr);
  const skippedLines = out.stderr.split('\n').filter((l) => l.startsWith('Skipped'));
  assert.deepEqual(skippedLines, [
    'Skipped 251 files: 251 outside the dataset (symlinks; first: healthy/more, scab/x0.jpg, scab/x1.jpg …)',
  ]);
  assert.doesNotMatch(out.stderr, /scab\/x200\.jpg/);
  const report = readJson<DatasetReport>(path.join(onlyRun(runs), 'dataset-report.json'));
  assert.equal(report.skipped.length, 200);
  assert.deepEqual(report.skippedUnlisted, { 'external-symlink': 51 });
  assert.deepEqual(
    report.classes.map((c) => c.train + c.val),
    [3, 3],
  );
});

test('with --follow-external-links the links out of the dataset are followed and their images used', async () => {
  const work = tempDir('it-links-follow-');
  const data = linkedLeaves(work);
  const runs = path.join(work, 'runs');
  const args = ['train', data, '--follow-external-links', '--epochs', '1', '--out', runs, '--cache', path.join(work, 'cache'), '--quiet'];
  const out = await cli(args, work);
  assert.equal(out.code, 0, out.stderr);
  assert.doesNotMatch(out.stderr, /outside the dataset/);
  const report = readJson<DatasetReport>(path.join(onlyRun(runs), 'dataset-report.json'));
  assert.deepEqual(report.skipped, []);
  assert.equal(report.classes.find((c) => c.name === 'scab')!.train + report.classes.find((c) => c.name === 'scab')!.val, 253);
});
