// End-to-end harness: a real VS Code workbench (code-server, installed by test/e2e/setup.mjs) with
// the packaged VSIX installed, clicked through by Debian's Chromium under playwright-core.
// Everything runs in throwaway folders; stop() kills the whole process group and checks that no
// server, extension host or training process is left behind.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { it } from 'node:test';
import { chromium } from 'playwright-core';
import type { BrowserContext, FrameLocator, Locator, Page } from 'playwright-core';

export const repoRoot = path.resolve(import.meta.dirname, '../..');
export const resultsDir = path.join(repoRoot, 'test-results', 'e2e');
export const extensionId = 'image-trainer.image-trainer';

const codeServerBin = path.join(repoRoot, '.vscode-test', 'code-server', 'node_modules', '.bin', 'code-server');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export type ColorTheme = 'Default Dark Modern' | 'Default Light Modern';

export interface CodeServerOptions {
  /** Folder opened as the workspace. */
  workspace: string;
  /** VSIX installed with --install-extension before the server starts. */
  vsix: string;
  colorTheme?: ColorTheme;
  /** Extra environment for the server, inherited by the extension host and the training process. */
  env?: Record<string, string>;
}

export interface CodeServer {
  url: string;
  pid: number;
  /** Throwaway folder holding extensions, user data, XDG dirs and the server log. */
  runDir: string;
  /** Folder the VSIX was installed into (what the extension host loads). */
  installedExtensionDir: string;
  userSettingsFile: string;
  log(): string;
  /** Kills the process group, waits for it to be gone and throws if anything it started survives. */
  stop(): Promise<void>;
}

/** Settings that keep the workbench quiet and deterministic: no startup editor, tips, telemetry, updates or git. */
export function userSettings(colorTheme: ColorTheme): Record<string, unknown> {
  return {
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.welcomePage.walkthroughs.openOnInstall': false,
    'workbench.colorTheme': colorTheme,
    'security.workspace.trust.enabled': false,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'extensions.ignoreRecommendations': true,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'git.enabled': false,
    'git.autoRepositoryDetection': false,
    'chat.commandCenter.enabled': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'explorer.confirmUndo': 'light',
  };
}

/** Installs the VSIX into a fresh extensions folder and starts code-server (own process group) on a free port. */
export async function startCodeServer(options: CodeServerOptions): Promise<CodeServer> {
  if (!fs.existsSync(codeServerBin)) throw new Error('code-server is not installed: run `node test/e2e/setup.mjs`');
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-e2e-server-'));
  const extensionsDir = path.join(runDir, 'extensions');
  const userDataDir = path.join(runDir, 'user-data');
  const userSettingsFile = path.join(userDataDir, 'User', 'settings.json');
  fs.mkdirSync(path.dirname(userSettingsFile), { recursive: true });
  fs.writeFileSync(userSettingsFile, JSON.stringify(userSettings(options.colorTheme ?? 'Default Dark Modern'), null, 2));
  const env = {
    ...process.env,
    XDG_CONFIG_HOME: path.join(runDir, 'xdg', 'config'),
    XDG_DATA_HOME: path.join(runDir, 'xdg', 'data'),
    XDG_CACHE_HOME: path.join(runDir, 'xdg', 'cache'),
    ...options.env,
  };
  const dirArgs = ['--extensions-dir', extensionsDir, '--user-data-dir', userDataDir];
  execFileSync(codeServerBin, [...dirArgs, '--install-extension', options.vsix], { env, stdio: 'pipe' });
  const installed = fs.readdirSync(extensionsDir).find((name) => name.startsWith(`${extensionId}-`));
  if (!installed) throw new Error(`the VSIX did not install into ${extensionsDir}`);

  const port = await freePort();
  const logFile = path.join(runDir, 'code-server.log');
  const logFd = fs.openSync(logFile, 'a');
  // detached: the server calls setsid(), so its pid is the process group id and one kill(-pid)
  // reaches the extension hosts and the training processes they fork.
  const child = spawn(
    codeServerBin,
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
      ...dirArgs,
      options.workspace,
    ],
    { env, detached: true, stdio: ['ignore', logFd, logFd] },
  );
  fs.closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error('code-server did not start');
  child.unref();
  const url = `http://127.0.0.1:${port}`;
  const log = (): string => fs.readFileSync(logFile, 'utf8');
  await waitFor(
    async () =>
      (await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      )) ||
      (child.exitCode !== null && fail(`code-server exited:\n${log()}`)),
    30_000,
    'code-server /healthz',
  );

  return {
    url,
    pid,
    runDir,
    installedExtensionDir: path.join(extensionsDir, installed),
    userSettingsFile,
    log,
    async stop() {
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const gone = await waitFor(() => processesOf(pid, runDir).length === 0, 10_000, 'process group exit').then(
        () => true,
        () => false,
      );
      if (!gone) {
        for (const p of processesOf(pid, runDir)) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            /* gone */
          }
        }
        throw new Error(
          `processes survived SIGTERM of the code-server group:\n${
            processesOf(pid, runDir)
              .map((p) => p.line)
              .join('\n') || '(killed with SIGKILL)'
          }`,
        );
      }
    },
  };
}

export interface ProcessLine {
  pid: number;
  pgid: number;
  args: string;
  line: string;
}

/** Lists live processes in the server's process group or whose command line mentions its run folder. */
export function processesOf(pgid: number, runDir: string): ProcessLine[] {
  const out = execFileSync('ps', ['-eo', 'pid=,pgid=,stat=,args='], { encoding: 'utf8' });
  return out.split('\n').flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m || m[3].startsWith('Z')) return [];
    const p = { pid: Number(m[1]), pgid: Number(m[2]), args: m[4], line: line.trim() };
    return (p.pgid === pgid || p.args.includes(runDir)) && p.pid !== process.pid ? [p] : [];
  });
}

/** Training processes (the forked dist/training.js of the installed extension) currently alive. */
export function trainingProcesses(server: CodeServer): ProcessLine[] {
  return processesOf(server.pid, server.runDir).filter((p) =>
    p.args.includes(path.join(server.installedExtensionDir, 'dist', 'training.js')),
  );
}

export interface Workbench {
  page: Page;
  context: BrowserContext;
  /** Browser console, page errors and failed requests, for diagnosing a failure. */
  consoleLines: string[];
  /** Navigates away (so the server disposes the extension host at once) and closes the browser. */
  close(): Promise<void>;
}

export interface OpenWorkbenchOptions {
  /** The workbench's `payload` query (extensionDevelopmentPath, extensionTestsPath). */
  payload?: [string, string][];
  /** Called when the workbench reports the end of extension tests (`codeAutomationExit`). */
  onAutomationExit?: (code: number) => void;
}

/** Launches headless Chromium on a fresh profile and opens the workbench on the server's workspace. */
export async function openWorkbench(server: CodeServer, workspace: string, options: OpenWorkbenchOptions = {}): Promise<Workbench> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1600, height: 1000 },
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
  // tsx compiles the functions tests pass to evaluate() with esbuild's keepNames, which wraps
  // named inner functions in __name(): give every frame (webviews included) that helper.
  await context.addInitScript('globalThis.__name = globalThis.__name || ((fn) => fn);');
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines: string[] = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => consoleLines.push(`requestfailed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  if (options.onAutomationExit) {
    const onExit = options.onAutomationExit;
    await page.exposeFunction('codeAutomationExit', (code: number) => onExit(code));
  }
  const payload = options.payload ? `&payload=${encodeURIComponent(JSON.stringify(options.payload))}` : '';
  await page.goto(`${server.url}/?folder=${encodeURIComponent(workspace)}${payload}`);
  await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
  return {
    page,
    context,
    consoleLines,
    async close() {
      await page.goto('about:blank').catch(() => undefined);
      await context.close().catch(() => undefined);
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The vscode-remote URI of a server-side path, for the workbench payload. */
export function remoteUri(server: CodeServer, absolutePath: string): string {
  return `vscode-remote://${new URL(server.url).host}${absolutePath}`;
}

/** An empty folder test-results/e2e/<name> for one test file's screenshots and logs. */
export function freshResultsFolder(name: string): string {
  const dir = path.join(resultsDir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Saves a full-window screenshot to <dir>/<name>.png and returns its path. */
export async function screenshot(page: Page, dir: string, name: string): Promise<string> {
  const file = path.join(dir, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/**
 * Opens the command palette the way a person does (F1). A keypress that lands while focus is inside
 * a webview (the walkthrough, a panel) never reaches the workbench, so after a short wait the focus
 * is moved to the side bar's title and F1 pressed again.
 */
export async function openCommandPalette(page: Page): Promise<Locator> {
  const input = page.locator('.quick-input-widget input');
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    try {
      await input.waitFor({ timeout: attempt < 4 ? 4000 : 10_000 });
      return input;
    } catch (error) {
      if (attempt >= 4) throw error;
      await page.locator('.part.sidebar .composite.title').first().click({ timeout: 5000 });
    }
  }
}

/** Switches the colour theme the way a person does: Preferences: Color Theme in the command palette. */
export async function setColorTheme(page: Page, theme: ColorTheme): Promise<void> {
  const themeClass = theme.includes('Dark') ? 'vs-dark' : 'vs';
  if (await page.locator(`.monaco-workbench.${themeClass}`).count()) return;
  const input = await openCommandPalette(page);
  await input.fill('>Preferences: Color Theme');
  // Click the rows: Enter would take the first match, which may be "Browse Color Themes in Marketplace".
  await page
    .locator('.quick-input-list')
    .getByRole('option', { name: /^Preferences: Color Theme\b/ })
    .first()
    .click({ timeout: 10_000 });
  // Rows read "Light Modern  Default Light Modern": the setting's id is the description.
  await page.locator('.quick-input-list .monaco-list-row').filter({ hasText: theme }).first().click({ timeout: 10_000 });
  await page.locator(`.monaco-workbench.${themeClass}`).waitFor({ timeout: 20_000 });
  // Webviews restyle from the theme's CSS variables a moment later.
  await page.waitForTimeout(700);
}

/** The explorer's file tree row of a workspace-relative folder or file (its base name). */
export function explorerItem(page: Page, name: string): Locator {
  return page.locator('.explorer-folders-view').getByRole('treeitem', { name, exact: true });
}

/** The pane of a contributed view, found by its title, expanded if it was collapsed. */
export async function expandView(page: Page, title: string): Promise<Locator> {
  const header = page.locator('.pane-header').filter({ hasText: title }).first();
  await header.waitFor({ timeout: 60_000 });
  if ((await header.getAttribute('aria-expanded')) === 'false') await header.click();
  return page.locator('.pane').filter({ has: header });
}

/**
 * Right-clicks a tree item and clicks a context-menu item. Retries: a menu opened before the
 * extension host has registered the contributions lacks the item.
 */
export async function clickContextMenuItem(page: Page, item: Locator, menuItem: string, attempts = 15): Promise<void> {
  const entry = page.getByRole('menuitem', { name: menuItem, exact: true });
  for (let attempt = 1; ; attempt++) {
    await item.click({ button: 'right' });
    try {
      await entry.waitFor({ timeout: 2_000 });
      break;
    } catch (error) {
      if (attempt >= attempts) throw new Error(`context menu never offered "${menuItem}"`, { cause: error });
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1_000);
    }
  }
  // A click right after the menu opens can be swallowed (the menu guards against the mouse-up of
  // the opening right-click); the highlighted item then still runs with Enter.
  await entry.hover();
  await entry.click();
  if (
    !(await entry.waitFor({ state: 'hidden', timeout: 2_000 }).then(
      () => true,
      () => false,
    ))
  ) {
    await entry.hover();
    await page.keyboard.press('Enter');
    await entry.waitFor({ state: 'hidden', timeout: 5_000 });
  }
}

/** The content frame of the extension's visible webview (the training panel); the last one if several are visible. */
export function panelFrame(page: Page): FrameLocator {
  return webviewFrame(page, extensionId);
}

/** The content frame of a visible webview contributed by the given extension. */
export function webviewFrame(page: Page, id: string): FrameLocator {
  return page
    .locator(`iframe.webview.ready[src*="extensionId=${id}"]`)
    .filter({ visible: true })
    .last()
    .contentFrame()
    .locator('#active-frame')
    .contentFrame();
}

/** An editor tab whose label matches. */
export function editorTab(page: Page, label: string | RegExp): Locator {
  return page.getByRole('tab', { name: label });
}

/** Waits for the built-in image preview to decode its image and returns its natural size. */
export async function imagePreviewSize(page: Page): Promise<{ width: number; height: number }> {
  const img = webviewFrame(page, 'vscode.media-preview').locator('img');
  await img.waitFor({ timeout: 30_000 });
  await waitFor(() => img.evaluate((el: HTMLImageElement) => el.complete && el.naturalWidth > 0), 20_000, 'image preview decode');
  return img.evaluate((el: HTMLImageElement) => ({ width: el.naturalWidth, height: el.naturalHeight }));
}

/**
 * Undoes the last file operation the way a person does: Edit › Undo with the explorer focused,
 * confirming VS Code's "undo rename?" dialog when it asks. Focus and the dialog arrive
 * asynchronously in the browser, so a keypress that lands before the explorer has focus is retried.
 */
export async function undoLastFileOperation(page: Page, folderName: string, isUndone: () => boolean, fileName: string): Promise<void> {
  const dialog = page.locator('.monaco-dialog-box');
  for (let attempt = 1; attempt <= 6 && !isUndone(); attempt++) {
    // VS Code undoes a file operation from the Explorer or from an editor of the renamed file.
    const tab = editorTab(page, new RegExp(fileName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    if (attempt % 2 === 1 || (await tab.count()) === 0) await explorerItem(page, folderName).click();
    else await tab.click();
    await page.waitForTimeout(300);
    await page.keyboard.press('Control+z');
    try {
      await dialog.waitFor({ state: 'visible', timeout: 3000 });
      const undo = dialog.getByRole('button', { name: /undo/i });
      await ((await undo.count()) > 0 ? undo.first() : dialog.getByRole('button').first()).click();
    } catch {
      // no confirmation asked
    }
    const until = Date.now() + 3000;
    while (!isUndone() && Date.now() < until) await page.waitForTimeout(200);
  }
}

/**
 * The steps of one story, each a node:test `it`: after a failed step the rest fail at once instead
 * of timing out one by one, a failure leaves `99-failure.png`, and each step logs its duration.
 */
export function storySteps(
  session: () => { page: Page | undefined; shots: string },
  timeoutMs: number,
): (name: string, body: () => Promise<void>) => void {
  let earlierStepFailed = false;
  return (name, body) => {
    it(name, { timeout: timeoutMs }, async () => {
      if (earlierStepFailed) throw new Error('not run: an earlier step failed');
      const t0 = Date.now();
      try {
        await body();
      } catch (error) {
        earlierStepFailed = true;
        const { page, shots } = session();
        if (page) await screenshot(page, shots, '99-failure').catch(() => undefined);
        throw error;
      } finally {
        console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s  ${name}`);
      }
    });
  };
}

/** Closes the browser and the server, keeping their logs beside the screenshots. */
export async function closeSession(shots: string, workbench: Workbench | undefined, server: CodeServer | undefined): Promise<void> {
  if (workbench) {
    fs.writeFileSync(path.join(shots, 'browser-console.log'), workbench.consoleLines.join('\n'));
    await workbench.close();
  }
  if (server) {
    fs.writeFileSync(path.join(shots, 'code-server.log'), server.log());
    await server.stop();
    fs.rmSync(server.runDir, { recursive: true, force: true });
  }
}

/** Dismisses every notification toast (Notifications: Clear All Notifications), so that none covers a screenshot. */
export async function clearNotifications(page: Page): Promise<void> {
  const input = await openCommandPalette(page);
  await input.fill('>Notifications: Clear All Notifications');
  await page
    .locator('.quick-input-list')
    .getByRole('option', { name: /Clear All Notifications/ })
    .first()
    .click({ timeout: 10_000 });
  await page
    .locator('.notifications-toasts .notification-toast')
    .first()
    .waitFor({ state: 'detached', timeout: 5_000 })
    .catch(() => undefined);
}

/** Polls a condition until it holds, or throws after the timeout naming what it waited for. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

function fail(message: string): never {
  throw new Error(message);
}
