import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { diagnoseBackends, initBackend } from '../../../../src/training/backend/backend';
import { TrainerError } from '../../../../src/training/util/errors';

let tmp: string;
let brokenGpuDir: string;
let emptyDir: string;

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'backend-test-'));
  emptyDir = path.join(tmp, 'empty');
  fs.mkdirSync(emptyDir);
  // What an "Install GPU Backend" folder looks like when CUDA 11 is missing on the machine.
  brokenGpuDir = path.join(tmp, 'gpu-install');
  const pkg = path.join(brokenGpuDir, 'node_modules', '@tensorflow', 'tfjs-node-gpu');
  fs.mkdirSync(pkg, { recursive: true });
  fs.writeFileSync(
    path.join(pkg, 'index.js'),
    "throw new Error('libcudart.so.11.0: cannot open shared object file: No such file or directory');\n",
  );
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('initBackend', () => {
  it('says both native packages are missing and runs threaded WebAssembly when nothing native is installed', async () => {
    const { tf: engine, info } = await initBackend({ preference: 'auto', nativeModulePaths: [emptyDir], wasmThreads: 2 });
    assert.equal(info.backend, 'wasm');
    assert.equal(engine.getBackend(), 'wasm');
    assert.deepEqual(
      info.attempts.map((a) => [a.backend, a.status]),
      [
        ['tensorflow-gpu', 'missing'],
        ['tensorflow', 'missing'],
        ['wasm', 'ok'],
      ],
    );
    assert.match(info.attempts[0].detail, /@tensorflow\/tfjs-node-gpu is not installed/);
    assert.equal(info.threads, 2, info.summary);
    assert.equal(
      info.summary,
      'WebAssembly (2 threads) — GPU backend not installed (@tensorflow/tfjs-node-gpu); native CPU backend not installed (@tensorflow/tfjs-node)',
    );
  });

  it('computes the same convolution on the threaded WebAssembly backend as on the pure-JS one', async () => {
    await initBackend({ preference: 'auto', nativeModulePaths: [emptyDir], wasmThreads: 2 });
    const x = tf.tidy(() => tf.sin(tf.range(0, 2 * 28 * 28 * 8).reshape([2, 28, 28, 8])) as tf.Tensor4D);
    const w = tf.tidy(() => tf.cos(tf.range(0, 3 * 3 * 8 * 16).reshape([3, 3, 8, 16])) as tf.Tensor4D);
    const onWasm = tf.conv2d(x, w, 1, 'same').dataSync().slice();
    await tf.setBackend('cpu');
    const xc = tf.tensor4d(x.dataSync(), x.shape);
    const wc = tf.tensor4d(w.dataSync(), w.shape);
    const onCpu = tf.conv2d(xc, wc, 1, 'same').dataSync();
    await tf.setBackend('wasm');
    let maxDiff = 0;
    for (let i = 0; i < onCpu.length; i++) maxDiff = Math.max(maxDiff, Math.abs(onCpu[i] - onWasm[i]));
    assert.ok(maxDiff < 1e-3, `max difference ${maxDiff}`);
    tf.dispose([x, w]);
  });

  it('reports a GPU package that fails to load with its error and falls back to WebAssembly', async () => {
    const { tf: engine, info } = await initBackend({ preference: 'auto', nativeModulePaths: [brokenGpuDir], wasmThreads: 2 });
    assert.equal(info.backend, 'wasm');
    assert.equal(engine.getBackend(), 'wasm');
    const gpu = info.attempts.find((a) => a.backend === 'tensorflow-gpu');
    assert.equal(gpu?.status, 'failed');
    assert.match(gpu!.detail, /libcudart\.so\.11\.0: cannot open shared object file/);
    assert.match(gpu!.detail, /CUDA 11/, 'the detail explains what to install');
    assert.equal(info.attempts.find((a) => a.backend === 'tensorflow')?.status, 'missing');
    assert.match(
      info.summary,
      /^WebAssembly \(2 threads\) — GPU backend failed: @tensorflow\/tfjs-node-gpu failed to load: libcudart\.so\.11\.0: cannot open shared object file/,
    );
  });

  it('accepts the node_modules folder itself as a native module path', async () => {
    const info = await diagnoseBackends({ preference: 'gpu', nativeModulePaths: [path.join(brokenGpuDir, 'node_modules')] });
    assert.equal(info.attempts[0].status, 'failed');
  });

  it('leaves a WebAssembly backend that was started earlier, and its tensors, in place', () => {
    // A fresh process: in this one the backend is already set up.
    const script = path.join(tmp, 'started-early.ts');
    const backendModule = path.resolve(__dirname, '../../../../src/training/backend/backend.ts');
    fs.writeFileSync(
      script,
      [
        `import * as tf from ${JSON.stringify(require.resolve('@tensorflow/tfjs'))};`,
        `import ${JSON.stringify(require.resolve('@tensorflow/tfjs-backend-wasm'))};`,
        `import { initBackend } from ${JSON.stringify(backendModule)};`,
        '(async () => {',
        "  await tf.setBackend('wasm');",
        '  const t = tf.tensor1d([1, 2, 3]);',
        "  const { info } = await initBackend({ preference: 'wasm', wasmThreads: 2 });",
        '  console.log(JSON.stringify({ summary: info.summary, values: Array.from(t.dataSync()) }));',
        '})();',
      ].join('\n'),
    );
    const out = execFileSync(process.execPath, ['--import', 'tsx', script], {
      encoding: 'utf8',
      cwd: path.resolve(__dirname, '../../../..'),
    });
    const result = JSON.parse(out.slice(out.lastIndexOf('{"summary"'))) as { summary: string; values: number[] };
    assert.deepEqual(result.values, [1, 2, 3]);
    assert.equal(
      result.summary,
      'WebAssembly (1 thread; threads unavailable: the WebAssembly backend was started before the thread setup)',
    );
  });

  it('refuses an explicitly requested GPU backend whose package is not installed, naming where it looked, instead of running WebAssembly', async () => {
    await assert.rejects(initBackend({ preference: 'gpu', nativeModulePaths: [emptyDir], wasmThreads: 2 }), (err: unknown) => {
      assert.ok(err instanceof TrainerError);
      assert.equal(err.kind, 'backend');
      assert.equal(
        err.message,
        `the GPU backend (@tensorflow/tfjs-node-gpu) cannot load: module not installed (searched ${emptyDir} and the extension's node_modules). Run \`image-trainer diagnose\` to see what is missing, or use --backend auto.`,
      );
      return true;
    });
  });

  it('refuses an explicitly requested GPU backend whose package fails to load, with the loader error and what to install', async () => {
    await assert.rejects(
      initBackend({ preference: 'gpu', nativeModulePaths: [brokenGpuDir], wasmThreads: 2 }),
      /^TrainerError: the GPU backend \(@tensorflow\/tfjs-node-gpu\) cannot load: libcudart\.so\.11\.0: cannot open shared object file: No such file or directory — .*CUDA 11.*\. Run `image-trainer diagnose` to see what is missing, or use --backend auto\.$/,
    );
  });

  it('refuses an explicitly requested native CPU backend that is not installed, and looks again on the next call', async () => {
    const dir = path.join(tmp, 'cpu-install');
    fs.mkdirSync(dir);
    const options = { preference: 'cpu-native' as const, nativeModulePaths: [dir], wasmThreads: 2 };
    const advice = 'Run `image-trainer diagnose` to see what is missing, or use --backend auto.';
    await assert.rejects(initBackend(options), {
      name: 'TrainerError',
      kind: 'backend',
      message: `the native CPU backend (@tensorflow/tfjs-node) cannot load: module not installed (searched ${dir} and the extension's node_modules). ${advice}`,
    });
    // Installed meanwhile, broken: the same options are tried again rather than answered from memory.
    const pkg = path.join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
    fs.mkdirSync(pkg, { recursive: true });
    fs.writeFileSync(path.join(pkg, 'index.js'), "throw new Error('libtensorflow.so.2: cannot open shared object file');\n");
    await assert.rejects(initBackend(options), (err: unknown) => {
      assert.ok(err instanceof TrainerError);
      assert.match(
        err.message,
        /^the native CPU backend \(@tensorflow\/tfjs-node\) cannot load: libtensorflow\.so\.2: cannot open shared object file/,
      );
      assert.ok(err.message.endsWith(advice), err.message);
      return true;
    });
  });

  it('skips the native packages when WebAssembly is asked for', async () => {
    const { info } = await initBackend({ preference: 'wasm', nativeModulePaths: [brokenGpuDir], wasmThreads: 2 });
    assert.deepEqual(
      info.attempts.map((a) => [a.backend, a.status]),
      [
        ['tensorflow-gpu', 'skipped'],
        ['tensorflow', 'skipped'],
        ['wasm', 'ok'],
      ],
    );
    assert.equal(info.summary, 'WebAssembly (2 threads)');
  });
});

describe('diagnoseBackends', () => {
  it('names what is missing and what would run without switching the backend', async () => {
    await tf.setBackend('cpu');
    const info = await diagnoseBackends({ preference: 'auto', nativeModulePaths: [brokenGpuDir] });
    assert.equal(tf.getBackend(), 'cpu', 'diagnosis does not switch backends');
    assert.equal(info.backend, 'wasm');
    assert.equal(info.attempts[0].status, 'failed');
    assert.match(info.attempts[0].detail, /libcudart\.so\.11\.0/);
    assert.equal(info.attempts[1].status, 'missing');
    assert.match(info.summary, /GPU backend failed/);
    await tf.setBackend('wasm');
  });

  it('adds what the machine lacks for the GPU when the GPU package is not installed', async () => {
    const info = await diagnoseBackends({ preference: 'gpu', nativeModulePaths: [emptyDir] });
    assert.equal(info.attempts[0].status, 'missing');
    assert.match(info.attempts[0].detail, /not installed \(searched .*\)\. GPU (backend unavailable|pieces)/);
    assert.equal(info.attempts[1].status, 'skipped');
  });
});
