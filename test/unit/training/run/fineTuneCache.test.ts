import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_TRAIN_OPTIONS } from '../../../../src/shared/types';
import type { DatasetItem } from '../../../../src/training/dataset/datasetScanner';
import { fineTuneKey, readFineTune, writeFineTune, type FineTuneKey } from '../../../../src/training/run/fineTuneCache';
import { CacheFolder } from '../../../../src/training/util/cacheFolder';
import { tempDir } from '../../../support/tempDirs';

const item = (sha: string, classIndex: number, split: 'train' | 'val') =>
  ({ sha256: sha.repeat(64), classIndex, split }) as unknown as DatasetItem;

const spec: FineTuneKey = {
  featureKey: 'mobilenet_v2_035|224|onnx-v3',
  cutLayer: 'block_14_expand',
  views: 'flip',
  train: [item('a', 0, 'train'), item('b', 1, 'train')],
  val: [item('c', 0, 'val')],
  options: DEFAULT_TRAIN_OPTIONS,
  runtime: 'onnx-1',
  start: [Float32Array.of(1, 2, 3), Float32Array.of(4)],
};

const result = {
  result: {
    bestEpoch: 12,
    epochsRun: 2,
    stoppedBy: 'epochs' as const,
    history: [
      { stage: 'fine-tune' as const, epoch: 11, loss: 0.5, acc: 0.8, valLoss: 0.7, valAcc: 0.72, lr: 1e-4, durationMs: 10 },
      { stage: 'fine-tune' as const, epoch: 12, loss: 0.4, acc: 0.85, valLoss: 0.6, valAcc: 0.75, lr: 1e-4, durationMs: 10 },
    ],
  },
  weights: [Float32Array.of(1.5, 2.5, 3.5), Float32Array.of(-4)],
  features: { train: Float32Array.of(0.1, 0.2, 0.3, 0.4), val: Float32Array.of(0.5, 0.6), featureSize: 2 },
};

async function folderWith(warnings: string[]): Promise<CacheFolder> {
  return CacheFolder.open(tempDir('fine-tune-cache-'), (m) => warnings.push(m));
}

describe('the fine-tuning result cache', () => {
  it('reads back exactly what it stored, under the same key only', async () => {
    const warnings: string[] = [];
    const folder = await folderWith(warnings);
    const key = fineTuneKey(spec);
    await writeFineTune(folder, key, result);
    const back = await readFineTune(folder, key, spec.start);
    assert.deepEqual(back, result);
    assert.deepEqual(warnings, []);
    // Any change upstream is another key: the head it starts from, an option, an image's class, the side of an image.
    const others = [
      { ...spec, start: [Float32Array.of(1, 2, 3.0001), Float32Array.of(4)] },
      { ...spec, options: { ...spec.options, fineTuneLearningRate: 2e-4 } },
      { ...spec, train: [item('a', 1, 'train'), item('b', 1, 'train')] },
      { ...spec, train: [item('a', 0, 'train')], val: [item('b', 1, 'val'), item('c', 0, 'val')] },
      { ...spec, views: 'dihedral' },
    ];
    for (const other of others) {
      assert.notEqual(fineTuneKey(other), key);
      assert.equal(await readFineTune(folder, fineTuneKey(other), spec.start), undefined);
    }
    // A time limit does not change what a finished training produced.
    assert.equal(fineTuneKey({ ...spec, options: { ...spec.options, timeLimitMinutes: 30 } }), key);
  });

  it('reports a damaged file, removes it and answers nothing', async () => {
    const warnings: string[] = [];
    const folder = await folderWith(warnings);
    const key = fineTuneKey(spec);
    await writeFineTune(folder, key, result);
    const file = path.join(folder.dir!, 'fine-tune', `${key.slice(0, 32)}.bin`);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 3] ^= 0x40; // one bit of a stored feature
    fs.writeFileSync(file, bytes);
    assert.equal(await readFineTune(folder, key, spec.start), undefined);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /fine-tuning result .* failed its checksum: discarded, the top of the base is trained again/);
    assert.equal(fs.existsSync(file), false);
    // Cut short, or written for weights of other shapes: the same.
    await writeFineTune(folder, key, result);
    fs.truncateSync(file, fs.statSync(file).size - 4);
    assert.equal(await readFineTune(folder, key, spec.start), undefined);
    await writeFineTune(folder, key, result);
    assert.equal(await readFineTune(folder, key, [Float32Array.of(1, 2), Float32Array.of(4)]), undefined);
    assert.equal(warnings.length, 3);
  });
});
