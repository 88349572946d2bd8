import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunStatus } from '../../../../src/shared/runFolder';
import { describeWriteFailure, survivingCheckpoint } from '../../../../src/training/run/writeFailure';
import { writeFileAtomic } from '../../../../src/training/util/atomicWrite';
import { TrainerError } from '../../../../src/training/util/errors';
import { smallDisk } from '../../../support/smallDisk';
import { tempDir } from '../../../support/tempDirs';

const status = (patch: Partial<RunStatus>): RunStatus => ({
  state: 'running',
  datasetRoot: '/d',
  datasetName: 'd',
  startedAt: 'now',
  updatedAt: 'now',
  hasCheckpoint: false,
  ...patch,
});

/** The error of a write of `bytes` into `file` on a disk too small for it. */
async function failedWrite(file: string, bytes: number): Promise<unknown> {
  return writeFileAtomic(file, new Uint8Array(bytes)).then(
    () => assert.fail(`${file} fitted`),
    (err: unknown) => err,
  );
}

test('a full disk in the run folder is told as the file, the cause and the checkpoint that survived', async (t) => {
  const runDir = smallDisk(t, 64);
  if (!runDir) return;
  fs.mkdirSync(path.join(runDir, 'model'));
  fs.writeFileSync(path.join(runDir, 'model', 'model.json'), '{}');
  const err = await failedWrite(path.join(runDir, 'model', 'weights-b.bin'), 256 * 1024);
  const described = describeWriteFailure(err, runDir, status({ hasCheckpoint: true, bestEpoch: 3, valAccuracy: 0.875 }));
  assert.ok(described instanceof TrainerError);
  assert.equal(described.kind, 'disk');
  assert.equal(described.cause, err);
  assert.equal(
    described.message,
    `model/weights-b.bin in the run folder ${runDir}: no space left on device (ENOSPC). The checkpoint of epoch 3 (validation accuracy 87.5%) survived: \`image-trainer predict ${runDir} <image-or-folder>\` can use it.`,
  );
  assert.deepEqual(fs.readdirSync(path.join(runDir, 'model')), ['model.json']);
});

test('what survived is read from the run folder: no model, a model status.json does not know, a recorded checkpoint', () => {
  const runDir = tempDir('unit-survivor-');
  assert.equal(survivingCheckpoint(runDir, status({ hasCheckpoint: true, bestEpoch: 2 })), 'No checkpoint had been saved.');
  fs.mkdirSync(path.join(runDir, 'model'));
  fs.writeFileSync(path.join(runDir, 'model', 'model.json'), '{}');
  assert.equal(
    survivingCheckpoint(runDir, undefined),
    `A checkpoint survived in model/: \`image-trainer predict ${runDir} <image-or-folder>\` can use it.`,
  );
  assert.match(survivingCheckpoint(runDir, status({ hasCheckpoint: true, bestEpoch: 2 })), /^The checkpoint of epoch 2 survived: /);
});

test('failures that are not writes in the run folder are left as they are', async () => {
  const runDir = tempDir('unit-not-write-');
  const elsewhere = tempDir('unit-elsewhere-');
  // A real write failure outside the run folder (the target is a folder there).
  fs.mkdirSync(path.join(elsewhere, 'x.json', 'sub'), { recursive: true });
  const outside = await writeFileAtomic(path.join(elsewhere, 'x.json'), 'x').catch((e: unknown) => e);
  assert.equal(describeWriteFailure(outside, runDir, undefined), outside);
  const options = new TrainerError('options', 'bad');
  assert.equal(describeWriteFailure(options, runDir, undefined), options);
  const plain = new Error('something else');
  assert.equal(describeWriteFailure(plain, runDir, undefined), plain);
});
