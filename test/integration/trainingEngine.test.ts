// The training engine end to end, through the built bundle (dist/training.js) exactly as the CLI
// and the extension run it: real images, real sharp, real tfjs on WebAssembly, real child processes.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { RunStatus } from '../../src/shared/runFolder';
import type { DatasetReport, Evaluation } from '../../src/shared/types';
import { DEFAULT_TRAIN_OPTIONS } from '../../src/shared/types';
import { decodeImage } from '../../src/training/dataset/imageDecoder';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson, startChild, treeDigest } from '../support/trainingBundle';

const run = promisify(execFile);
const tmp = (p: string) => tempDir(`it-engine-${p}-`);

/**
 * Checks that report.md says what the run folder's JSON files record: the dataset, every class,
 * the validation accuracy (as the report formats it), the best epoch and each skipped file.
 */
function assertReportAgrees(runDir: string): void {
  const md = fs.readFileSync(path.join(runDir, 'report.md'), 'utf8');
  const lines = md.split('\n');
  const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
  const evaluation = readJson<Evaluation>(path.join(runDir, 'evaluation.json'));
  const dataset = readJson<DatasetReport>(path.join(runDir, 'dataset-report.json'));
  assert.equal(lines[0], `# Image Trainer run ${path.basename(runDir)}`);
  assert.ok(lines.includes(`- State: **${status.state}**`), md);
  assert.ok(
    lines.some((l) => l.startsWith(`- Dataset: \`${status.datasetRoot}\``)),
    `report.md does not name the dataset ${status.datasetRoot}`,
  );
  assert.equal(path.basename(status.datasetRoot), status.datasetName);
  assert.equal(status.valAccuracy, evaluation.accuracy);
  assert.equal(status.bestEpoch, evaluation.bestEpoch);
  assert.ok(
    lines.includes(`- Validation accuracy: **${(100 * evaluation.accuracy).toFixed(1)}%** (best epoch ${evaluation.bestEpoch})`),
    `report.md does not give accuracy ${evaluation.accuracy} and best epoch ${evaluation.bestEpoch}:\n${md}`,
  );
  for (const c of dataset.classes) assert.ok(lines.includes(`| ${c.name} | ${c.train} | ${c.val} | ${c.test} |`), `data row of ${c.name}`);
  for (const c of evaluation.perClass) {
    assert.ok(
      lines.some((l) => l.startsWith(`| ${c.name} | ${c.precision.toFixed(3)} | ${c.recall.toFixed(3)} |`)),
      `per-class row of ${c.name}`,
    );
  }
  assert.deepEqual(
    evaluation.perClass.map((c) => c.name),
    evaluation.classes,
  );
  if (dataset.skipped.length) {
    assert.ok(lines.includes(`### ${dataset.skipped.length} skipped files`));
    for (const f of dataset.skipped) assert.ok(lines.includes(`- \`${f.path}\`: ${f.reason} — ${f.detail}`), `skipped ${f.path}`);
  } else {
    assert.doesNotMatch(md, /skipped files/);
  }
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
});

test('the CLI trains on the sample, prints accuracy and the confusion matrix, and a second run is all cache hits', async () => {
  const work = tmp('cli');
  const data = path.join(work, 'leaves');
  copySample(data, 30);
  // One view per image (--recipe auto and the views: recipes.test.ts).
  const args = [
    bundle,
    'train',
    data,
    '--out',
    path.join(work, 'runs'),
    '--cache',
    path.join(work, 'cache'),
    '--epochs',
    '8',
    '--recipe',
    'plain',
    '--quiet',
  ];
  const first = await run(process.execPath, args, { cwd: work });
  assert.match(first.stdout, /Validation accuracy: \d+\.\d%/);
  assert.match(first.stderr, /black_rot/);
  const acc = Number(/Validation accuracy: (\d+\.\d)%/.exec(first.stdout)![1]);
  assert.ok(acc >= 80, `accuracy on the sample was ${acc}%`);
  const runDir = onlyRun(path.join(work, 'runs'));
  for (const f of [
    'status.json',
    'config.json',
    'labels.json',
    'metrics.jsonl',
    'evaluation.json',
    'dataset-report.json',
    'report.md',
    'model/model.json',
    'model/metadata.json',
  ]) {
    assert.ok(fs.existsSync(path.join(runDir, f)), `${f} missing in the run folder`);
  }
  const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
  assert.equal(status.state, 'finished');
  assert.equal(status.summary?.cache.misses, 120);
  // Where the time went: every stage the run went through, adding up to no more than its wall time.
  const stageMs = status.summary?.stageMs ?? {};
  assert.deepEqual(Object.keys(stageMs).sort(), [
    'backend',
    'calibrate',
    'evaluate',
    'features',
    'head',
    'map',
    'model',
    'modelCard',
    'save',
    'scan',
    'split',
    'startup',
    'unknown',
  ]);
  const { startup, ...inRun } = stageMs;
  assert.ok(startup! > 0 && inRun.features! > 0 && inRun.head! > 0);
  const total = Object.values(inRun).reduce((a, b) => a + b, 0);
  assert.ok(total <= status.summary!.wallMs + 5, `stages ${total} ms, wall ${status.summary!.wallMs} ms`);
  assert.match(first.stdout, /^Time: start-up \d+\.\d\d s · backend .* · head \d+\.\d\d s · evaluation .*$/m);
  const evaluation = readJson<Evaluation>(path.join(runDir, 'evaluation.json'));
  assert.deepEqual(evaluation.classes, ['black_rot', 'cedar_rust', 'healthy', 'scab']);
  assert.equal(
    evaluation.predictions.length,
    evaluation.matrix.flat().reduce((a, b) => a + b, 0),
  );
  const epochs = fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
  assert.equal(epochs.length, status.summary?.epochsRun);
  assertReportAgrees(runDir);
  assert.ok(fs.readFileSync(path.join(runDir, 'report.md'), 'utf8').includes(`Validation accuracy: **${acc.toFixed(1)}%**`));

  const curves = (dir: string) =>
    fs
      .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const { durationMs: _ignored, ...m } = JSON.parse(l) as { durationMs: number };
        return m;
      });
  const firstCurves = curves(runDir);
  fs.rmSync(path.join(work, 'runs'), { recursive: true });
  const second = await run(process.execPath, args, { cwd: work });
  assert.match(second.stdout, /120 cache hits, 0 misses/);
  const runDir2 = onlyRun(path.join(work, 'runs'));
  const status2 = readJson<RunStatus>(path.join(runDir2, 'status.json'));
  assert.deepEqual(status2.summary?.cache, { hits: 120, misses: 0 });
  // The head trains on onnxruntime here, and the seed fixes split, shuffles, initial weights and
  // dropout masks: the rerun on the cached features repeats the first run epoch for epoch.
  assert.match(first.stderr, /Head: onnxruntime-node \S+ \(CPU, \d+ threads?, one graph per Adam step\)/);
  assert.deepEqual(curves(runDir2), firstCurves);

  const predicted = await run(process.execPath, [bundle, 'predict', runDir2, path.join(data, 'healthy'), '--json'], { cwd: work });
  const lines = predicted.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { path: string; label: string; confidence: number; top: { label: string }[] });
  assert.equal(lines.length, 30);
  assert.equal(lines[0].top.length, 3);
  const healthy = lines.filter((l) => l.label === 'healthy').length;
  assert.ok(healthy >= 24, `only ${healthy}/30 healthy leaves classified as healthy`);

  // Export to ONNX and check that onnxruntime gives the same answers as the TF.js model.
  const onnxFile = path.join(work, 'leaves.onnx');
  await run(process.execPath, [bundle, 'export-onnx', runDir2, '--out', onnxFile]);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnxFile);
  const labels = readJson<string[]>(path.join(runDir2, 'labels.json'));
  for (const l of lines.slice(0, 5)) {
    const pixels = await decodeImage(l.path, 224, 1e8);
    const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', Float32Array.from(pixels), [1, 224, 224, 3]) };
    const probs = (await session.run(feeds))[session.outputNames[0]].data as Float32Array;
    const best = probs.indexOf(Math.max(...probs));
    assert.equal(labels[best], l.label);
    assert.ok(Math.abs(probs[best] - l.confidence) < 1e-3, `${probs[best]} vs ${l.confidence}`);
  }
});

test('bad files are skipped and listed with their reasons, training completes, and the dataset is unchanged', async () => {
  const work = tmp('bad');
  const data = path.join(work, 'data');
  copySample(data, 8, ['healthy', 'scab']);
  const healthy = path.join(data, 'healthy');
  fs.writeFileSync(path.join(healthy, 'empty.jpg'), '');
  fs.writeFileSync(path.join(healthy, 'notes.jpg'), 'this is not an image\n');
  const jpeg = fs.readFileSync(
    path.join(
      healthy,
      fs.readdirSync(healthy).find((f) => f.endsWith('.jpg') && f.startsWith('healthy'))!,
    ),
  );
  fs.writeFileSync(path.join(healthy, 'truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 3)));
  fs.symlinkSync(path.join(work, 'nowhere.jpg'), path.join(healthy, 'dangling.jpg'));
  fs.symlinkSync('..', path.join(healthy, 'loop'));
  fs.writeFileSync(path.join(healthy, '.DS_Store'), 'junk');
  fs.mkdirSync(path.join(data, 'empty_class'));
  const before = treeDigest(data);

  const runs = path.join(work, 'runs');
  const out = await run(
    process.execPath,
    [bundle, 'train', data, '--out', runs, '--cache', path.join(work, 'cache'), '--epochs', '3', '--quiet'],
    { cwd: work, timeout: 180_000 },
  );
  assert.match(out.stdout, /Validation accuracy/);
  assert.equal(treeDigest(data), before, 'the dataset folder changed');
  const report = readJson<DatasetReport>(path.join(onlyRun(runs), 'dataset-report.json'));
  assertReportAgrees(onlyRun(runs));
  const md = fs.readFileSync(path.join(onlyRun(runs), 'report.md'), 'utf8');
  for (const f of ['healthy/empty.jpg', 'healthy/notes.jpg', 'healthy/truncated.jpg', 'healthy/dangling.jpg'])
    assert.ok(md.includes(`- \`${f}\`: `), `report.md does not list ${f}`);
  assert.match(md, /^Empty classes left out: empty_class$/m);
  const reasons = Object.fromEntries(report.skipped.map((s) => [s.path, s.reason]));
  assert.equal(reasons['healthy/empty.jpg'], 'empty');
  assert.equal(reasons['healthy/notes.jpg'], 'not-image');
  assert.equal(reasons['healthy/truncated.jpg'], 'corrupt');
  assert.equal(reasons['healthy/dangling.jpg'], 'dangling-symlink');
  assert.deepEqual(report.emptyClasses, ['empty_class']);
  assert.deepEqual(
    report.classes.map((c) => c.name),
    ['healthy', 'scab'],
  );
});

test('the child process streams typed notifications, throttles progress and stops on cancel keeping the best checkpoint', async () => {
  const work = tmp('child');
  const data = path.join(work, 'data');
  copySample(data, 12);
  const c = startChild(data, work, { epochs: 200, patience: 0 });
  const started = await c.next((n) => n.type === 'started');
  assert.equal(started.type === 'started' && started.dataset.classes.length, 4);
  await c.next((n) => n.type === 'epochEnd' && n.metrics.epoch >= 3);
  const t = Date.now();
  c.child.send({ type: 'cancel' });
  const exit = new Promise<number | null>((resolve) => c.child.on('exit', (code) => resolve(code)));
  const finished = await c.next((n) => n.type === 'finished' || n.type === 'failed', 30_000);
  assert.equal(finished.type, 'finished');
  assert.equal(finished.type === 'finished' && finished.summary.cancelled, true);
  await exit;
  const cancelMs = Date.now() - t;
  assert.ok(cancelMs < 10_000, `the run ended ${cancelMs} ms after cancel: cancel must stop training instead of running on to epoch 200`);
  const runDir = onlyRun(path.join(work, 'runs'));
  const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
  assert.equal(status.state, 'cancelled');
  assert.equal(status.hasCheckpoint, true);
  assert.ok(fs.existsSync(path.join(runDir, 'model/model.json')));
  // Progress is throttled to about 10 messages a second (plus stage changes); epoch ends are all there.
  const progress = c.messages.filter((m) => m.type === 'progress').length;
  const seconds = (Date.now() - t + 5000) / 1000;
  const epochEnds = c.messages.filter((m) => m.type === 'epochEnd').length;
  assert.ok(epochEnds >= 3);
  assert.equal(fs.readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').length, epochEnds);
  assert.ok(progress < 12 * seconds + 20, `${progress} progress messages`);
});

test('a training process killed with SIGKILL mid-run leaves a best checkpoint that loads and predicts', async () => {
  const work = tmp('kill');
  const data = path.join(work, 'data');
  copySample(data, 12);
  const c = startChild(data, work, { epochs: 500, patience: 0 });
  await c.next((n) => n.type === 'epochEnd' && n.metrics.epoch >= 2);
  const exit = new Promise<NodeJS.Signals | null>((resolve) => c.child.on('exit', (_code, signal) => resolve(signal)));
  c.child.kill('SIGKILL');
  assert.equal(await exit, 'SIGKILL');
  const runDir = onlyRun(path.join(work, 'runs'));
  assert.deepEqual(
    fs.readdirSync(runDir).filter((f) => f.includes('.tmp-')),
    [],
  );
  const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
  assert.equal(status.hasCheckpoint, true);
  const out = await run(process.execPath, [bundle, 'predict', runDir, path.join(data, 'scab'), '--json']);
  const lines = out.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { label: string });
  assert.equal(lines.length, 12);
  assert.ok(lines.every((l) => ['black_rot', 'cedar_rust', 'healthy', 'scab'].includes(l.label)));
});

test('fine-tuning the top block runs after the head, continues the epoch count, and leaves a classifier that predicts', async () => {
  const work = tmp('finetune');
  const data = path.join(work, 'data');
  copySample(data, 8);
  const runs = path.join(work, 'runs');
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
      '3',
      '--patience',
      '0',
      '--fine-tune-layers',
      '10',
      '--fine-tune-epochs',
      '2',
      '--quiet',
    ],
    { cwd: work, timeout: 240_000 },
  );
  assert.match(out.stderr, /fine-tune epoch 4:/);
  assert.match(out.stderr, /fine-tune epoch 5:/);
  const runDir = onlyRun(runs);
  const stages = fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { stage: string; epoch: number; lr: number });
  assert.deepEqual(
    stages.map((m) => `${m.stage}:${m.epoch}`),
    ['head:1', 'head:2', 'head:3', 'fine-tune:4', 'fine-tune:5'],
  );
  assert.equal(stages[3].lr, DEFAULT_TRAIN_OPTIONS.fineTuneLearningRate);
  assert.match(fs.readFileSync(path.join(runDir, 'train.log'), 'utf8'), /Fine-tuning cut at block_16_expand/);
  const predicted = await run(process.execPath, [bundle, 'predict', runDir, path.join(data, 'scab'), '--json']);
  assert.equal(predicted.stdout.trim().split('\n').length, 8);
});
