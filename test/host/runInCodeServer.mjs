#!/usr/bin/env node
// Runs the host-side integration tests in a real VS Code (code-server from .vscode-test/, installed
// by test/e2e/setup.mjs) with the extension loaded from this folder (extensionDevelopmentPath), on a
// throwaway workspace. Usage: node test/host/runInCodeServer.mjs  (after `npm run build`).
// Exits 0 when every suite passed; stops the server's whole process group either way.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const codeServer = path.join(repoRoot, '.vscode-test', 'code-server', 'node_modules', '.bin', 'code-server');
const outDir = path.join(repoRoot, 'out', 'test', 'host');
const t0 = Date.now();
const lap = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);

fs.rmSync(outDir, { recursive: true, force: true });
const sources = fs
  .readdirSync(path.join(repoRoot, 'test', 'host'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join('test', 'host', f));
execFileSync(
  path.join(repoRoot, 'node_modules', '.bin', 'esbuild'),
  [...sources, '--platform=node', '--format=cjs', '--target=node20', `--outdir=${outDir}`, '--log-level=warning'],
  { cwd: repoRoot, stdio: 'inherit' },
);

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-host-'));
const workspace = path.join(runDir, 'workspace');
fs.mkdirSync(workspace);
const userData = path.join(runDir, 'user-data');
fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
fs.writeFileSync(
  path.join(userData, 'User', 'settings.json'),
  JSON.stringify({
    'workbench.startupEditor': 'none',
    'security.workspace.trust.enabled': false,
    'workbench.tips.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'git.enabled': false,
    'chat.commandCenter.enabled': false,
  }),
);
const resultFile = path.join(runDir, 'result.json');
const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const env = {
  ...process.env,
  XDG_CONFIG_HOME: path.join(runDir, 'xdg-config'),
  XDG_DATA_HOME: path.join(runDir, 'xdg-data'),
  IMAGE_TRAINER_HOST_RESULT: resultFile,
};
const logFd = fs.openSync(path.join(runDir, 'code-server.log'), 'a');
const server = spawn(
  codeServer,
  [
    '--auth',
    'none',
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-workspace-trust',
    '--disable-getting-started-override',
    '--ignore-last-opened',
    '--extensions-dir',
    path.join(runDir, 'extensions'),
    '--user-data-dir',
    userData,
    workspace,
  ],
  { env, detached: true, stdio: ['ignore', logFd, logFd] },
);
server.unref();
const url = `http://127.0.0.1:${port}`;
for (let i = 0; i < 300; i++) {
  if (
    await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
  )
    break;
  await new Promise((r) => setTimeout(r, 100));
}
lap(`code-server up on ${port} (pid ${server.pid})`);

let code = 'timeout';
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-host-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    const t = m.text().replace(/%c/g, '');
    if (/\[host\]|passing|failing|✔|✓|^\s*\d+\)|Error/.test(t)) console.log('  ', t.slice(0, 400));
  });
  const done = new Promise((resolve) =>
    page.exposeFunction('codeAutomationExit', (c) => {
      code = c;
      resolve(c);
    }),
  );
  const remote = (p) => `vscode-remote://127.0.0.1:${port}${p}`;
  const payload = JSON.stringify([
    ['extensionDevelopmentPath', remote(process.env.IMAGE_TRAINER_EXT_DEV ?? repoRoot)],
    ['extensionTestsPath', remote(path.join(outDir, 'index.js'))],
  ]);
  await page.goto(`${url}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(payload)}`);
  await Promise.race([done, new Promise((r) => setTimeout(r, Number(process.env.HOST_TEST_TIMEOUT_MS ?? 900_000)))]);
  lap(`tests ended: ${code}`);
  await page.goto('about:blank').catch(() => undefined);
} finally {
  await context.close().catch(() => undefined);
  try {
    process.kill(-server.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  await new Promise((r) => setTimeout(r, 1500));
  try {
    process.kill(-server.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  fs.rmSync(profile, { recursive: true, force: true });
}
if (fs.existsSync(resultFile)) console.log(fs.readFileSync(resultFile, 'utf8'));
else console.log(fs.readFileSync(path.join(runDir, 'code-server.log'), 'utf8').slice(-3000));
process.exit(code === 0 ? 0 : 1);
