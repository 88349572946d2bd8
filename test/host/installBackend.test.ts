// Install GPU Backend in a real extension host: the command runs the training bundle's
// `install-backend`, which runs npm. npm here is a stand-in script put first on PATH (the real
// install needs libtensorflow from the internet): one that lays the package out as npm would, and
// one that fails as npm does offline.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fixtureFolder, imageTrainer, waitFor } from './hostFixtures';

const INSTALLS = `#!/bin/sh
# npm install --no-save --no-audit --no-fund --prefix <dir> <package>@<version>
prefix=""; pkg=""
while [ $# -gt 0 ]; do case "$1" in --prefix) prefix="$2"; shift 2;; *) pkg="$1"; shift;; esac; done
name="\${pkg%@*}"
dir="$prefix/node_modules/$name"
mkdir -p "$dir/lib/napi-v8"
printf '{"name":"%s","version":"4.22.0","main":"dist/index.js"}\\n' "$name" > "$dir/package.json"
: > "$dir/lib/napi-v8/tfjs_binding.node"
echo "added 1 package in 0.2s"
`;

const FAILS = `#!/bin/sh
echo "npm error code ENOTFOUND" >&2
echo "npm error network request to https://registry.npmjs.org/@tensorflow%2ftfjs-node failed, reason: getaddrinfo ENOTFOUND registry.npmjs.org" >&2
exit 1
`;

/** Runs the command, accepts the first entry of its quick pick (GPU), and returns what the command returned. */
async function installGpu(): Promise<boolean | undefined> {
  const done = vscode.commands.executeCommand<boolean>('imageTrainer.installGpuBackend');
  let result: { value: boolean | undefined } | undefined;
  void done.then((value) => (result = { value }));
  // The quick pick opens asynchronously: accept until the command moves on (accepting with no
  // quick pick open does nothing).
  for (let i = 0; i < 100 && !result; i++) {
    await new Promise((r) => setTimeout(r, 150));
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    if (result) break;
    await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
  }
  return (await done) as boolean | undefined;
}

describe('Install GPU Backend from the extension host', () => {
  const fixtures = fixtureFolder('install-backend');
  const originalPath = process.env.PATH;
  let nativeDir = '';

  before(async () => {
    nativeDir = (await imageTrainer()).storage.nativeBackendsDir;
  });

  afterEach(() => {
    process.env.PATH = originalPath;
    // Nothing the stand-in installed may reach the next test or the other suites' training runs.
    for (const kind of ['tfjs-node-gpu', 'tfjs-node']) fs.rmSync(path.join(nativeDir, kind), { recursive: true, force: true });
  });

  after(() => fixtures.cleanup());

  function npmOnPath(name: string, script: string): void {
    const bin = path.join(fixtures.dir, name);
    fs.mkdirSync(bin, { recursive: true });
    fs.writeFileSync(path.join(bin, 'npm'), script, { mode: 0o755 });
    process.env.PATH = `${bin}${path.delimiter}${originalPath ?? ''}`;
  }

  it('installs the chosen package into global storage with npm and says where', async () => {
    const api = await imageTrainer();
    npmOnPath('npm-installs', INSTALLS);
    const before = api.notices.shown.length;
    assert.equal(await installGpu(), true, 'the command reports success');
    const module = path.join(nativeDir, 'tfjs-node-gpu', 'node_modules', '@tensorflow', 'tfjs-node-gpu');
    assert.ok(fs.existsSync(path.join(module, 'lib', 'napi-v8', 'tfjs_binding.node')), `the package is in ${module}`);
    const notice = await waitFor('the success notice', () => api.notices.shown.slice(before).find((n) => n.level === 'info'));
    assert.match(
      notice.message,
      /^GPU \(CUDA\) backend installed\. Installed @tensorflow\/tfjs-node-gpu@4\.22\.0 in .*native-backends.* New training runs will try it\.$/,
    );
  });

  it('reports a failed npm with its reason and keeps nothing half-installed', async () => {
    const api = await imageTrainer();
    npmOnPath('npm-fails', FAILS);
    const before = api.notices.shown.length;
    assert.equal(await installGpu(), false, 'the command reports failure');
    const notice = await waitFor('the error notice', () => api.notices.shown.slice(before).find((n) => n.level === 'error'));
    assert.match(notice.message, /^Installing the GPU \(CUDA\) backend failed: /);
    assert.match(notice.message, /registry|ENOTFOUND/);
    assert.equal(
      fs.existsSync(path.join(nativeDir, 'tfjs-node-gpu', 'node_modules', '@tensorflow', 'tfjs-node-gpu', 'package.json')),
      false,
    );
  });
});
