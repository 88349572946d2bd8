import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BackendInfo } from '../../../src/shared/types';
import {
  formatBackendReport,
  parseDiagnoseOutput,
  parseExplainOutput,
  parsePredictOutput,
  runTrainingCli,
  stopChildProcess,
} from '../../../src/extension/trainingCli';
import { tempDir } from '../../support/tempDirs';

/** Writes a small child-process script to a temp file. */
function script(source: string): string {
  const file = path.join(tempDir('it-cli-'), 'child.js');
  fs.writeFileSync(file, source);
  return file;
}

test('the CLI runner passes arguments and collects stdout, stderr and the exit code', async () => {
  const file = script(`console.log(JSON.stringify(process.argv.slice(2))); console.error('warned'); process.exit(3);`);
  const result = await runTrainingCli(file, ['predict', 'a b', '--json']);
  assert.equal(result.code, 3);
  assert.deepEqual(JSON.parse(result.stdout), ['predict', 'a b', '--json']);
  assert.equal(result.stderr.trim(), 'warned');
});

test('the CLI runner stops a child that runs past its timeout', async () => {
  const file = script(`setInterval(() => {}, 1000);`);
  const t0 = Date.now();
  const result = await runTrainingCli(file, [], { timeoutMs: 300 });
  assert.equal(result.signal, 'SIGTERM');
  const ms = Date.now() - t0;
  assert.ok(ms < 10_000, `stopped after ${ms} ms: the 300 ms timeout must stop an endless child instead of waiting for it`);
});

test('a child that obeys the cancel request exits without signals', async () => {
  const child = fork(
    script(
      `process.on('message', (m) => { if (m.type === 'cancel') process.exit(0); }); process.send('ready'); setInterval(() => {}, 1000);`,
    ),
    [],
    { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] },
  );
  await new Promise((r) => child.once('message', r));
  const how = await stopChildProcess(child, { askMs: 10_000, termMs: 2000, ask: () => child.send({ type: 'cancel' }) });
  assert.equal(how, 'exited');
  assert.equal(child.exitCode, 0);
});

test('a child that ignores cancel and SIGTERM is killed with SIGKILL after both grace periods', async () => {
  const child = fork(
    script(`process.on('SIGTERM', () => {}); process.on('message', () => {}); process.send('ready'); setInterval(() => {}, 1000);`),
    [],
    { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] },
  );
  await new Promise((r) => child.once('message', r));
  const t0 = Date.now();
  const how = await stopChildProcess(child, { askMs: 300, termMs: 300, ask: () => child.send({ type: 'cancel' }) });
  assert.equal(how, 'killed');
  assert.equal(child.signalCode, 'SIGKILL');
  const elapsed = Date.now() - t0;
  assert.ok(
    elapsed >= 550 && elapsed < 10_000,
    `took ${elapsed} ms: both 300 ms grace periods must pass before SIGKILL, and the kill must not hang`,
  );
  assert.throws(() => process.kill(child.pid as number, 0), /ESRCH/, 'the process is gone');
});

test('predict output is parsed line by line, log lines ignored', () => {
  const stdout = [
    'Loading model…',
    '{"path":"/x/a.jpg","label":"scab","confidence":0.91,"top":[{"label":"scab","confidence":0.91},{"label":"healthy","confidence":0.06},{"label":"black_rot","confidence":0.03}]}',
    '{"broken json',
    '{"path":"/x/b.jpg","label":"healthy","confidence":0.5,"top":[]}',
  ].join('\n');
  const lines = parsePredictOutput(stdout);
  assert.deepEqual(
    lines.map((l) => [l.label, l.top.length]),
    [
      ['scab', 3],
      ['healthy', 0],
    ],
  );
});

const info: BackendInfo = {
  backend: 'wasm',
  summary: 'Running on WebAssembly: @tensorflow/tfjs-node-gpu is not installed.',
  attempts: [
    { backend: 'tensorflow-gpu', status: 'failed', detail: 'libcudart.so.11.0: cannot open shared object file' },
    { backend: 'tensorflow', status: 'missing', detail: "Cannot find module '@tensorflow/tfjs-node'" },
    { backend: 'wasm', status: 'ok', detail: '2 threads' },
  ],
};

test('diagnose output is found whether printed pretty or on one line after logs', () => {
  assert.deepEqual(parseDiagnoseOutput(JSON.stringify(info, null, 2)), info);
  assert.deepEqual(parseDiagnoseOutput(`checking backends…\n${JSON.stringify(info)}\n`), info);
  assert.equal(parseDiagnoseOutput('no json here'), undefined);
});

test('the diagnostics page names the backend in use, each failure with its error, and what to install', () => {
  const md = formatBackendReport(info, 'auto');
  assert.match(md, /\*\*Runs on:\*\* WebAssembly/);
  assert.match(md, /GPU \(TensorFlow CUDA.*\| failed to load \| libcudart\.so\.11\.0: cannot open shared object file \|/);
  assert.match(md, /CUDA 11\.x/);
  assert.match(md, /Install `@tensorflow\/tfjs-node`/);
  assert.doesNotMatch(md, /Nothing: this is the fastest/);
  const gpu = formatBackendReport(
    { backend: 'tensorflow-gpu', summary: 'GPU', attempts: [{ backend: 'tensorflow-gpu', status: 'ok', detail: 'RTX' }] },
    'gpu',
  );
  assert.match(gpu, /Nothing: this is the fastest backend available here/);
});

test('explain --json output is parsed per image: a heatmap line, an error line, and malformed heatmaps are dropped', () => {
  const good = { path: '/d/a.jpg', label: 'scab', confidence: 0.9, class: 'scab', heatmap: { width: 2, height: 1, values: [0, 1] } };
  const stdout = [
    'Backend: WebAssembly',
    JSON.stringify(good),
    JSON.stringify({ path: '/d/b.jpg', error: 'Input file contains unsupported image format' }),
    JSON.stringify({ ...good, path: '/d/c.jpg', heatmap: { width: 2, height: 2, values: [0, 1] } }),
    JSON.stringify({ ...good, path: '/d/d.jpg', heatmap: { width: 2, height: 1, values: [0, 7] } }),
    '{not json',
  ].join('\n');
  assert.deepEqual(parseExplainOutput(stdout), [good, { path: '/d/b.jpg', error: 'Input file contains unsupported image format' }]);
});

test('predict --json lines keep their novelty and unknown flag, and a mistyped one is dropped', () => {
  const line = { path: '/p.jpg', label: 'a', confidence: 0.6, top: [{ label: 'a', confidence: 0.6 }], novelty: 80.1, unknown: true };
  assert.deepEqual(parsePredictOutput(JSON.stringify(line)), [line]);
  assert.deepEqual(parsePredictOutput(JSON.stringify({ ...line, unknown: 'yes' })), []);
});
