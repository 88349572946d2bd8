// A first-time user in a real VS Code (code-server) with the packaged VSIX: the walkthrough opens
// on the extension's first activation, and *Try with Sample Dataset* — run from the command
// palette, its folder dialog answered the way a person does — copies the shipped sample into the
// workspace and trains on it. The time from the command to the confusion matrix on screen is
// measured (goal: 60 s on the project's 2-core machine) and written to test-results/e2e/first-run/.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import {
  closeSession,
  expandView,
  freshResultsFolder,
  openCommandPalette,
  openWorkbench,
  panelFrame,
  repoRoot,
  screenshot,
  startCodeServer,
  userSettings,
} from './harness';
import type { CodeServer, Workbench } from './harness';

const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const vsix = process.env.IMAGE_TRAINER_VSIX ?? path.join(repoRoot, `image-trainer-${version}.vsix`);
const trainingTimeoutMs = 5 * 60_000;
// The goal is 60 s; the bound leaves room for a loaded shared machine, and the note records the figure.
const sampleToMatrixLimitMs = 150_000;

describe('a first-time user is walked through and trains the shipped sample from one command', () => {
  let server: CodeServer | undefined;
  let workbench: Workbench | undefined;
  let page: Page;
  let workspaceRoot: string;
  let shots: string;

  before(async () => {
    shots = freshResultsFolder('first-run');
    assert.ok(fs.existsSync(vsix), `no VSIX at ${vsix}: run \`npm run package\``);
    workspaceRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-e2e-first-run-'));
    server = await startCodeServer({ workspace: workspaceRoot, vsix });
    // A first-time user has walkthroughs on install on (VS Code's default); the harness turns it off.
    fs.writeFileSync(
      server.userSettingsFile,
      JSON.stringify({ ...userSettings('Default Dark Modern'), 'workbench.welcomePage.walkthroughs.openOnInstall': true }, null, 2),
    );
    workbench = await openWorkbench(server, workspaceRoot);
    page = workbench.page;
  });

  after(async () => {
    if (workbench) await screenshot(page, shots, '99-end').catch(() => undefined);
    await closeSession(shots, workbench, server);
    fs.rmSync(workspaceRoot, { recursive: true, force: true });
  });

  it('the walkthrough opens on the first activation', { timeout: 120_000 }, async () => {
    // Showing the Image Datasets view activates the extension.
    await expandView(page, 'Image Datasets');
    await page.getByText('Train an Image Classifier', { exact: true }).first().waitFor({ timeout: 60_000 });
    for (const step of ['Try the sample', 'Train on your folder', 'Read the confusion matrix', 'Fix a label', 'Use the model']) {
      await page
        .getByRole('button', { name: new RegExp(step) })
        .first()
        .waitFor({ timeout: 10_000 });
    }
    await screenshot(page, shots, '01-walkthrough');
  });

  it('Try with Sample Dataset reaches the confusion matrix', { timeout: trainingTimeoutMs + 60_000 }, async () => {
    const input = await openCommandPalette(page);
    await input.fill('>Image Trainer: Try with Sample Dataset');
    const started = Date.now();
    await page
      .locator('.quick-input-list')
      .getByRole('option', { name: /Try with Sample Dataset/ })
      .first()
      .click({ timeout: 10_000 });
    // code-server's folder dialog is a quick input holding the default folder (the workspace): accept it.
    await page
      .locator('.quick-input-widget')
      .getByText(/choose where to put the sample dataset/)
      .waitFor({ timeout: 20_000 });
    await screenshot(page, shots, '02-folder-dialog');
    const accept = page.locator('.quick-input-widget').getByRole('button', { name: 'Copy Sample Here' });
    if (await accept.count()) await accept.first().click();
    else await page.keyboard.press('Enter');

    const cells = panelFrame(page).locator('#matrix td[data-actual][data-predicted]');
    await cells.first().waitFor({ timeout: trainingTimeoutMs });
    const seconds = (Date.now() - started) / 1000;
    await screenshot(page, shots, '03-matrix');
    fs.writeFileSync(path.join(shots, 'sample-to-matrix.json'), JSON.stringify({ seconds }, null, 2));
    console.log(`# Try with Sample Dataset → confusion matrix on screen: ${seconds.toFixed(1)} s (goal ≤ 60 s)`);

    const copy = path.join(workspaceRoot, 'leaves-sample');
    const classes = fs.readdirSync(copy).sort();
    assert.deepEqual(classes, fs.readdirSync(path.join(repoRoot, 'samples', 'leaves')).sort());
    assert.equal(await cells.count(), classes.length ** 2);
    assert.ok(fs.existsSync(path.join(workspaceRoot, '.image-trainer', 'runs')), 'the run folder is beside the sample, not inside it');
    assert.ok(seconds * 1000 <= sampleToMatrixLimitMs, `took ${seconds.toFixed(1)} s`);
  });
});
