// `image-trainer diagnose` through the built bundle: what is missing, and a backend that is
// installed (by "Install GPU Backend") but fails to load shows its load error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { BackendInfo } from '../../src/shared/types';
import { nativeBackendModulePath } from '../../src/training/backend/nativeBackendInstall';

const run = promisify(execFile);
const bundle = path.resolve(__dirname, '../../dist/training.js');

async function diagnose(...args: string[]): Promise<BackendInfo> {
  const out = await run(process.execPath, [bundle, 'diagnose', '--json', ...args]);
  return JSON.parse(out.stdout) as BackendInfo;
}

test('with no native backend installed, diagnose names both missing packages and runs on WebAssembly', async () => {
  const info = await diagnose();
  assert.equal(info.backend, 'wasm');
  const byName = Object.fromEntries(info.attempts.map((a) => [a.backend, a]));
  assert.equal(byName['tensorflow-gpu'].status, 'missing');
  assert.match(byName['tensorflow-gpu'].detail, /@tensorflow\/tfjs-node-gpu/);
  assert.equal(byName.tensorflow.status, 'missing');
  assert.match(info.summary, /^WebAssembly/);
  // onnxruntime-node ships with the package: features and head steps run there, and diagnose says so.
  assert.match(info.featureRuntime ?? '', /^onnxruntime-node \d+\.\d+\.\d+ \(CPU, BatchNorm folded\)$/);
  assert.match(info.headRuntime ?? '', /^onnxruntime-node \d+\.\d+\.\d+ \(CPU, 1 thread, one graph per Adam step\)$/);
});

test('diagnose names tfjs as the head runtime when IMAGE_TRAINER_HEAD_RUNTIME=tfjs says so', async () => {
  const out = await run(process.execPath, [bundle, 'diagnose'], { env: { ...process.env, IMAGE_TRAINER_HEAD_RUNTIME: 'tfjs' } });
  assert.match(out.stdout, /^Head: tfjs wasm \(IMAGE_TRAINER_HEAD_RUNTIME=tfjs\)$/m);
  assert.match(out.stdout, /^Features: onnxruntime-node /m);
});

test('an installed GPU backend that fails to load shows its load error, and the next backend runs', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'it-native-'));
  const mod = nativeBackendModulePath('gpu', dir);
  fs.mkdirSync(mod, { recursive: true });
  fs.writeFileSync(
    path.join(mod, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-node-gpu', version: '4.22.0', main: 'index.js' }),
  );
  fs.writeFileSync(
    path.join(mod, 'index.js'),
    "throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');\n",
  );
  const info = await diagnose('--native-dir', dir);
  const gpu = info.attempts.find((a) => a.backend === 'tensorflow-gpu');
  assert.equal(gpu?.status, 'failed');
  assert.match(gpu?.detail ?? '', /libcudart\.so\.11\.0/);
  assert.equal(info.backend, 'wasm');
  assert.match(info.summary, /libcudart\.so\.11\.0|failed/);
});

test('install-backend with a bad kind is refused with a one-line reason', async () => {
  await assert.rejects(
    run(process.execPath, [bundle, 'install-backend', 'tpu', '--dir', os.tmpdir()]),
    (err: { stderr: string; code: number }) => {
      assert.equal(err.code, 1);
      assert.match(err.stderr, /kind must be gpu or cpu/);
      return true;
    },
  );
});
