// Mocha inside the extension host: the suites of test/host/ run in code-server's Node extension
// host against the extension installed from the VSIX (its install folder is passed as
// extensionDevelopmentPath, the bundled suites as extensionTestsPath), in a workspace holding a
// copy of the leaf sample. A test/host/index.ts that exports run() replaces the default runner.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import { openWorkbench, remoteUri, repoRoot, resultsDir, screenshot, startCodeServer } from './harness';
import type { Workbench } from './harness';
import type { HostTestResults } from './hostTestRunner';
import { createLeavesWorkspace } from './workspaceFixture';

const vsix = process.env.IMAGE_TRAINER_VSIX ?? path.join(repoRoot, `image-trainer-${readVersion()}.vsix`);
const hostTestsDir = path.join(repoRoot, 'test', 'host');
const timeoutMs = 8 * 60_000;

test('the extension host suites of test/host pass in VS Code with the installed VSIX', { timeout: timeoutMs + 60_000 }, async () => {
  const suites = fs.existsSync(hostTestsDir)
    ? fs.readdirSync(hostTestsDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.test.ts')).sort()
    : [];
  const customRunner = fs.existsSync(path.join(hostTestsDir, 'index.ts'));
  assert.ok(suites.length > 0 || customRunner, 'no host suites: expected test/host/*.test.ts');

  const bundle = path.join(repoRoot, '.vscode-test', 'host-tests', 'index.js');
  await bundleSuites(bundle, suites, customRunner);
  const workspace = createLeavesWorkspace();
  const resultsFile = path.join(os.tmpdir(), `image-trainer-host-results-${process.pid}.json`);
  fs.rmSync(resultsFile, { force: true });
  const server = await startCodeServer({ workspace: workspace.root, vsix, env: { IMAGE_TRAINER_HOST_TEST_RESULTS: resultsFile } });
  let workbench: Workbench | undefined;
  try {
    let exitCode: number | undefined;
    const exited = new Promise<number>((resolve) => {
      openWorkbench(server, workspace.root, {
        payload: [
          ['extensionDevelopmentPath', remoteUri(server, server.installedExtensionDir)],
          ['extensionTestsPath', remoteUri(server, bundle)],
        ],
        onAutomationExit: (code) => { exitCode = code; resolve(code); },
      }).then((w) => { workbench = w; }, (error: unknown) => { console.error(error); resolve(-1); });
    });
    const timedOut = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
    const outcome = await Promise.race([exited, timedOut]);
    if (workbench) await screenshot(workbench.page, '20-host-suites').catch(() => undefined);
    const results = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as HostTestResults) : undefined;
    if (results) {
      for (const t of results.passed) console.log(`# host ✔ ${t}`);
      for (const t of results.pending) console.log(`# host - ${t} (pending)`);
      for (const t of results.failed) console.log(`# host ✖ ${t}`);
      console.log(`# host suites: ${results.passed.length} passed, ${results.failed.length} failed, ${results.pending.length} pending`);
    }
    const mochaLines = (workbench?.consoleLines ?? []).filter((l) => /passing|failing|pending|✔|✓|\d+\) /.test(l));
    fs.writeFileSync(path.join(resultsDir, 'host-suites-console.log'), workbench?.consoleLines.join('\n') ?? '');
    assert.notEqual(outcome, 'timeout', `the host suites did not finish within ${timeoutMs / 1000} s`);
    assert.equal(exitCode, 0, `host suites failed (exit ${exitCode}):\n${results?.failed.join('\n') ?? mochaLines.join('\n')}`);
    if (results) assert.ok(results.passed.length > 0, 'no host test ran');
  } finally {
    await workbench?.close();
    fs.writeFileSync(path.join(resultsDir, 'host-suites-code-server.log'), server.log());
    await server.stop();
    fs.rmSync(server.runDir, { recursive: true, force: true });
    fs.rmSync(resultsFile, { force: true });
    workspace.remove();
  }
});

/** Bundles the suites (and mocha's runner) into one CommonJS file the extension host can require. */
async function bundleSuites(outfile: string, suites: string[], customRunner: boolean): Promise<void> {
  const entry = customRunner
    ? `module.exports = require(${JSON.stringify(path.join(hostTestsDir, 'index.ts'))});`
    : [
      `const { runSuites } = require(${JSON.stringify(path.join(import.meta.dirname, 'hostTestRunner.ts'))});`,
      'exports.run = () => runSuites(() => {',
      ...suites.map((s) => `  require(${JSON.stringify(path.join(hostTestsDir, s))});`),
      '});',
    ].join('\n');
  fs.mkdirSync(resultsDir, { recursive: true });
  await esbuild.build({
    stdin: { contents: entry, resolveDir: repoRoot, sourcefile: 'host-tests-entry.js', loader: 'js' },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    // Resolved from the repository's node_modules at run time (the bundle lies inside the repository).
    external: ['vscode', 'mocha', 'sharp', '@tensorflow/*', 'onnxruntime-node'],
    logLevel: 'warning',
  });
}

function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
