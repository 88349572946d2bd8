// Mocha inside the extension host: the suites of test/host/ (compiled one-to-one, their index.ts
// runs every *.test.js beside it) run in code-server's Node extension host against the extension
// installed from the VSIX (its install folder is passed as extensionDevelopmentPath, the compiled
// index.js as extensionTestsPath), in an empty throwaway workspace the suites fill themselves.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as esbuild from 'esbuild';
import { freshResultsFolder, openWorkbench, remoteUri, repoRoot, screenshot, startCodeServer } from './harness';
import type { Workbench } from './harness';

const vsix = process.env.IMAGE_TRAINER_VSIX ?? path.join(repoRoot, `image-trainer-${readVersion()}.vsix`);
const hostTestsDir = path.join(repoRoot, 'test', 'host');
const timeoutMs = 8 * 60_000;

/** What test/host/index.ts writes to the file named by IMAGE_TRAINER_HOST_RESULT. */
interface HostTestResults {
  failures: number;
  passed: string[];
  failed: string[];
}

test('the extension host suites of test/host pass in VS Code with the installed VSIX', { timeout: timeoutMs + 60_000 }, async () => {
  assert.ok(fs.existsSync(path.join(hostTestsDir, 'index.ts')), 'test/host/index.ts (the mocha entry of the extension host) is missing');
  const logs = freshResultsFolder('host-suites');
  const outDir = path.join(repoRoot, '.vscode-test', 'host-tests');
  await compileSuites(outDir);
  const suites = fs.readdirSync(outDir).filter((f) => f.endsWith('.test.js'));
  assert.ok(suites.length > 0, 'no host suites: expected test/host/*.test.ts');
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-e2e-host-ws-'));
  const resultsFile = path.join(os.tmpdir(), `image-trainer-host-results-${process.pid}.json`);
  fs.rmSync(resultsFile, { force: true });
  const server = await startCodeServer({ workspace, vsix, env: { IMAGE_TRAINER_HOST_RESULT: resultsFile } });
  let workbench: Workbench | undefined;
  try {
    let exitCode: number | undefined;
    const exited = new Promise<number>((resolve) => {
      openWorkbench(server, workspace, {
        payload: [
          ['extensionDevelopmentPath', remoteUri(server, server.installedExtensionDir)],
          ['extensionTestsPath', remoteUri(server, path.join(outDir, 'index.js'))],
        ],
        onAutomationExit: (code) => {
          exitCode = code;
          resolve(code);
        },
      }).then(
        (w) => {
          workbench = w;
        },
        (error: unknown) => {
          console.error(error);
          resolve(-1);
        },
      );
    });
    const timedOut = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
    const outcome = await Promise.race([exited, timedOut]);
    if (workbench) await screenshot(workbench.page, logs, 'workbench-after-host-suites').catch(() => undefined);
    const results = fs.existsSync(resultsFile) ? (JSON.parse(fs.readFileSync(resultsFile, 'utf8')) as HostTestResults) : undefined;
    if (results) {
      for (const t of results.passed) console.log(`# host ✔ ${t}`);
      for (const t of results.failed) console.log(`# host ✖ ${t}`);
      console.log(`# host suites (${suites.length} files): ${results.passed.length} passed, ${results.failed.length} failed`);
    }
    const mochaLines = (workbench?.consoleLines ?? []).filter((l) => /passing|failing|pending|✔|✓|\d+\) /.test(l));
    fs.writeFileSync(path.join(logs, 'browser-console.log'), workbench?.consoleLines.join('\n') ?? '');
    assert.notEqual(outcome, 'timeout', `the host suites did not finish within ${timeoutMs / 1000} s`);
    assert.equal(exitCode, 0, `host suites failed (exit ${exitCode}):\n${results?.failed.join('\n') ?? mochaLines.join('\n')}`);
    assert.ok(results, 'the host suites wrote no results');
    assert.ok(results.passed.length > 0, 'no host test ran');
  } finally {
    await workbench?.close();
    fs.writeFileSync(path.join(logs, 'code-server.log'), server.log());
    await server.stop();
    fs.rmSync(server.runDir, { recursive: true, force: true });
    fs.rmSync(resultsFile, { force: true });
    fs.rmSync(workspace, { recursive: true, force: true });
  }
});

/** Compiles test/host/*.ts one-to-one to CommonJS (mocha loads each suite file itself; `vscode` stays external). */
async function compileSuites(outDir: string): Promise<void> {
  fs.rmSync(outDir, { recursive: true, force: true });
  const sources = fs
    .readdirSync(hostTestsDir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(hostTestsDir, f));
  await esbuild.build({
    entryPoints: sources,
    outdir: outDir,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'inline',
    logLevel: 'warning',
  });
}

function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
