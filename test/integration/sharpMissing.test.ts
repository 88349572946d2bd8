// An install whose sharp has no native build for this machine (a VSIX or an npm install made for
// another platform): the real bundle with the real sharp package beside it, its platform package
// (@img/sharp-<platform>) left out, as happens when the wrong platform's files were packed.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, repo } from '../support/trainingBundle';

const run = promisify(execFile);

before(() => {
  assert.ok(fs.existsSync(bundle), 'run `npm run build` first');
});

/** A copy of the product whose node_modules holds everything but sharp's platform packages. */
function installWithoutSharpBinaries(): string {
  const app = tempDir('it-nosharp-');
  fs.mkdirSync(path.join(app, 'dist'));
  fs.copyFileSync(bundle, path.join(app, 'dist', 'training.js'));
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(app, 'package.json'));
  fs.symlinkSync(path.join(repo, 'media'), path.join(app, 'media'));
  const modules = path.join(app, 'node_modules');
  fs.mkdirSync(modules);
  for (const name of fs.readdirSync(path.join(repo, 'node_modules'))) {
    if (name === 'sharp' || name === '@img' || name.startsWith('.')) continue;
    fs.symlinkSync(path.join(repo, 'node_modules', name), path.join(modules, name));
  }
  // sharp itself is copied, so that it looks for its platform package here, where there is none;
  // its pure-JavaScript colour helper is kept.
  fs.cpSync(path.join(repo, 'node_modules', 'sharp'), path.join(modules, 'sharp'), { recursive: true });
  fs.mkdirSync(path.join(modules, '@img'));
  fs.symlinkSync(path.join(repo, 'node_modules', '@img', 'colour'), path.join(modules, '@img', 'colour'));
  return app;
}

test('without sharp binaries for this platform, train fails with one line naming the platform and what to install', async () => {
  const app = installWithoutSharpBinaries();
  const work = tempDir('it-nosharp-work-');
  const data = path.join(work, 'data');
  copySample(data, 3, ['healthy', 'scab']);
  const platform = `${process.platform}-${process.arch}`;
  const failed = await run(
    process.execPath,
    [
      path.join(app, 'dist', 'training.js'),
      'train',
      data,
      '--out',
      path.join(work, 'runs'),
      '--cache',
      path.join(work, 'cache'),
      '--quiet',
    ],
    { cwd: work, timeout: 120_000 },
  ).then(
    () => assert.fail('expected the run to fail'),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(failed.code, 1);
  const lines = failed.stderr.trim().split('\n');
  const line = lines.at(-1)!;
  assert.match(line, new RegExp(`^Backend unavailable: The image decoder \\(sharp\\) cannot load on ${platform}: `));
  assert.match(line, new RegExp(`Install the Image Trainer VSIX built for ${platform}`));
  assert.doesNotMatch(failed.stderr, /\n\s+at /, 'no stack trace');
  // The images were not blamed: no report lists them as corrupt.
  const runs = fs.readdirSync(path.join(work, 'runs'));
  for (const r of runs) {
    const report = path.join(work, 'runs', r, 'dataset-report.json');
    if (fs.existsSync(report)) assert.doesNotMatch(fs.readFileSync(report, 'utf8'), /"corrupt"/);
  }
});
