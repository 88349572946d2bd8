// The dataset doctor through the built CLI on real photos: label errors injected into a copy of
// plantvillage-apple are found; hymenoptera's GIF placeholder is the top outlier; a blurred and a
// darkened copy of a real photo are weak; resized and recompressed copies are grouped with their
// original and, in an explicit train/ + val/ layout, said to cross the split; the report's JSON
// shape; a warm rerun decodes nothing; a damaged cache file is recomputed; a cancel is recorded;
// bad input is refused with a clear message and writes nothing; and the dataset folder is never
// changed.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { DOCTOR_FILE, type DoctorReport } from '../../src/shared/doctor';
import { DEFAULT_TRAIN_OPTIONS } from '../../src/shared/types';
import { runDoctor } from '../../src/training/doctor/runDoctor';
import { RunCancelled } from '../../src/training/util/errors';
import { noisyCopy } from '../support/noisyDataset';
import { tempDir } from '../support/tempDirs';
import { bundle, readJson, repo, treeDigest } from '../support/trainingBundle';

// The shared datasets sit beside the repository (as on CI).
const SHARED = path.resolve(repo, '../shared/datasets');

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { timeout: 240_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** Runs `doctor --json` on `dataset` and returns the report, the run folder and stderr. */
async function doctor(
  dataset: string,
  work: string,
  extra: string[] = [],
): Promise<{ report: DoctorReport; runDir: string; stderr: string }> {
  const out = path.join(work, 'runs');
  const r = await cli(['doctor', dataset, '--json', '--quiet', '--out', out, '--cache', path.join(work, 'cache'), ...extra]);
  assert.equal(r.code, 0, r.stderr);
  const runs = fs
    .readdirSync(out)
    .filter((d) => d.startsWith('doctor-'))
    .sort();
  return { report: JSON.parse(r.stdout) as DoctorReport, runDir: path.join(out, runs[runs.length - 1]), stderr: r.stderr };
}

/** Copies the first `n` photos of each of `classes` of a shared dataset into `dest`. */
function copyClasses(source: string, dest: string, classes: string[], n: number): void {
  for (const c of classes) {
    fs.mkdirSync(path.join(dest, c), { recursive: true });
    const names = fs
      .readdirSync(path.join(source, c))
      .filter((f) => /\.jpe?g$/i.test(f))
      .sort()
      .slice(0, n);
    for (const f of names) fs.copyFileSync(path.join(source, c, f), path.join(dest, c, f));
  }
}

let bugs: string;
let bugsWork: string;
let bugsDigest: string;
let bugsRun: { report: DoctorReport; runDir: string; stderr: string };
const ORIGINAL = 'bees/2397446847_04ef3cd3e1.jpg';

before(async () => {
  // 40 ants (and the GIF placeholder) and 40 bees of hymenoptera, plus copies of one bee photo.
  bugsWork = tempDir('doctor-bugs-');
  bugs = path.join(bugsWork, 'bugs');
  copyClasses(path.join(SHARED, 'hymenoptera'), bugs, ['ants', 'bees'], 40);
  fs.copyFileSync(path.join(SHARED, 'hymenoptera/ants/imageNotFound.gif'), path.join(bugs, 'ants/imageNotFound.gif'));
  const photo = path.join(SHARED, 'hymenoptera', ORIGINAL);
  fs.copyFileSync(photo, path.join(bugs, ORIGINAL));
  const meta = await sharp(photo).metadata();
  await sharp(photo)
    .resize(Math.round(meta.width! * 0.6))
    .jpeg({ quality: 90 })
    .toFile(path.join(bugs, 'bees/copy-resized.jpg'));
  await sharp(photo).jpeg({ quality: 65 }).toFile(path.join(bugs, 'bees/copy-q65.jpg'));
  await sharp(path.join(SHARED, 'hymenoptera/bees/1092977343_cb42b38d62.jpg')).blur(8).toFile(path.join(bugs, 'bees/blurred.jpg'));
  await sharp(path.join(SHARED, 'hymenoptera/bees/1093831624_fb5fbe2308.jpg')).linear(0.12, 0).toFile(path.join(bugs, 'bees/darkened.jpg'));
  bugsDigest = treeDigest(bugs);
  bugsRun = await doctor(bugs, bugsWork);
});

test('the doctor prints one JSON report of the documented shape, writes the same to doctor.json in a doctor folder, and leaves the dataset unchanged', () => {
  const { report, runDir } = bugsRun;
  assert.deepEqual(Object.keys(report).sort(), [
    'classes',
    'dataset',
    'images',
    'labelIssues',
    'nearDuplicates',
    'outliers',
    'shortcuts',
    'weakImages',
  ]);
  assert.equal(report.dataset, bugs);
  assert.deepEqual(report.classes, ['ants', 'bees']);
  assert.equal(report.images, 40 + 1 + 40 + 1 + 4);
  const paths = [...report.labelIssues, ...report.outliers, ...report.weakImages]
    .map((x) => x.path)
    .concat(report.nearDuplicates.flatMap((g) => g.paths));
  assert.ok(
    paths.every((p) => /^(ants|bees)\/[^/]+$/.test(p)),
    'paths are relative to the dataset, /-separated',
  );
  for (const list of [report.labelIssues, report.outliers]) {
    assert.ok(
      list.every((x, i) => i === 0 || list[i - 1].score >= x.score),
      'each list is ordered most likely first',
    );
  }
  assert.ok(report.labelIssues.every((i) => i.label !== i.suggested && i.score >= 0 && i.score <= 1));
  assert.deepEqual(readJson(path.join(runDir, DOCTOR_FILE)), report);
  assert.match(path.basename(runDir), /^doctor-bugs-\d{8}-\d{6}$/);
  assert.equal(readJson<{ state: string }>(path.join(runDir, 'status.json')).state, 'finished');
  assert.equal(treeDigest(bugs), bugsDigest, 'the dataset folder is unchanged');
});

test("hymenoptera's GIF placeholder is the top outlier", () => {
  assert.equal(bugsRun.report.outliers[0]?.path, 'ants/imageNotFound.gif', JSON.stringify(bugsRun.report.outliers));
});

test('a blurred and a darkened copy of a real photo are reported as weak', () => {
  const weak = bugsRun.report.weakImages;
  assert.ok(
    weak.some((w) => w.path === 'bees/blurred.jpg' && w.problem === 'blurred'),
    JSON.stringify(weak),
  );
  assert.ok(
    weak.some((w) => w.path === 'bees/darkened.jpg' && w.problem === 'dark'),
    JSON.stringify(weak),
  );
  // Only a few of the 80 ordinary photos are called weak.
  assert.ok(new Set(weak.map((w) => w.path)).size <= 8, JSON.stringify(weak));
});

test('a resized and a recompressed copy are grouped with their original, on one side of the split', () => {
  const group = bugsRun.report.nearDuplicates.find((g) => g.paths.includes(ORIGINAL));
  assert.ok(group, JSON.stringify(bugsRun.report.nearDuplicates));
  assert.deepEqual([...group.paths].sort(), [ORIGINAL, 'bees/copy-q65.jpg', 'bees/copy-resized.jpg'].sort());
  assert.deepEqual(group.classes, ['bees', 'bees', 'bees']);
  assert.ok(group.similarity >= 0.85 && group.similarity <= 1);
  // The split keeps the group on one side.
  assert.equal(group.crossesSplit, false);
  assert.match(
    fs.readFileSync(path.join(bugsRun.runDir, 'train.log'), 'utf8'),
    /Split: \d+ near-duplicate groups? \(\d+ images\) kept on one side/,
  );
});

test('a warm rerun reads features and pixel statistics from the cache and decodes nothing', async () => {
  const again = await doctor(bugs, bugsWork);
  const log = fs.readFileSync(path.join(again.runDir, 'train.log'), 'utf8');
  assert.match(log, /Features: 86 images \(\d+ distinct\), \d+ cache hits, 0 misses, 0 embedded/);
  assert.doesNotMatch(log, /Pixel statistics: \d+ of/);
  assert.deepEqual(again.report, bugsRun.report);
});

test('a damaged pixel-statistics file is reported and recomputed, never used', async () => {
  const work = tempDir('doctor-damaged-');
  fs.cpSync(path.join(bugsWork, 'cache'), path.join(work, 'cache'), { recursive: true });
  const dir = path.join(
    work,
    'cache',
    fs.readdirSync(path.join(work, 'cache')).find((d) => d.startsWith('pixel-stats-'))!,
  );
  const file = path.join(dir, fs.readdirSync(dir)[0]);
  // Same length, one digit changed: only the checksum can tell.
  const text = fs.readFileSync(file, 'utf8');
  const at = text.indexOf('.', text.indexOf('\n')) + 1;
  fs.writeFileSync(file, text.slice(0, at) + (text[at] === '1' ? '2' : '1') + text.slice(at + 1));
  const { report, runDir } = await doctor(bugs, work);
  const log = fs.readFileSync(path.join(runDir, 'train.log'), 'utf8');
  assert.match(log, /Pixel statistics .* failed their check: discarded, recomputed/);
  assert.match(log, /Pixel statistics: 86 of 86 images not in the cache, decoding them/);
  assert.deepEqual(report.weakImages, bugsRun.report.weakImages);
});

test('an explicit train/ + val/ layout with a copy on each side reports the group as crossing the split', async () => {
  const work = tempDir('doctor-explicit-');
  const data = path.join(work, 'explicit');
  copyClasses(path.join(SHARED, 'hymenoptera'), path.join(data, 'train'), ['ants', 'bees'], 12);
  copyClasses(path.join(SHARED, 'hymenoptera'), path.join(data, 'val'), ['ants', 'bees'], 0);
  const names = fs.readdirSync(path.join(data, 'train/bees')).sort();
  for (const c of ['ants', 'bees']) {
    for (const f of fs
      .readdirSync(path.join(data, 'train', c))
      .sort()
      .slice(0, 3))
      fs.renameSync(path.join(data, 'train', c, f), path.join(data, 'val', c, f));
  }
  const kept = names[5];
  await sharp(path.join(data, 'train/bees', kept))
    .resize(200)
    .toFile(path.join(data, 'val/bees/leak.jpg'));
  const { report } = await doctor(data, work);
  const group = report.nearDuplicates.find((g) => g.paths.includes('val/bees/leak.jpg'));
  assert.ok(group, JSON.stringify(report.nearDuplicates));
  assert.ok(group.paths.includes(`train/bees/${kept}`));
  assert.equal(group.crossesSplit, true);
});

test('label errors injected into a copy of plantvillage-apple lead the list of label issues', async () => {
  const work = tempDir('doctor-noise-');
  const data = path.join(work, 'apple');
  const moved = noisyCopy(path.join(SHARED, 'plantvillage-apple'), data, 60, 0.05, 3);
  const digest = treeDigest(data);
  const { report } = await doctor(data, work);
  const k = moved.size;
  const hits = report.labelIssues.slice(0, k).filter((i) => moved.has(i.path)).length;
  assert.ok(hits / k >= 0.75, `${hits} of the ${k} moved files in the top ${k}: ${JSON.stringify(report.labelIssues.slice(0, k))}`);
  const issue = report.labelIssues.find((i) => moved.has(i.path))!;
  assert.notEqual(issue.suggested, issue.label);
  assert.equal(treeDigest(data), digest);
});

test('bad input is refused with a clear message and writes nothing', async () => {
  const work = tempDir('doctor-bad-');
  const folds = await cli(['doctor', bugs, '--folds', '1', '--out', path.join(work, 'runs'), '--cache', path.join(work, 'cache')]);
  assert.notEqual(folds.code, 0);
  assert.match(folds.stderr, /--folds/);
  const missing = await cli(['doctor', path.join(work, 'nothing'), '--out', path.join(work, 'runs'), '--cache', path.join(work, 'cache')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /is not a folder/);
  const inside = await cli(['doctor', bugs, '--out', path.join(bugs, 'runs'), '--cache', path.join(work, 'cache')]);
  assert.notEqual(inside.code, 0);
  assert.match(inside.stderr, /inside the dataset/);
  assert.ok(!fs.existsSync(path.join(work, 'runs')), 'no doctor folder was created');
  assert.equal(treeDigest(bugs), bugsDigest);
});

test('a doctor cancelled before it starts records a cancelled status and writes no report', async () => {
  const work = tempDir('doctor-cancel-');
  const cancel = new AbortController();
  cancel.abort();
  await assert.rejects(
    runDoctor(
      { datasetRoot: bugs, runsDir: path.join(work, 'runs'), cacheDir: path.join(work, 'cache'), options: DEFAULT_TRAIN_OPTIONS, folds: 5 },
      () => undefined,
      cancel.signal,
    ),
    RunCancelled,
  );
  const [runDir] = fs.readdirSync(path.join(work, 'runs')).map((d) => path.join(work, 'runs', d));
  assert.equal(readJson<{ state: string }>(path.join(runDir, 'status.json')).state, 'cancelled');
  assert.ok(!fs.existsSync(path.join(runDir, DOCTOR_FILE)));
  await assert.rejects(
    runDoctor(
      { datasetRoot: bugs, runsDir: path.join(work, 'runs'), cacheDir: path.join(work, 'cache'), options: DEFAULT_TRAIN_OPTIONS, folds: 1 },
      () => undefined,
      cancel.signal,
    ),
    /between 2 and 20 cross-validation folds, got 1/,
  );
  assert.equal(treeDigest(bugs), bugsDigest);
});
