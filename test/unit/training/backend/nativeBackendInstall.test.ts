import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { installNativeBackend, nativeBackendModulePath } from '../../../../src/training/backend/nativeBackendInstall';

// The real npm cannot succeed offline (the install script downloads libtensorflow from Google),
// so npm is played by small real scripts that print and exit like it does.
let tmpRoot: string;

/** An executable Node script standing in for npm; it records its arguments in args.json beside itself. */
function fakeNpm(name: string, body: string): string {
  const dir = path.join(tmpRoot, name);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'npm');
  fs.writeFileSync(
    file,
    `#!${process.execPath}
const fs = require('node:fs');
const path = require('node:path');
const args = process.argv.slice(2);
fs.writeFileSync(path.join(__dirname, 'args.json'), JSON.stringify(args));
const prefix = args[args.indexOf('--prefix') + 1];
const pkg = args[args.length - 1].replace(/@[^@/]+$/, '');
const moduleDir = path.join(prefix, 'node_modules', ...pkg.split('/'));
${body}
`,
    { mode: 0o755 },
  );
  return file;
}

function recordedArgs(npm: string): string[] {
  return JSON.parse(fs.readFileSync(path.join(path.dirname(npm), 'args.json'), 'utf8')) as string[];
}

before(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'native-install-'));
});

after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

test('a failing install streams npm output line by line and reports the last error lines with the likely cause', async () => {
  const npm = fakeNpm(
    'fails',
    `console.log('added 60 packages in 3s');
// npm 10's real output for this install on a machine without access to storage.googleapis.com.
const real = [
  'npm error code 1',
  'npm error path ' + moduleDir,
  'npm error command failed',
  'npm error command sh -c node scripts/install.js gpu download',
  'npm error GPU-linux-4.22.0.tar.gz',
  'npm error https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz',
  'npm error * Downloading libtensorflow',
  'npm error node:events:502',
  'npm error       throw er; // Unhandled \\'error\\' event',
  'npm error       ^',
  'npm error',
  'npm error Error: getaddrinfo ENOTFOUND storage.googleapis.com',
  'npm error     at GetAddrInfoReqWrap.onlookupall [as oncomplete] (node:dns:122:26)',
  'npm error Emitted \\'error\\' event on ClientRequest instance at:',
  'npm error     at emitErrorEvent (node:_http_client:101:11)',
  'npm error     at process.processTicksAndRejections (node:internal/process/task_queues:82:21) {',
  'npm error   errno: -3008,',
  'npm error   code: \\'ENOTFOUND\\',',
  'npm error   syscall: \\'getaddrinfo\\',',
  'npm error   hostname: \\'storage.googleapis.com\\'',
  'npm error }',
  'npm error',
  'npm error Node.js v20.20.2',
  'npm error A complete log of this run can be found in: /home/u/.npm/_logs/2024-05-01T10_00_00_000Z-debug-0.log',
];
for (const line of real) console.error(line);
process.exit(1);`,
  );
  const target = path.join(tmpRoot, 'backends-a');
  const lines: string[] = [];
  const result = await installNativeBackend('gpu', target, { onOutput: (l) => lines.push(l), npmCommand: npm });

  assert.equal(result.ok, false);
  assert.equal(result.modulePath, undefined);
  const prefix = path.join(target, 'tfjs-node-gpu');
  assert.deepEqual(recordedArgs(npm), [
    'install',
    '--no-save',
    '--no-audit',
    '--no-fund',
    '--prefix',
    prefix,
    '@tensorflow/tfjs-node-gpu@4.22.0',
  ]);
  assert.equal(lines[0], `$ ${npm} install --no-save --no-audit --no-fund --prefix ${prefix} @tensorflow/tfjs-node-gpu@4.22.0`);
  assert.ok(lines.includes('added 60 packages in 3s'));
  assert.ok(lines.includes('npm error Error: getaddrinfo ENOTFOUND storage.googleapis.com'));
  assert.ok(lines.includes('npm error   errno: -3008,'), 'every line is streamed, even those left out of the message');
  assert.match(
    result.message,
    /^npm install @tensorflow\/tfjs-node-gpu@4\.22\.0 failed \(exit code 1\): its install script could not download libtensorflow from storage\.googleapis\.com \(no internet access, or a proxy\/firewall\)\. npm's last error lines:\nnpm error code 1\n/,
  );
  assert.deepEqual(result.message.split('\n').slice(1), [
    'npm error code 1',
    `npm error path ${nativeBackendModulePath('gpu', target)}`,
    'npm error command failed',
    'npm error command sh -c node scripts/install.js gpu download',
    'npm error GPU-linux-4.22.0.tar.gz',
    'npm error https://storage.googleapis.com/tensorflow/libtensorflow/libtensorflow-gpu-linux-x86_64-2.9.1.tar.gz',
    'npm error * Downloading libtensorflow',
    'npm error Error: getaddrinfo ENOTFOUND storage.googleapis.com',
    'npm error A complete log of this run can be found in: /home/u/.npm/_logs/2024-05-01T10_00_00_000Z-debug-0.log',
  ]);
});

test('a successful install returns the module folder with its native binary', async () => {
  const npm = fakeNpm(
    'succeeds',
    `fs.mkdirSync(path.join(moduleDir, 'lib', 'napi-v8'), { recursive: true });
fs.writeFileSync(path.join(moduleDir, 'package.json'), JSON.stringify({ name: pkg, version: '4.22.0' }));
fs.writeFileSync(path.join(moduleDir, 'lib', 'napi-v8', 'tfjs_binding.node'), '');
console.log('added 1 package in 1s');`,
  );
  const target = path.join(tmpRoot, 'backends-b');
  const lines: string[] = [];
  const result = await installNativeBackend('cpu', target, { onOutput: (l) => lines.push(l), npmCommand: npm });
  assert.equal(result.ok, true, result.message);
  assert.equal(result.modulePath, path.join(target, 'tfjs-node', 'node_modules', '@tensorflow', 'tfjs-node'));
  assert.equal(result.modulePath, nativeBackendModulePath('cpu', target));
  assert.match(result.message, /^Installed @tensorflow\/tfjs-node@4\.22\.0 in .*tfjs-node \(\d+\.\d s\)\./);
  assert.deepEqual(lines.slice(1), ['added 1 package in 1s']);
});

test('an install that ends without the native binary is not reported as success', async () => {
  const npm = fakeNpm(
    'no-binary',
    `fs.mkdirSync(moduleDir, { recursive: true });
fs.writeFileSync(path.join(moduleDir, 'package.json'), '{}');`,
  );
  const result = await installNativeBackend('gpu', path.join(tmpRoot, 'backends-c'), { onOutput: () => undefined, npmCommand: npm });
  assert.equal(result.ok, false);
  assert.match(
    result.message,
    /without its native binary \(lib\/napi-v\*\/tfjs_binding\.node\): its install script could not download libtensorflow/,
  );
});

test('cancelling stops npm and removes the half-installed module', async () => {
  const npm = fakeNpm(
    'slow',
    `fs.mkdirSync(moduleDir, { recursive: true });
fs.writeFileSync(path.join(moduleDir, 'package.json'), '{}');
console.log('npm http fetch GET 200 https://registry.npmjs.org/@tensorflow%2ftfjs-node-gpu');
setTimeout(() => process.exit(0), 30000);`,
  );
  const target = path.join(tmpRoot, 'backends-d');
  const controller = new AbortController();
  const started = Date.now();
  const result = await installNativeBackend('gpu', target, {
    onOutput: (l) => {
      if (l.startsWith('npm http fetch')) controller.abort();
    },
    npmCommand: npm,
    signal: controller.signal,
  });
  const elapsed = Date.now() - started;
  assert.equal(result.ok, false);
  assert.match(
    result.message,
    /^Installation of @tensorflow\/tfjs-node-gpu@4\.22\.0 was cancelled after \d+\.\d s; nothing half-installed was kept\.$/,
  );
  assert.ok(elapsed < 5000, `stopped after ${elapsed} ms: cancel must stop npm instead of letting it run its 30 s`);
  assert.equal(fs.existsSync(nativeBackendModulePath('gpu', target)), false);
});

test('a missing npm is explained', async () => {
  const result = await installNativeBackend('gpu', path.join(tmpRoot, 'backends-e'), {
    onOutput: () => undefined,
    npmCommand: path.join(tmpRoot, 'no-such-npm'),
  });
  assert.equal(result.ok, false);
  assert.match(result.message, /no-such-npm was not found on PATH \(VS Code's own Node\.js has no npm\)/);
});
