// `predict` through the real CLI on a run folder damaged in one way at a time: it exits non-zero
// with one line naming the file and the problem, and it decides so before it looks at the image
// (the image path given does not exist, so any error about the image means it got that far).
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../support/tempDirs';
import { bundle, readJson, trainSampleCopy } from '../support/trainingBundle';

let trained: string;
let weightsName: string;
let weightsSize: number;

function node(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** A copy of the trained run folder, damaged by `damage`. */
function damagedRun(damage: (runDir: string) => void): string {
  const runDir = path.join(tempDir('it-predict-bad-'), path.basename(trained));
  fs.cpSync(trained, runDir, { recursive: true });
  damage(runDir);
  return runDir;
}

/** predict on `runDir` with an image that does not exist: the lines it prints on stderr. */
async function predictLines(runDir: string): Promise<{ code: number | null; lines: string[] }> {
  const out = await node([bundle, 'predict', runDir, path.join(path.dirname(runDir), 'no-such-image.jpg')]);
  return { code: out.code, lines: out.stderr.split('\n').filter((l) => l.trim() !== '') };
}

async function assertRefused(runDir: string, problem: string): Promise<void> {
  const { code, lines } = await predictLines(runDir);
  assert.equal(code, 1);
  assert.deepEqual(lines, [`Run folder problem: ${problem} (run folder: ${runDir})`]);
}

before(async () => {
  ({ runDir: trained } = await trainSampleCopy(tempDir('it-predict-'), 4, { classes: ['healthy', 'scab'] }));
  weightsName = readJson<{ weightsManifest: { paths: string[] }[] }>(path.join(trained, 'model', 'model.json')).weightsManifest[0].paths[0];
  weightsSize = fs.statSync(path.join(trained, 'model', weightsName)).size;
});

test('an intact run folder gets as far as the image, and says the image is missing', async () => {
  const { code, lines } = await predictLines(damagedRun(() => undefined));
  assert.equal(code, 1);
  assert.match(lines.at(-1) ?? '', /no-such-image\.jpg/);
  assert.doesNotMatch(lines.join('\n'), /Run folder problem/);
});

test('labels.json with fewer labels than the model has outputs is refused', async () => {
  const runDir = damagedRun((dir) => fs.writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(['healthy'])));
  await assertRefused(runDir, 'labels.json has 1 label but the model has 2 outputs');
});

test('labels.json with more labels than the model has outputs is refused', async () => {
  const runDir = damagedRun((dir) => fs.writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(['healthy', 'scab', 'rust'])));
  await assertRefused(runDir, 'labels.json has 3 labels but the model has 2 outputs');
});

test('metadata.json with fewer labels than the model has outputs is refused', async () => {
  const runDir = damagedRun((dir) => {
    const file = path.join(dir, 'model', 'metadata.json');
    fs.writeFileSync(file, JSON.stringify({ ...readJson<object>(file), labels: ['healthy'] }));
  });
  await assertRefused(runDir, 'model/metadata.json has 1 label but the model has 2 outputs');
});

test('a label that is not a string is refused', async () => {
  const runDir = damagedRun((dir) => fs.writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(['healthy', 7])));
  await assertRefused(runDir, 'labels.json: label 2 is not a string (7)');
});

test('a metadata inputSize other than the model input is refused before any image is decoded', async () => {
  const runDir = damagedRun((dir) => {
    const file = path.join(dir, 'model', 'metadata.json');
    fs.writeFileSync(file, JSON.stringify({ ...readJson<object>(file), inputSize: 8000 }));
  });
  await assertRefused(runDir, 'model/metadata.json has inputSize 8000 but the model takes 224×224 pixels');
});

test('a weights file that is a symbolic link to /dev/zero is refused without reading it', async () => {
  const runDir = damagedRun((dir) => {
    const file = path.join(dir, 'model', weightsName);
    fs.rmSync(file);
    fs.symlinkSync('/dev/zero', file);
  });
  await assertRefused(runDir, `model/${weightsName} is a symbolic link; the model's files must be regular files in the run folder`);
});

test('a weights file that is a FIFO is refused without opening it', async () => {
  const runDir = damagedRun((dir) => {
    const file = path.join(dir, 'model', weightsName);
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
  });
  await assertRefused(runDir, `model/${weightsName} is a FIFO, not a regular file`);
});

test('a weights file of the wrong size is refused', async () => {
  const runDir = damagedRun((dir) => fs.truncateSync(path.join(dir, 'model', weightsName), weightsSize - 4));
  await assertRefused(runDir, `model/${weightsName} has ${weightsSize - 4} bytes but model.json's manifest needs ${weightsSize}`);
});

test('a run folder without a model is refused in one line', async () => {
  const runDir = damagedRun((dir) => fs.rmSync(path.join(dir, 'model'), { recursive: true }));
  await assertRefused(runDir, `${runDir} holds no trained model (no model/model.json): pick a run that finished or saved a checkpoint.`);
});
