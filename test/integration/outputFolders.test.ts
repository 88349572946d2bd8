// Where a run writes, through the built bundle (dist/training.js) as the CLI and the extension run
// it: never inside the dataset (by real path, through links too), folder problems refused before
// anything is written, and a run folder on a disk that fills up ending in words that say what survived.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { FailedNotification, StartCommand, TrainingNotification } from '../../src/shared/protocol/training';
import type { RunStatus } from '../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS, type TrainOptions } from '../../src/shared/types';
import { smallDisk } from '../support/smallDisk';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson, treeDigest } from '../support/trainingBundle';

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
});

/** A work folder (real path) with `data/` (real leaf photos, two classes), `link` → `data`, `classLink` → `data/healthy`. */
function workspace(prefix: string, perClass = 3): { work: string; data: string; link: string; classLink: string } {
  const work = fs.realpathSync(tempDir(`it-out-${prefix}-`));
  const data = path.join(work, 'data');
  copySample(data, perClass, ['healthy', 'scab']);
  const link = path.join(work, 'link');
  fs.symlinkSync(data, link);
  const classLink = path.join(work, 'classLink');
  fs.symlinkSync(path.join(data, 'healthy'), classLink);
  return { work, data, link, classLink };
}

/** Runs the CLI to its end: exit code, stdout and stderr. */
function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

const lastLine = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .at(-1) ?? '';

/** Forks the bundle as the extension does and resolves with the run's last notification. */
function childRun(
  datasetRoot: string,
  runsDir: string,
  cacheDir: string,
  options: Partial<TrainOptions> = {},
): Promise<TrainingNotification> {
  const child = fork(bundle, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
  const start: StartCommand = { type: 'start', datasetRoot, runsDir, cacheDir, options: { ...DEFAULT_TRAIN_OPTIONS, ...options } };
  return new Promise((resolve, reject) => {
    let last: TrainingNotification | undefined;
    child.on('message', (m) => {
      const n = m as TrainingNotification;
      if (n.type === 'finished' || n.type === 'failed') last = n;
    });
    child.on('exit', () => (last ? resolve(last) : reject(new Error('the child exited without a final message'))));
    child.send(start);
  });
}

const refused = (what: string) => `Invalid options: ${what}: choose a folder outside it (nothing was written).`;

test('the CLI refuses a cache folder that is the dataset, inside it, or inside it through a link, and writes nothing', async () => {
  const { work, data, link } = workspace('cli-cache');
  const digest = treeDigest(data);
  const cases: [string, string][] = [
    [data, `The cache folder ${data} is the dataset ${data} itself`],
    [path.join(data, 'cache'), `The cache folder ${path.join(data, 'cache')} is inside the dataset ${data}`],
    [
      path.join(link, 'cache'),
      `The cache folder ${path.join(link, 'cache')} (really ${path.join(data, 'cache')}) is inside the dataset ${data}`,
    ],
  ];
  for (const [cache, words] of cases) {
    const out = await cli(['train', data, '--out', path.join(work, 'runs'), '--cache', cache, '--quiet'], work);
    assert.equal(out.code, 1, out.stderr);
    assert.equal(lastLine(out.stderr), refused(words));
  }
  assert.equal(treeDigest(data), digest);
  assert.equal(fs.existsSync(path.join(work, 'runs')), false, 'a runs folder was created for a refused run');
});

test('the CLI refuses a runs folder inside the dataset, directly or as a new folder under a link into it, and writes nothing', async () => {
  const { work, data, classLink } = workspace('cli-out');
  const digest = treeDigest(data);
  const cache = path.join(work, 'cache');
  const direct = await cli(['train', data, '--out', path.join(data, 'runs'), '--cache', cache, '--quiet'], work);
  assert.equal(direct.code, 1);
  assert.equal(lastLine(direct.stderr), refused(`The runs folder ${path.join(data, 'runs')} is inside the dataset ${data}`));
  // Nothing exists under classLink/new yet: its nearest existing parent is the link into the dataset.
  const viaLink = path.join(classLink, 'new', 'runs');
  const linked = await cli(['train', data, '--out', viaLink, '--cache', cache, '--quiet'], work);
  assert.equal(linked.code, 1);
  assert.equal(
    lastLine(linked.stderr),
    refused(`The runs folder ${viaLink} (really ${path.join(data, 'healthy', 'new', 'runs')}) is inside the dataset ${data}`),
  );
  assert.equal(treeDigest(data), digest);
  assert.equal(fs.existsSync(cache), false);
});

test('the CLI refuses a runs folder that is a file in one line, before the scan (a cache folder that is a file only turns caching off: cacheFaults.test.ts)', async () => {
  const { work, data } = workspace('cli-file');
  const file = path.join(work, 'notes.txt');
  fs.writeFileSync(file, 'not a folder');
  const digest = treeDigest(data);
  const out = await cli(['train', data, '--out', file, '--cache', path.join(work, 'cache'), '--quiet'], work);
  assert.equal(out.code, 1);
  assert.deepEqual(
    out.stderr.split('\n').filter((l) => l.trim()),
    [`Invalid options: The runs folder ${file} is a file, not a folder: choose a folder (nothing was written).`],
  );
  assert.equal(treeDigest(data), digest);
  assert.deepEqual(fs.readdirSync(work).sort(), ['classLink', 'data', 'link', 'notes.txt']);
});

test('the CLI refuses a runs folder on a read-only disk in words', async (t) => {
  const disk = smallDisk(t, 64, true);
  if (!disk) return;
  const { work, data } = workspace('cli-ro');
  const out = await cli(['train', data, '--out', path.join(disk, 'runs'), '--cache', path.join(work, 'cache'), '--quiet'], work);
  assert.equal(out.code, 1);
  assert.equal(
    lastLine(out.stderr),
    `Invalid options: The runs folder ${path.join(disk, 'runs')} cannot be written (${disk}, where it would be created): read-only file system (EROFS). Choose a folder you can write to (nothing was written).`,
  );
});

test('a run started as the extension starts it is refused with kind options when its runs or cache folder is in the dataset', async () => {
  const { work, data, link } = workspace('child');
  const digest = treeDigest(data);
  const cases: [string, string, string][] = [
    [path.join(data, 'runs'), path.join(work, 'cache'), `The runs folder ${path.join(data, 'runs')} is inside the dataset ${data}`],
    [
      path.join(work, 'runs'),
      path.join(link, 'cache'),
      `The cache folder ${path.join(link, 'cache')} (really ${path.join(data, 'cache')}) is inside the dataset ${data}`,
    ],
  ];
  for (const [runsDir, cacheDir, words] of cases) {
    const last = await childRun(data, runsDir, cacheDir);
    assert.equal(last.type, 'failed');
    const failed = last as FailedNotification;
    assert.equal(failed.kind, 'options');
    assert.equal(failed.message, `${words}: choose a folder outside it (nothing was written).`);
    assert.equal(failed.runDir, undefined);
  }
  assert.equal(treeDigest(data), digest);
  assert.equal(fs.existsSync(path.join(work, 'runs')), false);
});

test('a run started with no validation fraction is refused as an option problem, the same as --val-split 0', async () => {
  const { work, data } = workspace('valsplit');
  const last = await childRun(data, path.join(work, 'runs'), path.join(work, 'cache'), { valSplit: 0 });
  assert.equal(last.type, 'failed');
  assert.equal((last as FailedNotification).kind, 'options');
  assert.match((last as FailedNotification).message, /^valSplit must be between 0.01 and 0.9, got 0: /);
  const out = await cli(['train', data, '--val-split', '0'], work);
  assert.equal(out.code, 1);
  assert.match(out.stderr, /--val-split <f>' argument '0' is invalid\. expected a number in \[0\.01, 0\.9\]/);
});

test('a run folder whose disk fills up after the first checkpoint says so, keeps that checkpoint usable and leaves no temporary files', async (t) => {
  // 3.5 MB: the first checkpoint of the default model (about 2.6 MB) fits, a second weights file does not.
  const disk = smallDisk(t, 3500);
  if (!disk) return;
  const { work, data } = workspace('full', 6);
  const digest = treeDigest(data);
  const out = await cli(['train', data, '--out', disk, '--cache', path.join(work, 'cache'), '--epochs', '10', '--quiet'], work);
  assert.equal(out.code, 1, out.stderr);
  const runDir = onlyRun(disk);
  const line = lastLine(out.stderr);
  const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
  assert.equal(status.state, 'failed');
  assert.equal(status.errorKind, 'disk');
  assert.equal(status.pid, undefined);
  assert.ok(status.hasCheckpoint && status.bestEpoch === 1, `expected the epoch-1 checkpoint on record: ${JSON.stringify(status)}`);
  const acc = (100 * (status.valAccuracy ?? NaN)).toFixed(1);
  assert.match(
    line,
    new RegExp(
      `^Cannot write: model/weights-[^ ]+\\.bin in the run folder ${runDir}: no space left on device \\(ENOSPC\\)\\. ` +
        `The checkpoint of epoch 1 \\(validation accuracy ${acc}%\\) survived: \`image-trainer predict ${runDir} <image-or-folder>\` can use it\\. ` +
        `\\(run folder: ${runDir}\\)$`,
    ),
  );
  assert.equal(status.message, line.replace(/^Cannot write: /, '').replace(/ \(run folder: .*\)$/, ''));
  const leftovers = fs.readdirSync(disk, { recursive: true, encoding: 'utf8' }).filter((f) => /\.tmp-\d+-\d+$/.test(f));
  assert.deepEqual(leftovers, []);
  const predicted = await cli(['predict', runDir, path.join(data, 'scab'), '--json'], work);
  assert.equal(predicted.code, 0, predicted.stderr);
  const rows = predicted.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { label?: string; error?: string });
  assert.equal(rows.length, 6);
  for (const r of rows) assert.ok(r.label === 'healthy' || r.label === 'scab', JSON.stringify(r));
  assert.equal(treeDigest(data), digest);
});

test('temporary files that a crashed run left are removed when the next run starts', async () => {
  const { work, data } = workspace('stale');
  const runs = path.join(work, 'runs');
  const crashed = path.join(runs, 'data-20260101-000000');
  fs.mkdirSync(path.join(crashed, 'model'), { recursive: true });
  fs.writeFileSync(path.join(crashed, 'status.json'), '{}');
  // A pid that cannot be alive: above the kernel's largest.
  const stale = [path.join(crashed, 'status.json.tmp-99999999-1'), path.join(crashed, 'model', 'weights-a.bin.tmp-99999999-2')];
  for (const f of stale) fs.writeFileSync(f, 'half a file');
  const kept = path.join(crashed, 'model', 'notes.tmp');
  fs.writeFileSync(kept, 'mine');
  // One class: the run fails at the scan, after its start has cleaned up.
  fs.rmSync(path.join(data, 'scab'), { recursive: true });
  const out = await cli(['train', data, '--out', runs, '--cache', path.join(work, 'cache'), '--quiet'], work);
  assert.equal(out.code, 1);
  for (const f of stale) assert.equal(fs.existsSync(f), false, `${f} is still there`);
  assert.equal(fs.existsSync(kept), true);
});
