// `image-trainer compare` through the built CLI on real runs of the sample: two seeds (and epoch
// counts) on the same explicit split, then a copy of the dataset with one image added, one removed
// and one relabelled. Every flip is checked against the two evaluation.json files, and the lists
// are checked to be complete.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunComparison } from '../../src/shared/compare';
import type { Evaluation } from '../../src/shared/types';
import { tempDir } from '../support/tempDirs';
import { bundle, readJson, sample, treeDigest } from '../support/trainingBundle';

const CLASSES = ['black_rot', 'cedar_rust', 'healthy', 'scab'];
let work: string;
let runA: string;
let runB: string;
let runC: string;
/** The changes made to the copy C: paths relative to the dataset root. */
const heldBack = 'train/healthy/healthy_30.jpg';
const dropped = 'train/scab/scab_30.jpg';
const relabelFrom = 'val/black_rot/black_rot_03.jpg';
const relabelTo = 'val/scab/black_rot_03.jpg';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** The sample in an explicit layout (the first 6 images of each class validate), so a seed changes training but not the split. */
function explicitCopy(dest: string, skip: readonly string[] = []): void {
  for (const c of CLASSES) {
    fs.readdirSync(path.join(sample, c))
      .sort()
      .forEach((f, i) => {
        const rel = `${i < 6 ? 'val' : 'train'}/${c}/${f}`;
        if (skip.includes(rel)) return;
        fs.mkdirSync(path.join(dest, path.dirname(rel)), { recursive: true });
        fs.copyFileSync(path.join(sample, c, f), path.join(dest, rel));
      });
  }
}

async function train(data: string, runs: string, args: string[]): Promise<string> {
  const before = new Set(fs.existsSync(runs) ? fs.readdirSync(runs) : []);
  const out = await cli(['train', data, '--out', runs, '--cache', path.join(work, 'cache'), '--quiet', ...args]);
  assert.equal(out.code, 0, out.stderr);
  const made = fs.readdirSync(runs).filter((d) => !before.has(d));
  assert.equal(made.length, 1);
  return path.join(runs, made[0]!);
}

async function compareJson(a: string, b: string): Promise<RunComparison> {
  const out = await cli(['compare', a, b, '--json']);
  assert.equal(out.code, 0, out.stderr);
  return JSON.parse(out.stdout) as RunComparison;
}

/** Every validation image both runs validated, with both predictions as class names, from the evaluation files alone. */
function expectedFlips(a: Evaluation, b: Evaluation, renamed: Record<string, string> = {}) {
  const fixed: string[] = [];
  const broken: string[] = [];
  const changed: string[] = [];
  const inA = new Map(a.predictions.map((p) => [renamed[p.path] ?? p.path, p]));
  let both = 0;
  for (const pb of b.predictions) {
    const pa = inA.get(pb.path);
    if (!pa) continue;
    both++;
    const rightA = pa.actual === pa.predicted;
    const rightB = pb.actual === pb.predicted;
    if (!rightA && rightB) fixed.push(pb.path);
    if (rightA && !rightB) broken.push(pb.path);
    if (!rightA && !rightB && a.classes[pa.predicted] !== b.classes[pb.predicted]) changed.push(pb.path);
  }
  return { fixed: fixed.sort(), broken: broken.sort(), changed: changed.sort(), both };
}

function checkFlipsAgainstEvaluations(c: RunComparison, a: Evaluation, b: Evaluation, renamed: Record<string, string> = {}): void {
  const back = Object.fromEntries(Object.entries(renamed).map(([from, to]) => [to, from]));
  for (const [kind, list] of Object.entries(c.flips) as [keyof RunComparison['flips'], RunComparison['flips']['fixed']][]) {
    for (const flip of list) {
      const pb = b.predictions.find((p) => p.path === flip.path);
      const pa = a.predictions.find((p) => p.path === (back[flip.path] ?? flip.path));
      assert.ok(pa && pb, `${flip.path} is in both evaluation.json files`);
      assert.equal(flip.label, b.classes[pb.actual]);
      assert.equal(flip.before, a.classes[pa.predicted], `${kind} ${flip.path}: before`);
      assert.equal(flip.after, b.classes[pb.predicted], `${kind} ${flip.path}: after`);
      assert.equal(flip.confidenceBefore, pa.confidence);
      assert.equal(flip.confidenceAfter, pb.confidence);
    }
  }
  const expected = expectedFlips(a, b, renamed);
  assert.deepEqual(
    { fixed: c.flips.fixed.map((f) => f.path), broken: c.flips.broken.map((f) => f.path), changed: c.flips.changed.map((f) => f.path) },
    { fixed: expected.fixed, broken: expected.broken, changed: expected.changed },
  );
  assert.equal(c.validation.both, expected.both);
}

before(async () => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  work = tempDir('it-compare-');
  const data = path.join(work, 'leaves');
  explicitCopy(data, [heldBack]);
  const digest = treeDigest(data);
  runA = await train(data, path.join(work, 'runs'), ['--seed', '1', '--epochs', '1', '--hidden-units', '8']);
  runB = await train(data, path.join(work, 'runs'), ['--seed', '7', '--epochs', '6']);
  assert.equal(treeDigest(data), digest, 'training never writes into the dataset');
  const copy = path.join(work, 'leaves-v2');
  explicitCopy(copy, [dropped]);
  fs.renameSync(path.join(copy, relabelFrom), path.join(copy, relabelTo));
  runC = await train(copy, path.join(work, 'runs-v2'), ['--seed', '7', '--epochs', '6']);
});

test('two seeds on the same split: every flip matches both evaluation.json files, and none is missing', async () => {
  const c = await compareJson(runA, runB);
  const a = readJson<Evaluation>(path.join(runA, 'evaluation.json'));
  const b = readJson<Evaluation>(path.join(runB, 'evaluation.json'));
  checkFlipsAgainstEvaluations(c, a, b);
  assert.equal(c.validation.both, 24);
  assert.deepEqual([c.validation.onlyA, c.validation.onlyB], [0, 0]);
  assert.ok(c.flips.fixed.length + c.flips.broken.length + c.flips.changed.length > 0, 'a 1-epoch and a 6-epoch head disagree somewhere');
  assert.deepEqual(
    c.settings.map((s) => [s.name, s.a, s.b]),
    [
      ['epochs', 1, 6],
      ['seed', 1, 7],
      ['hiddenUnits', 8, 128],
    ],
  );
  assert.deepEqual(
    { recorded: c.dataset.recorded, changes: [c.dataset.added, c.dataset.removed, c.dataset.relabelled, c.dataset.renamed].flat().length },
    { recorded: true, changes: 0 },
  );
  assert.equal(c.dataset.unchanged, 119);
  assert.equal(c.metrics.a.accuracy, a.accuracy);
  assert.equal(c.metrics.b.accuracy, b.accuracy);
  assert.deepEqual(
    c.metrics.perClass.map((k) => [k.name, k.a?.f1, k.b?.f1]),
    a.perClass.map((k, i) => [k.name, k.f1, b.perClass[i]!.f1]),
  );
});

test('a copy with an image added, one removed and one relabelled: the dataset change is reported exactly', async () => {
  const c = await compareJson(runB, runC);
  assert.deepEqual(c.dataset.added, [{ path: heldBack, class: 'healthy' }]);
  assert.deepEqual(c.dataset.removed, [{ path: dropped, class: 'scab' }]);
  assert.equal(c.dataset.relabelled.length, 1);
  assert.deepEqual(
    {
      pathA: c.dataset.relabelled[0]!.pathA,
      pathB: c.dataset.relabelled[0]!.pathB,
      classA: c.dataset.relabelled[0]!.classA,
      classB: c.dataset.relabelled[0]!.classB,
    },
    { pathA: relabelFrom, pathB: relabelTo, classA: 'black_rot', classB: 'scab' },
  );
  assert.deepEqual(c.dataset.renamed, []);
  assert.deepEqual([c.dataset.imagesA, c.dataset.imagesB, c.dataset.unchanged], [119, 119, 117]);
  assert.deepEqual(
    c.settings.map((s) => s.name),
    ['dataset'],
  );
  // The relabelled image is compared with itself under its new name and label.
  const a = readJson<Evaluation>(path.join(runB, 'evaluation.json'));
  const b = readJson<Evaluation>(path.join(runC, 'evaluation.json'));
  checkFlipsAgainstEvaluations(c, a, b, { [relabelFrom]: relabelTo });
  assert.equal(c.validation.both, 24);
  const relabelled = [...c.flips.fixed, ...c.flips.broken, ...c.flips.changed].find((f) => f.path === relabelTo);
  if (relabelled) assert.deepEqual([relabelled.labelBefore, relabelled.pathBefore], ['black_rot', relabelFrom]);
});

test('--json has the documented shape', async () => {
  const c = await compareJson(runA, runB);
  assert.deepEqual(Object.keys(c).sort(), ['a', 'b', 'dataset', 'flips', 'format', 'metrics', 'settings', 'validation']);
  assert.deepEqual(Object.keys(c.flips).sort(), ['broken', 'changed', 'fixed']);
  for (const flip of [...c.flips.fixed, ...c.flips.broken, ...c.flips.changed]) {
    for (const key of ['path', 'label', 'before', 'after'])
      assert.equal(typeof (flip as unknown as Record<string, unknown>)[key], 'string');
  }
  assert.deepEqual(Object.keys(c.dataset).sort(), [
    'added',
    'imagesA',
    'imagesB',
    'recorded',
    'relabelled',
    'removed',
    'renamed',
    'unchanged',
  ]);
  assert.deepEqual(Object.keys(c.metrics).sort(), ['a', 'b', 'perClass']);
});

test('the text form names the changed settings, the accuracies and each flip', async () => {
  const out = await cli(['compare', runA, runB]);
  assert.equal(out.code, 0, out.stderr);
  const c = await compareJson(runA, runB);
  assert.match(out.stdout, /^ {2}seed: 1 → 7$/m);
  assert.match(out.stdout, /On the 24 validation images both runs validated/);
  for (const flip of [...c.flips.fixed, ...c.flips.broken, ...c.flips.changed])
    assert.ok(out.stdout.includes(`  ${flip.path} (${flip.label}): ${flip.before}`));
});

test('a run folder that does not verify is refused in one line, naming the file and the problem', async () => {
  const damaged = path.join(tempDir('it-compare-bad-'), path.basename(runB));
  fs.cpSync(runB, damaged, { recursive: true });
  const evaluation = readJson<Evaluation>(path.join(damaged, 'evaluation.json'));
  evaluation.predictions[0]!.predicted = 99;
  fs.writeFileSync(path.join(damaged, 'evaluation.json'), JSON.stringify(evaluation));
  const out = await cli(['compare', runA, damaged]);
  assert.equal(out.code, 1);
  assert.equal(out.stdout, '');
  assert.deepEqual(out.stderr.trim().split('\n'), [
    `Run folder problem: evaluation.json: prediction 1 is malformed (path, actual, predicted, confidence) (run folder: ${damaged})`,
  ]);
  const notRun = tempDir('it-compare-none-');
  const none = await cli(['compare', notRun, runB]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /^Run folder problem: status\.json is missing or not a run status: not a run folder \(run folder: /);
  const swapped = path.join(tempDir('it-compare-swap-'), path.basename(runB));
  fs.cpSync(runB, swapped, { recursive: true });
  fs.copyFileSync(path.join(runC, 'images.json'), path.join(swapped, 'images.json'));
  const mixed = await cli(['compare', runA, swapped]);
  assert.equal(mixed.code, 1);
  assert.match(mixed.stderr, /evaluation\.json and images\.json disagree about .*: they are not from the same run/);
});
