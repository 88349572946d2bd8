// A backend asked for by name through the built CLI: neither native package can be installed on
// this project's machines, so `--backend gpu` and `--backend cpu-native` fail for real, and must
// say so and exit non-zero instead of training on WebAssembly; `auto` still falls back, saying why.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunStatus } from '../../src/shared/runFolder';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson } from '../support/trainingBundle';

/** Runs the CLI to its end: exit code, stdout and stderr (a failing run does not throw here). */
function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { cwd, timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** `train` on a small copy of the leaves with `--backend <backend>` and an empty `--native-dir` (searched per package). */
async function trainOn(backend: string): Promise<{ code: number | null; stdout: string; stderr: string; work: string; native: string }> {
  const work = tempDir(`it-backend-${backend}-`);
  const data = path.join(work, 'leaves');
  copySample(data, 3, ['healthy', 'scab']);
  const native = path.join(work, 'native');
  fs.mkdirSync(native);
  const args = ['train', data, '--backend', backend, '--native-dir', native, '--epochs', '1', '--quiet'];
  const out = await cli([...args, '--out', path.join(work, 'runs'), '--cache', path.join(work, 'cache')], work);
  return { ...out, work, native };
}

before(() => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
});

for (const [backend, which] of [
  ['gpu', 'the GPU backend (@tensorflow/tfjs-node-gpu)'],
  ['cpu-native', 'the native CPU backend (@tensorflow/tfjs-node)'],
] as const) {
  test(`--backend ${backend} that cannot load fails the run with the reason and diagnose as the next step, and trains nothing`, async () => {
    const { code, stdout, stderr, work, native } = await trainOn(backend);
    assert.equal(code, 1);
    assert.doesNotMatch(stdout, /Validation accuracy|WebAssembly/);
    const last = stderr.trim().split('\n').at(-1) ?? '';
    const runDir = onlyRun(path.join(work, 'runs'));
    assert.equal(
      last,
      `Backend unavailable: ${which} cannot load: module not installed (searched ${native}/tfjs-node-gpu, ${native}/tfjs-node and the extension's node_modules). ` +
        `Run \`image-trainer diagnose\` to see what is missing, or use --backend auto. (run folder: ${runDir})`,
    );
    const status = readJson<RunStatus>(path.join(runDir, 'status.json'));
    assert.equal(status.state, 'failed');
    assert.equal(status.errorKind, 'backend');
    assert.ok(!fs.existsSync(path.join(runDir, 'model')), 'no model was trained');
  });
}

test('--backend auto still falls back to WebAssembly when neither native backend loads, saying why', async () => {
  const { code, stdout, stderr } = await trainOn('auto');
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^Validation accuracy: /m);
  assert.doesNotMatch(stderr, /Backend unavailable/);
});
