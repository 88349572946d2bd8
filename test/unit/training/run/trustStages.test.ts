// The stages after evaluation on a real run (real tfjs, sharp and sample images): calibration,
// unknown detection and the model card, and that the saved model answers with the calibrated
// probabilities the evaluation reports.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import type { TrainingNotification } from '../../../../src/shared/protocol/training';
import type { ModelMetadata, NoveltyFile } from '../../../../src/shared/runFolder';
import { DEFAULT_TRAIN_OPTIONS, type Evaluation, type RunSummary } from '../../../../src/shared/types';
import { initBackend } from '../../../../src/training/backend/backend';
import { predictImages, type ImagePrediction } from '../../../../src/training/models/predict';
import { runTraining } from '../../../../src/training/run/runTraining';
import { tempDir } from '../../../support/tempDirs';

const repo = path.resolve(__dirname, '../../../..');
const sample = path.join(repo, 'samples/leaves');

let summary: RunSummary;
const notified: TrainingNotification[] = [];
const read = <T>(rel: string) => JSON.parse(fs.readFileSync(path.join(summary.runDir, rel), 'utf8')) as T;

before(async () => {
  const work = tempDir('run-trust-');
  summary = await runTraining(
    {
      datasetRoot: sample,
      runsDir: path.join(work, 'runs'),
      cacheDir: path.join(work, 'cache'),
      options: { ...DEFAULT_TRAIN_OPTIONS, epochs: 6, backend: 'wasm' },
      extensionRoot: repo,
    },
    (n) => notified.push(n),
  );
});

describe('the stages after evaluation', () => {
  it('record the temperature in evaluation.json and metadata.json and time calibration, unknown detection and the model card', () => {
    const { calibration } = read<Evaluation>('evaluation.json');
    assert.ok(calibration && calibration.temperature >= 0.05 && calibration.temperature <= 20);
    assert.ok(calibration.heldOut > 0 && calibration.eceBefore >= 0 && calibration.eceAfter >= 0);
    assert.equal(read<ModelMetadata>('model/metadata.json').temperature, calibration.temperature);
    for (const stage of ['calibrate', 'unknown', 'modelCard'] as const) assert.equal(typeof summary.stageMs?.[stage], 'number', stage);
  });

  it('tell the host of the evaluation once, with the calibration and the unknown threshold in it', () => {
    const evaluations = notified.flatMap((n) => (n.type === 'evaluation' ? [n.evaluation] : []));
    assert.equal(evaluations.length, 1);
    assert.deepEqual(evaluations[0], read<Evaluation>('evaluation.json'));
    assert.ok(evaluations[0].calibration && evaluations[0].novelty);
  });

  it('mark each validation image with its novelty score, flagging exactly the ones above the threshold', () => {
    const { novelty, predictions } = read<Evaluation>('evaluation.json');
    assert.ok(novelty && predictions.length === novelty.valImages);
    for (const p of predictions) {
      assert.equal(typeof p.novelty, 'number', p.path);
      assert.equal(typeof p.unknown, 'boolean', p.path);
    }
    assert.equal(predictions.filter((p) => p.unknown).length, novelty.valFlagged);
    for (const p of predictions)
      if (Math.abs(p.novelty! - novelty.threshold) > 0.01) assert.equal(p.unknown, p.novelty! > novelty.threshold, p.path);
  });

  it('keep temperature 1 on the sample, whose validation images are few and all right, and say why in the log, evaluation.json and report.md', () => {
    // Unguarded, the fit on these 24 separable images ran T to its floor of 0.05: every confidence ~100%.
    const { calibration, predictions } = read<Evaluation>('evaluation.json');
    assert.equal(predictions.filter((p) => p.predicted !== p.actual).length, 0);
    assert.ok(calibration);
    assert.equal(calibration.temperature, 1);
    assert.equal(
      calibration.fallback,
      `none of the ${predictions.length} validation images is misclassified: the fit would sharpen every confidence towards 100%`,
    );
    assert.deepEqual(calibration.reliability?.after, calibration.reliability?.before);
    const logs = notified.flatMap((n) => (n.type === 'log' ? [n.message] : []));
    assert.ok(logs.includes(`Calibration: temperature kept at 1 because ${calibration.fallback}`), logs.join('\n'));
    assert.ok(
      fs
        .readFileSync(path.join(summary.runDir, 'report.md'), 'utf8')
        .includes(`Temperature 1: not fitted, because ${calibration.fallback}.`),
    );
  });

  it('save the unknown detector next to the model with a threshold that flags about 1% of the validation images', () => {
    const { novelty } = read<Evaluation>('evaluation.json');
    const file = read<NoveltyFile>('model/novelty.json');
    assert.ok(novelty);
    assert.equal(file.threshold, novelty.threshold);
    assert.equal(read<ModelMetadata>('model/metadata.json').unknownThreshold, novelty.threshold);
    assert.equal(Buffer.from(file.whitening, 'base64').byteLength, file.featureSize * file.featureSize * 4);
    assert.ok(novelty.valFlagged <= Math.ceil(novelty.valImages * 0.01));
  });

  it('save a model whose predictions are the calibrated probabilities the evaluation reports', async () => {
    const ev = read<Evaluation>('evaluation.json');
    const { tf } = await initBackend({ preference: 'wasm' });
    const files = ev.predictions.map((p) => path.join(sample, p.path));
    const byPath = new Map<string, ImagePrediction>();
    for await (const r of predictImages(tf, summary.runDir, files)) if (!('error' in r)) byPath.set(r.path, r);
    for (const p of ev.predictions) {
      const r = byPath.get(path.join(sample, p.path));
      assert.ok(r);
      assert.equal(r.label, ev.classes[p.predicted]);
      assert.ok(Math.abs(r.confidence - p.confidence) < 1e-4, `${p.path}: ${r.confidence} vs ${p.confidence}`);
      assert.equal(typeof r.novelty, 'number');
      assert.equal(r.unknown, (r.novelty as number) > ev.novelty!.threshold);
    }
  });

  it('write a model card from the run folder: classes, data per split, base model and licence, metrics, calibration, unknown threshold, limitations', () => {
    const card = fs.readFileSync(path.join(summary.runDir, 'MODEL_CARD.md'), 'utf8');
    const ev = read<Evaluation>('evaluation.json');
    for (const c of ev.classes) assert.match(card, new RegExp(`\\*\\*${c}\\*\\*`));
    assert.match(card, /\| class \| train \| val \| test \|/);
    assert.match(card, /Licence: Apache License 2\.0/);
    assert.match(card, new RegExp(`Accuracy \\*\\*${(100 * ev.accuracy).toFixed(1)}%`));
    assert.match(card, /Expected calibration error \(15 bins\)/);
    assert.match(card, new RegExp(`above \\*\\*${ev.novelty!.threshold.toFixed(2)}\\*\\*`));
    assert.match(card, /## Known confusions/);
    assert.match(card, /## Limitations/);
  });
});
