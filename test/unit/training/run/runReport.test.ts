// report.md is what a person opens to learn how a run went: these tests render it from a real scan
// of a dataset full of bad files, a real evaluation and a realistic history, and check the lines a
// reader relies on, for a finished, a cancelled and a failed run.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { RunConfig } from '../../../../src/shared/runFolder';
import type { DatasetReport, EpochMetrics, Evaluation, RunSummary } from '../../../../src/shared/types';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import { scanDataset } from '../../../../src/training/dataset/datasetScanner';
import { evaluate } from '../../../../src/training/fit/evaluation';
import { renderRunReport } from '../../../../src/training/run/runReport';
import { makeBadDataset } from '../../../fixtures/datasetFixtures';
import { tempDir } from '../../../support/tempDirs';

let dataset: DatasetReport;
let classes: string[];
let evaluation: Evaluation;
let config: RunConfig;

const history: EpochMetrics[] = [
  { stage: 'head', epoch: 1, loss: 1.0986, acc: 0.41, valLoss: 1.02, valAcc: 0.5, lr: 1e-3, durationMs: 420 },
  { stage: 'head', epoch: 2, loss: 0.7312, acc: 0.68, valLoss: 0.81, valAcc: 0.75, lr: 1e-3, durationMs: 390 },
  { stage: 'head', epoch: 3, loss: 0.5023, acc: 0.83, valLoss: 0.84, valAcc: 0.625, lr: 5e-4, durationMs: 401 },
  { stage: 'fine-tune', epoch: 4, loss: 0.4411, acc: 0.87, valLoss: 0.88, valAcc: 0.625, lr: 1e-5, durationMs: 2210 },
];

const stageMs = { startup: 310, backend: 40, scan: 120, model: 880, features: 2450, head: 1211, fineTune: 2210, evaluate: 95, save: 60 };

function summary(overrides: Partial<Omit<RunSummary, 'runDir'>> = {}): Omit<RunSummary, 'runDir'> {
  return {
    valAccuracy: evaluation.accuracy,
    bestEpoch: 2,
    epochsRun: history.length,
    cache: { hits: 12, misses: 5 },
    wallMs: 7_381,
    stageMs,
    featuresPerSec: 6.94,
    cancelled: false,
    ...overrides,
  };
}

before(async () => {
  const root = path.join(tempDir('run-report-'), 'pets and bikes');
  const bad = await makeBadDataset(root);
  const scan = await scanDataset(bad.root, { valSplit: 0.5, seed: 7, maxPixels: DEFAULT_TRAIN_OPTIONS.maxPixels });
  dataset = scan.report;
  classes = scan.classes;
  // Every validation image gets a probability row: the first of each class is mistaken for the
  // next class, the others are right, so the matrix has both a diagonal and off-diagonal counts.
  const val = scan.items.filter((i) => i.split === 'val');
  const k = classes.length;
  const probs = new Float32Array(val.length * k).fill(0.1);
  const seen = new Set<number>();
  val.forEach((item, i) => {
    const predicted = seen.has(item.classIndex) ? item.classIndex : (item.classIndex + 1) % k;
    seen.add(item.classIndex);
    probs[i * k + predicted] = 0.8;
  });
  evaluation = evaluate(
    classes,
    val.map((i) => i.classIndex),
    probs,
    val.map((i) => i.rel),
    2,
  );
  config = {
    datasetRoot: bad.root,
    options: { ...DEFAULT_TRAIN_OPTIONS, valSplit: 0.5, seed: 7, fineTuneLayers: 20, fineTuneEpochs: 1 },
    backend: { backend: 'wasm', summary: 'WebAssembly (4 threads): native TensorFlow is not installed', attempts: [] },
    model: { id: 'mobilenet_v2_0.35', name: 'MobileNetV2 0.35', inputSize: 224, featureSize: 1280 },
    versions: { node: process.version },
    createdAt: '2024-05-01T10:00:00.000Z',
  };
});

test('the scan behind the report has skipped files, warnings, a duplicate and an empty class to show', () => {
  assert.ok(dataset.skipped.length >= 5, `${dataset.skipped.length} skipped`);
  assert.ok(dataset.warnings.length > 0);
  assert.equal(dataset.duplicates.length, 1);
  assert.deepEqual(dataset.emptyClasses, ['empty']);
  assert.ok(evaluation.accuracy > 0 && evaluation.accuracy < 1, `accuracy ${evaluation.accuracy}`);
});

test('a finished run report names the run, the dataset, the model, the backend and the accuracy of the best epoch', () => {
  const md = renderRunReport({ runName: 'pets-2024', config, dataset, history, evaluation, summary: summary(), state: 'finished' });
  const lines = md.split('\n');
  assert.equal(lines[0], '# Image Trainer run pets-2024');
  assert.ok(lines.includes('- State: **finished**'), 'no message after a plain finish');
  assert.ok(lines.includes(`- Dataset: \`${config.datasetRoot}\` (folders layout)`));
  assert.match(md, /pets and bikes/);
  assert.ok(lines.includes('- Base model: MobileNetV2 0.35 (1280 features, 224 px)'));
  assert.ok(lines.includes('- Backend: WebAssembly (4 threads): native TensorFlow is not installed'));
  const accuracy = `${(100 * evaluation.accuracy).toFixed(1)}%`;
  assert.ok(lines.includes(`- Validation accuracy: **${accuracy}** (best epoch 2)`), md);
  assert.ok(lines.includes('- Epochs run: 4; wall time 7.4 s; features 6.9 images/s; cache 12 hits, 5 misses'));
});

test('a report says where the time went, stage by stage in run order', () => {
  const md = renderRunReport({ runName: 'r', config, dataset, history, evaluation, summary: summary(), state: 'finished' });
  assert.ok(
    md.includes(
      '- Time: start-up 0.31 s · backend 0.04 s · scan 0.12 s · base model 0.88 s · features 2.45 s · head 1.21 s · fine-tuning 2.21 s · evaluation 0.10 s · saving 0.06 s',
    ),
    md,
  );
  const withoutTimes = renderRunReport({
    runName: 'r',
    config,
    dataset,
    history,
    evaluation,
    summary: summary({ stageMs: undefined }),
    state: 'finished',
  });
  assert.doesNotMatch(withoutTimes, /- Time:/);
});

test('the data section lists every class with its split counts, the empty classes, the warnings and every skipped file with its reason', () => {
  const md = renderRunReport({ runName: 'r', config, dataset, history, evaluation, summary: summary(), state: 'finished' });
  const lines = md.split('\n');
  for (const c of dataset.classes) assert.ok(lines.includes(`| ${c.name} | ${c.train} | ${c.val} | ${c.test} |`), c.name);
  assert.ok(lines.includes('Empty classes left out: empty'));
  for (const w of dataset.warnings) assert.ok(lines.includes(`- ⚠ ${w}`), w);
  assert.ok(lines.includes(`### ${dataset.skipped.length} skipped files`));
  for (const s of dataset.skipped) assert.ok(lines.includes(`- \`${s.path}\`: ${s.reason} — ${s.detail}`), s.path);
  assert.ok(lines.some((l) => l.startsWith('- `cats/bomb.png`: too-many-pixels — ')));
  assert.ok(lines.includes('### 1 identical files in different classes (label noise)'));
  assert.ok(lines.includes('- `cats/cat0.jpg`, `motos/cat-by-mistake.jpg`'));
});

test('the training table has one row per epoch with its stage, losses, accuracies and learning rate', () => {
  const md = renderRunReport({ runName: 'r', config, dataset, history, evaluation, summary: summary(), state: 'finished' });
  const lines = md.split('\n');
  assert.ok(lines.includes('| 1 | head | 1.0986 | 41.0% | 1.0200 | 50.0% | 1.0e-3 |'));
  assert.ok(lines.includes('| 2 | head | 0.7312 | 68.0% | 0.8100 | 75.0% | 1.0e-3 |'));
  assert.ok(lines.includes('| 3 | head | 0.5023 | 83.0% | 0.8400 | 62.5% | 5.0e-4 |'));
  assert.ok(lines.includes('| 4 | fine-tune | 0.4411 | 87.0% | 0.8800 | 62.5% | 1.0e-5 |'));
});

test('the confusion matrix and the per-class table cover every class, with the averages and the most confused pairs', () => {
  const md = renderRunReport({ runName: 'r', config, dataset, history, evaluation, summary: summary(), state: 'finished' });
  const lines = md.split('\n');
  assert.ok(lines.includes(`| | ${classes.join(' | ')} |`));
  evaluation.matrix.forEach((row, i) => assert.ok(lines.includes(`| **${classes[i]}** | ${row.join(' | ')} |`), classes[i]));
  for (const c of evaluation.perClass) {
    assert.ok(
      lines.includes(`| ${c.name} | ${c.precision.toFixed(3)} | ${c.recall.toFixed(3)} | ${c.f1.toFixed(3)} | ${c.support} |`),
      `per-class row of ${c.name}`,
    );
  }
  assert.deepEqual(
    evaluation.perClass.map((c) => c.name),
    classes,
  );
  assert.ok(lines.some((l) => l.startsWith(`| macro avg | ${evaluation.macro.precision.toFixed(3)} |`)));
  assert.ok(lines.some((l) => l.startsWith(`| weighted avg | ${evaluation.weighted.precision.toFixed(3)} |`)));
  assert.ok(evaluation.mostConfused.length > 0);
  for (const p of evaluation.mostConfused) assert.ok(lines.includes(`- ${classes[p.actual]} → ${classes[p.predicted]}: ${p.count}`));
});

test('a report ends with the options as JSON, so the run can be reproduced', () => {
  const md = renderRunReport({ runName: 'r', config, dataset, history, evaluation, summary: summary(), state: 'finished' });
  const block = /## Reproduce\n\n```json\n([\s\S]*?)\n```/.exec(md);
  assert.ok(block, md);
  assert.deepEqual(JSON.parse(block[1]), config.options);
});

test('a cancelled run report says it was cancelled and why the model is still there, with the accuracy of what was kept', () => {
  const md = renderRunReport({
    runName: 'r',
    config,
    dataset,
    history: history.slice(0, 2),
    evaluation,
    summary: summary({ cancelled: true, epochsRun: 2 }),
    state: 'cancelled',
    message: 'Cancelled; the best checkpoint was kept.',
  });
  const lines = md.split('\n');
  assert.ok(lines.includes('- State: **cancelled** — Cancelled; the best checkpoint was kept.'));
  assert.ok(lines.includes(`- Validation accuracy: **${(100 * evaluation.accuracy).toFixed(1)}%** (best epoch 2)`));
  assert.ok(lines.some((l) => l.startsWith('- Epochs run: 2;')));
  assert.ok(lines.some((l) => l.startsWith('| 2 | head |')));
  assert.ok(!lines.some((l) => l.startsWith('| 3 | head |')), 'only the epochs that ran');
});

test('a failed run report gives the failure message and still shows the data, without an accuracy or a matrix it does not have', () => {
  const message = 'Out of disk space while writing the checkpoint: free space on /tmp or choose another runs folder.';
  const md = renderRunReport({
    runName: 'r',
    config,
    dataset,
    history: history.slice(0, 1),
    evaluation: undefined,
    summary: summary({ epochsRun: 1, stageMs: { startup: 300, scan: 120 } }),
    state: 'failed',
    message,
  });
  const lines = md.split('\n');
  assert.ok(lines.includes(`- State: **failed** — ${message}`));
  assert.ok(lines.includes('- Time: start-up 0.30 s · scan 0.12 s'));
  assert.doesNotMatch(md, /Validation accuracy/);
  assert.doesNotMatch(md, /## Confusion matrix/);
  assert.doesNotMatch(md, /precision/);
  for (const c of dataset.classes) assert.ok(lines.includes(`| ${c.name} | ${c.train} | ${c.val} | ${c.test} |`), c.name);
  assert.ok(lines.includes(`### ${dataset.skipped.length} skipped files`));
  assert.ok(lines.some((l) => l.startsWith('| 1 | head |')));
});

test('a report of thousands of files skipped for one reason lists the first 200 of them and counts the rest on one line', () => {
  // What a link to a system folder used to give: every path of it in report.md.
  const external = Array.from({ length: 5003 }, (_, i) => ({
    path: `daisy/icons/icon${String(i).padStart(4, '0')}.png`,
    reason: 'external-symlink' as const,
    detail: 'symlink outside the dataset folder: not followed',
  }));
  const md = renderRunReport({
    runName: 'flowers-1',
    config,
    dataset: { ...dataset, skipped: [...dataset.skipped, ...external.slice(0, 300)], skippedUnlisted: { 'external-symlink': 4703 } },
    history,
    evaluation,
    summary: summary(),
    state: 'finished',
  });
  const lines = md.split('\n');
  assert.ok(lines.includes(`### ${(dataset.skipped.length + 5003).toLocaleString('en-US')} skipped files`));
  const listed = lines.filter((l) => l.startsWith('- `daisy/icons/'));
  assert.equal(listed.length, 200);
  assert.equal(listed.at(-1), '- `daisy/icons/icon0199.png`: external-symlink — symlink outside the dataset folder: not followed');
  assert.ok(lines.includes('- … and 4,803 more outside the dataset (symlinks), not listed'), md.slice(-400));
  for (const s of dataset.skipped) assert.ok(lines.includes(`- \`${s.path}\`: ${s.reason} — ${s.detail}`), s.path);
  assert.ok(md.length < 40_000, `report.md is ${md.length} characters`);
});
