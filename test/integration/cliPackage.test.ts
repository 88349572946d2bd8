// The command-line tool as a user gets it: `npm run pack:cli` makes the tarball, `npm install -g`
// puts it into a fresh prefix (dependencies from the npm cache or registry), and the installed
// `image-trainer` trains from any folder, on WebAssembly with onnxruntime-node left optional.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../support/tempDirs';

const repoRoot = path.resolve(__dirname, '../..');
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const work = tempDir('image-trainer-cli-package-');
const prefix = path.join(work, 'prefix');
const tarball = path.join(work, `image-trainer-${version}.tgz`);
const binDir = process.platform === 'win32' ? prefix : path.join(prefix, 'bin');
const cli = path.join(binDir, process.platform === 'win32' ? 'image-trainer.cmd' : 'image-trainer');
// No install script reaches beyond the npm registry: onnxruntime-node's optional CUDA download is skipped.
const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_prefix: prefix, npm_config_update_notifier: 'false' };
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

before(() => {
  execFileSync(process.execPath, ['scripts/packCli.mjs', '--out-dir', work], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync(npm, ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], {
    cwd: work,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 10 * 60_000,
  });
});

test('the tarball holds only the bin, the training bundle, its WebAssembly binaries and the embedded model', () => {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  const unexpected = files.filter(
    (f) =>
      !/^(package\.json|README\.md|LICENSE|bin\/image-trainer\.js|dist\/training\.js|dist\/wasm\/[^/]+\.wasm)$/.test(f) &&
      !f.startsWith('media/models/mobilenet_v2_0.35_224_no_top/') &&
      !f.startsWith('node_modules/@tensorflow/tfjs-backend-wasm/'),
  );
  assert.deepEqual(unexpected, []);
  assert.ok(files.includes('dist/training.js') && files.includes('bin/image-trainer.js'));
});

test('the installed image-trainer --version prints the manifest version', () => {
  assert.equal(execFileSync(cli, ['--version'], { env, encoding: 'utf8' }).trim(), version);
});

test('npx image-trainer runs the installed tool', () => {
  const out = execFileSync(npm === 'npm' ? 'npx' : 'npx.cmd', ['--offline', 'image-trainer', '--version'], {
    cwd: work,
    env: { ...env, PATH: `${binDir}${path.delimiter}${process.env.PATH}` },
    encoding: 'utf8',
  });
  assert.equal(out.trim(), version);
});

test('the installed image-trainer train <folder> trains from another folder and writes its runs there', () => {
  const dataset = path.join(work, 'data', 'leaves');
  fs.cpSync(path.join(repoRoot, 'samples', 'leaves'), dataset, { recursive: true });
  const elsewhere = path.join(work, 'elsewhere');
  fs.mkdirSync(elsewhere);
  const result = spawnSync(cli, ['train', dataset, '--epochs', '3', '--quiet'], {
    cwd: elsewhere,
    env,
    encoding: 'utf8',
    timeout: 5 * 60_000,
  });
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stderr, /^Backend: /m);
  assert.match(result.stdout, /^Validation accuracy: \d+\.\d% \(best epoch \d+ of \d+\)$/m);
  const runDir = /^Run folder: (.+)$/m.exec(result.stdout)?.[1] ?? '';
  assert.ok(runDir.startsWith(path.join(elsewhere, '.image-trainer', 'runs')), runDir);
  assert.ok(fs.existsSync(path.join(runDir, 'model', 'model.json')));
});
