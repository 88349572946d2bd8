// The dataset doctor, clicked through in a real VS Code (code-server) with the packaged VSIX: a
// first training run, then Check Dataset from the Explorer's context menu on a copy of the leaf
// sample with one cedar-rust photo filed under healthy; the Doctor panel lists it as a likely label
// error with its thumbnail; Move to cedar_rust moves the file, Undo puts it back; the tree counts
// the findings; after the move again, Retrain shows the change of validation accuracy.
// Assertions read the DOM and the disk; screenshots (dark, light; wide, 420 px) go to test-results/e2e/doctor/.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import {
  clearNotifications,
  clickContextMenuItem,
  closeSession,
  editorTab,
  expandView,
  explorerItem,
  extensionId,
  freshResultsFolder,
  openWorkbench,
  panelFrame,
  repoRoot,
  screenshot,
  setColorTheme,
  startCodeServer,
  storySteps,
  trainingProcesses,
  undoLastFileOperation,
  waitFor,
} from './harness';
import type { CodeServer, Workbench } from './harness';
import { createLeavesWorkspace, datasetName } from './workspaceFixture';
import type { MisplacedImage, Workspace } from './workspaceFixture';

const vsix = process.env.IMAGE_TRAINER_VSIX ?? path.join(repoRoot, `image-trainer-${readVersion()}.vsix`);
const stepTimeoutMs = 5 * 60_000;

describe('a person checks a dataset in VS Code, moves a mislabelled photo to its suggested class, undoes it and retrains', () => {
  let workspace: Workspace;
  let misplaced: MisplacedImage;
  let server: CodeServer | undefined;
  let workbench: Workbench | undefined;
  let page: Page;
  let shots: string;
  const started = Date.now();

  const step = storySteps(() => ({ page: workbench?.page, shots }), stepTimeoutMs + 60_000);

  const doctorPanel = (): FrameLocator => panelFrame(page);

  /** The Doctor panel's frame when another of the extension's webviews (a training panel) may be visible beside it. */
  async function visibleDoctorPanel(): Promise<FrameLocator> {
    const frames = page.locator(`iframe.webview.ready[src*="extensionId=${extensionId}"]`).filter({ visible: true });
    let found: FrameLocator | undefined;
    // A panel shown again reloads its webview (no retained context): look until it has drawn.
    await waitFor(
      async () => {
        for (let i = (await frames.count()) - 1; i >= 0 && !found; i--) {
          const frame = frames.nth(i).contentFrame().locator('#active-frame').contentFrame();
          if ((await frame.locator('#doctor-header').count()) > 0) found = frame;
        }
        return found !== undefined;
      },
      30_000,
      'a visible Doctor panel',
    );
    return found!;
  }

  const issueSelector = () => `.finding[data-kind="labelIssues"][data-path="${misplaced.relativePath}"]`;
  const issueCard = () => doctorPanel().locator(issueSelector());

  /** Screenshots of the Doctor panel: dark and light, wide and with the panel about 420 px wide. */
  async function shootBothThemesAndWidths(name: string): Promise<void> {
    await clearNotifications(page);
    await screenshot(page, shots, `${name}-wide-dark`);
    await setColorTheme(page, 'Default Light Modern');
    await screenshot(page, shots, `${name}-wide-light`);
    // The side bar closed and the window narrowed: the editor (the panel) is about 420 px wide.
    await page.keyboard.press('Control+b');
    await page.setViewportSize({ width: 470, height: 1000 });
    await page.waitForTimeout(700);
    const width = await doctorPanel()
      .locator('body')
      .evaluate(() => document.documentElement.clientWidth);
    assert.ok(width >= 380 && width <= 440, `the panel is about 420 px wide (${width})`);
    const overflow = await doctorPanel()
      .locator('body')
      .evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `nothing is wider than the narrow panel (overflow ${overflow} px)`);
    await screenshot(page, shots, `${name}-narrow-light`);
    await setColorTheme(page, 'Default Dark Modern');
    await screenshot(page, shots, `${name}-narrow-dark`);
    await page.setViewportSize({ width: 1600, height: 1000 });
    await page.keyboard.press('Control+b');
    await page.waitForTimeout(500);
  }

  before(async () => {
    shots = freshResultsFolder('doctor');
    assert.ok(fs.existsSync(vsix), `no VSIX at ${vsix}: run \`npm run package\``);
    workspace = createLeavesWorkspace({ trueClass: 'cedar_rust', wrongClass: 'healthy' });
    misplaced = workspace.misplaced!;
    server = await startCodeServer({ workspace: workspace.root, vsix, colorTheme: 'Default Dark Modern' });
    workbench = await openWorkbench(server, workspace.root);
    page = workbench.page;
  });

  after(async () => {
    await closeSession(shots, workbench, server);
    workspace?.remove();
    console.log(`# doctor scenario: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  step('a first training run finishes (the accuracy the fixes are compared with)', async () => {
    await explorerItem(page, datasetName).waitFor({ timeout: 60_000 });
    // Opening the view activates the extension; its first-run walkthrough (if it opens) is closed
    // first so that it cannot come up over the panels later.
    const view = await expandView(page, 'Image Datasets');
    await view.getByRole('treeitem').filter({ hasText: datasetName }).first().waitFor({ timeout: 60_000 });
    await page.waitForTimeout(2_000);
    const walkthrough = editorTab(page, /Walkthrough/);
    if (await walkthrough.count()) await walkthrough.locator('.codicon-close, .tab-actions .action-label').first().click();
    await clickContextMenuItem(page, explorerItem(page, datasetName), 'Train Image Classifier');
    await panelFrame(page).locator('#run-state[data-state="finished"]').waitFor({ timeout: stepTimeoutMs });
    await waitFor(() => trainingProcesses(server!).length === 0, 30_000, 'the training process to exit');
  });

  step('Check Dataset from the Explorer menu runs the doctor and the panel lists the misplaced photo as a likely label error', async () => {
    const t0 = Date.now();
    await clickContextMenuItem(page, explorerItem(page, datasetName), 'Check Dataset');
    await doctorPanel().locator('#doctor-state').waitFor({ timeout: 60_000 });
    await doctorPanel().locator('#doctor-state[data-state="finished"]').waitFor({ timeout: stepTimeoutMs });
    console.log(`# Check Dataset → findings shown: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const checks = fs
      .readdirSync(path.join(workspace.root, '.image-trainer', 'runs'))
      .filter((d) => d.startsWith(`doctor-${datasetName}-`));
    assert.equal(checks.length, 1, `one check folder: ${checks.join(', ')}`);
    assert.ok(fs.existsSync(path.join(workspace.root, '.image-trainer', 'runs', checks[0]!, 'doctor.json')));
    const first = doctorPanel().locator('#doctor-labelIssues .finding').first();
    assert.equal(await first.getAttribute('data-path'), misplaced.relativePath, 'the misplaced photo is the worst label issue');
    assert.match(await issueCard().innerText(), new RegExp(`given ${misplaced.wrongClass} → suggested ${misplaced.trueClass}`));
    await waitFor(
      () =>
        issueCard()
          .locator('img')
          .evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0),
      20_000,
      'the thumbnail to decode',
    );
    await issueCard().scrollIntoViewIfNeeded();
    await shootBothThemesAndWidths('01-label-issue');
    const violations = workbench!.consoleLines.filter((line) => /Content.Security.Policy|Refused to (load|apply|execute)/i.test(line));
    assert.deepEqual(violations, [], 'the Doctor view runs under its Content-Security-Policy without a violation');
  });

  step('the Image Datasets view shows the count of findings under the dataset', async () => {
    const view = await expandView(page, 'Image Datasets');
    const datasetRow = view.getByRole('treeitem').filter({ hasText: datasetName }).first();
    await datasetRow.waitFor({ timeout: 30_000 });
    if ((await datasetRow.getAttribute('aria-expanded')) === 'false') await datasetRow.locator('.monaco-tl-twistie').click();
    const doctorRow = view
      .getByRole('treeitem')
      .filter({ hasText: /^\s*Doctor/ })
      .first();
    await waitFor(
      async () => /\d+ findings?/.test(await doctorRow.innerText().catch(() => '')),
      30_000,
      'the Doctor row to count findings',
    );
    const shown = Number(/(\d+) findings?/.exec(await doctorRow.innerText())![1]);
    const total = Number(/: (\d+) findings?/.exec(await doctorPanel().locator('#doctor-summary').innerText())![1]);
    assert.equal(shown, total, 'the tree counts what the panel lists');
    await screenshot(page, shots, '02-tree-count');
  });

  step('clicking the thumbnail opens the photo, Move to cedar_rust moves it and Undo puts it back', async () => {
    const fileName = path.basename(misplaced.relativePath);
    const from = path.join(workspace.datasetRoot, misplaced.relativePath);
    const to = path.join(workspace.datasetRoot, misplaced.trueClass, fileName);
    await issueCard().locator('.open').click();
    await editorTab(page, new RegExp(fileName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).waitFor({ timeout: 30_000 });
    await editorTab(page, /Dataset Doctor/).click();
    await issueCard().locator('.fix-class').click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 20_000 });
    await screenshot(page, shots, '03-move-confirm');
    await dialog.getByRole('button', { name: 'Move', exact: true }).click();
    await waitFor(() => fs.existsSync(to) && !fs.existsSync(from), 20_000, `${fileName} to move into ${misplaced.trueClass}/`);
    await doctorPanel().locator(`${issueSelector()}[data-fixed="class"]`).waitFor({ timeout: 20_000 });
    await doctorPanel().locator('#doctor-retrain').waitFor({ timeout: 20_000 });
    await screenshot(page, shots, '04-moved');

    await undoLastFileOperation(page, datasetName, () => fs.existsSync(from) && !fs.existsSync(to), fileName);
    await waitFor(() => fs.existsSync(from) && !fs.existsSync(to), 20_000, `Undo to put ${fileName} back into ${misplaced.wrongClass}/`);
    await editorTab(page, /Dataset Doctor/).click();
    await doctorPanel().locator(`${issueSelector()}:not([data-fixed])`).waitFor({ timeout: 20_000 });
    assert.equal(await doctorPanel().locator('#doctor-retrain').count(), 0, 'no fix left to retrain on');
    await screenshot(page, shots, '05-undone');
  });

  step("Trash moves the image of another finding out of the dataset and the finding's Undo restores it", async () => {
    // The last image finding of the report (which kinds it has depends on the photos), never the misplaced photo.
    const card = doctorPanel().locator(`.finding[data-path]:not([data-path="${misplaced.relativePath}"])`).last();
    const relativePath = (await card.getAttribute('data-path'))!;
    const file = path.join(workspace.datasetRoot, relativePath);
    const bytes = fs.readFileSync(file);
    await card.locator('.fix-trash').click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 20_000 });
    await dialog.getByRole('button', { name: 'Move to Trash', exact: true }).click();
    await waitFor(() => !fs.existsSync(file), 20_000, `${relativePath} to leave the dataset`);
    await doctorPanel().locator(`.finding[data-path="${relativePath}"][data-fixed="trash"]`).first().waitFor({ timeout: 20_000 });
    // A deleted file has no editor to undo from: the finding's own Undo applies the reverse edit.
    await doctorPanel().locator(`.finding[data-path="${relativePath}"] .fix-undo`).first().click();
    await waitFor(() => fs.existsSync(file), 20_000, `Undo to restore ${relativePath}`);
    assert.ok(fs.readFileSync(file).equals(bytes), 'the restored file has the same bytes');
    await editorTab(page, /Dataset Doctor/).click();
    await doctorPanel().locator(`.finding[data-path="${relativePath}"]:not([data-fixed])`).first().waitFor({ timeout: 20_000 });
  });

  step('moved again, Retrain is one click and the panel shows the change of validation accuracy', async () => {
    const from = path.join(workspace.datasetRoot, misplaced.relativePath);
    await issueCard().locator('.fix-class').click();
    await page.locator('.monaco-dialog-box').getByRole('button', { name: 'Move', exact: true }).click();
    await waitFor(() => !fs.existsSync(from), 20_000, 'the move');
    await doctorPanel().locator('#doctor-retrain').click();
    await waitFor(
      () =>
        trainingProcesses(server!).length > 0 ||
        fs.readdirSync(path.join(workspace.root, '.image-trainer', 'runs')).filter((d) => d.startsWith(`${datasetName}-`)).length === 2,
      30_000,
      'the retrain to start',
    );
    await waitFor(() => trainingProcesses(server!).length === 0, stepTimeoutMs, 'the retrain to end');
    await editorTab(page, /Dataset Doctor/).click();
    const outcome = (await visibleDoctorPanel()).locator('#retrain-outcome[data-state="finished"]');
    await outcome.waitFor({ timeout: 30_000 });
    const text = await outcome.innerText();
    assert.match(text, /Validation accuracy \d+\.\d% → \d+\.\d% \([+−±]\d+\.\d points\)/);
    console.log(`# ${text}`);
    await clearNotifications(page);
    await screenshot(page, shots, '06-retrained-dark');
  });
});

function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
