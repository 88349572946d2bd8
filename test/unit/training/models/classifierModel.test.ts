import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import { loadLayersModelFromDir } from '../../../../src/training/models/baseModel';
import { buildClassifier, classifierMetadata, readMetadata, saveModelDir } from '../../../../src/training/models/classifierModel';
import { buildHead } from '../../../../src/training/fit/head';
import { findModel } from '../../../../src/training/models/modelRegistry';
import { parseModelCheckpoint } from '../../../../src/shared/runState';
import { seededRandom } from '../../../../src/training/util/random';
import { tempDir } from '../../../support/tempDirs';

const repoRoot = path.resolve(__dirname, '../../../..');
const baseDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');

before(async () => {
  await tf.setBackend('wasm');
  await tf.ready();
});

function weightFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.bin'));
}

function readModel(dir: string): { json: { weightsManifest: { paths: string[] }[] } & Record<string, unknown>; bytes: Buffer } {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  return { json, bytes: fs.readFileSync(path.join(dir, json.weightsManifest[0].paths[0])) };
}

describe('saveModelDir', () => {
  it('writes later checkpoints of the same model with only new weights, byte for byte what a full save writes', async () => {
    const entry = findModel('mobilenet_v2_0.35')!;
    const base = await loadLayersModelFromDir(tf, baseDir);
    const head = buildHead(tf, entry.featureSize, 3, DEFAULT_TRAIN_OPTIONS);
    const classifier = buildClassifier(tf, base, head, entry);
    const meta = classifierMetadata(['a', 'b', 'c'], entry);
    const dir = path.join(tempDir('classifier-model-'), 'model');
    await saveModelDir(classifier, dir, meta, tf);
    const first = readModel(dir);
    const metadataInode = () => fs.statSync(path.join(dir, 'metadata.json')).ino;
    const inodeBefore = metadataInode();

    // New head weights, as after a training epoch, then a checkpoint.
    const random = seededRandom(9);
    for (const w of head.trainableWeights) {
      const v = w.read();
      tf.tidy(() =>
        (v as tf.Variable).assign(
          tf.tensor(
            Float32Array.from({ length: v.size }, () => random() - 0.5),
            v.shape,
          ),
        ),
      );
    }
    await saveModelDir(classifier, dir, meta, tf);
    const second = readModel(dir);
    assert.equal(weightFiles(dir).length, 1, 'the previous weights file is gone');
    assert.notDeepEqual(second.bytes, first.bytes);
    assert.equal(metadataInode(), inodeBefore, 'the checkpoint rewrote only the weights and model.json');

    // A full save of the same weights (a model object never saved before takes the full path).
    const fresh = buildClassifier(tf, base, head, entry);
    const fullDir = path.join(tempDir('classifier-model-'), 'model');
    await saveModelDir(fresh, fullDir, meta, tf);
    const full = readModel(fullDir);
    assert.ok(second.bytes.equals(full.bytes), 'identical weight bytes');
    const withoutPaths = (j: typeof full.json) => ({ ...j, weightsManifest: j.weightsManifest.map((g) => ({ ...g, paths: [] })) });
    assert.deepEqual(withoutPaths(second.json), withoutPaths(full.json));

    // It loads, and predicts what the model in memory predicts.
    const reloaded = await loadLayersModelFromDir(tf, dir);
    const x = tf.randomUniform([2, 224, 224, 3], 0, 255, 'float32', 3);
    const [a, b] = [classifier.predict(x) as tf.Tensor, reloaded.predict(x) as tf.Tensor];
    assert.ok(tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] < 1e-6);
    tf.dispose([x, a, b]);
    reloaded.dispose();

    // Changed metadata takes the full path and is written.
    await saveModelDir(classifier, dir, classifierMetadata(['x', 'y', 'z'], entry), tf);
    assert.deepEqual((await readMetadata(dir)).labels, ['x', 'y', 'z']);
    assert.notEqual(metadataInode(), inodeBefore);
    assert.equal(weightFiles(dir).length, 1);
    base.dispose();
    head.dispose();
  });

  it('commits each checkpoint’s epoch inside model.json, ahead of the topology, and keeps only the weights it names', async () => {
    const entry = findModel('mobilenet_v2_0.35')!;
    const base = await loadLayersModelFromDir(tf, baseDir);
    const head = buildHead(tf, entry.featureSize, 2, DEFAULT_TRAIN_OPTIONS);
    const classifier = buildClassifier(tf, base, head, entry);
    const meta = classifierMetadata(['a', 'b'], entry);
    const dir = path.join(tempDir('classifier-record-'), 'model');
    const record = (epoch: number) => ({ epoch, valAccuracy: epoch / 10, valLoss: 1 / epoch, stage: 'head' as const, savedAt: 'now' });
    await saveModelDir(classifier, dir, meta, tf, record(1));
    const firstWeights = weightFiles(dir);
    // Back to back, as fast epochs checkpoint.
    await saveModelDir(classifier, dir, meta, tf, record(2));
    await saveModelDir(classifier, dir, meta, tf, record(3));
    const text = fs.readFileSync(path.join(dir, 'model.json'), 'utf8');
    assert.deepEqual(parseModelCheckpoint(text.slice(0, 4096)), record(3));
    assert.ok(text.indexOf('imageTrainerCheckpoint') < text.indexOf('modelTopology'), 'the record comes before the topology');
    assert.equal(weightFiles(dir).length, 1);
    assert.notDeepEqual(weightFiles(dir), firstWeights);
    const reloaded = await loadLayersModelFromDir(tf, dir);
    reloaded.dispose();
    base.dispose();
    head.dispose();
  });
});
