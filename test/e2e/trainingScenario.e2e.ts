// The person's path, clicked through in a real VS Code (code-server) with the packaged VSIX:
// find the dataset, train from the explorer's context menu, watch the panel, inspect the
// confusion, open and move the misplaced image, undo, then cancel a second run.
// Assertions read the DOM and the disk; each step leaves a screenshot in test-results/e2e/.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FrameLocator, Page } from 'playwright-core';
import sharp from 'sharp';
import {
  clickContextMenuItem,
  editorTab,
  freshResultsFolder,
  expandView,
  explorerItem,
  imagePreviewSize,
  openWorkbench,
  panelFrame,
  repoRoot,
  screenshot,
  setColorTheme,
  startCodeServer,
  trainingProcesses,
  waitFor,
} from './harness';
import type { CodeServer, Workbench } from './harness';
import { createLeavesWorkspace, datasetName, fastTrainingSettings, hashTree, runFolders } from './workspaceFixture';
import type { MisplacedImage, Workspace } from './workspaceFixture';

const vsix = process.env.IMAGE_TRAINER_VSIX ?? path.join(repoRoot, `image-trainer-${readVersion()}.vsix`);
// Menus show a command's title without its category (the palette shows "Image Trainer: Train Image Classifier").
const trainCommand = 'Train Image Classifier';
const trainingTimeoutMs = 5 * 60_000;

/** One snapshot of the panel's live state, recorded in the webview by a MutationObserver. */
interface PanelObservation {
  t: number;
  state: string | null;
  progress: number | null;
  epochs: number | null;
}

describe('a person trains a classifier on a folder of leaves in VS Code and fixes a mislabelled image', () => {
  let workspace: Workspace;
  let misplaced: MisplacedImage;
  let server: CodeServer | undefined;
  let workbench: Workbench | undefined;
  let page: Page;
  let firstRunDir: string;
  let earlierStepFailed = false;
  let shots: string;
  const started = Date.now();

  /** Runs one step of the story; after a failed step the rest fail at once instead of timing out one by one. */
  function step(name: string, body: () => Promise<void>): void {
    it(name, { timeout: trainingTimeoutMs + 60_000 }, async () => {
      if (earlierStepFailed) throw new Error('not run: an earlier step failed');
      const t0 = Date.now();
      try {
        await body();
      } catch (error) {
        earlierStepFailed = true;
        if (workbench) await screenshot(page, shots, `99-failure`).catch(() => undefined);
        throw error;
      } finally {
        console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s  ${name}`);
      }
    });
  }

  before(async () => {
    shots = freshResultsFolder('scenario');
    assert.ok(fs.existsSync(vsix), `no VSIX at ${vsix}: run \`npm run package\``);
    // Cedar rust's orange lesions are the sample's most distinctive class: the model recognises the
    // photo wherever it is filed, so the confusion lands in the cell (true healthy, predicted cedar_rust).
    workspace = createLeavesWorkspace({ trueClass: 'cedar_rust', wrongClass: 'healthy' });
    misplaced = workspace.misplaced!;
    server = await startCodeServer({ workspace: workspace.root, vsix, colorTheme: 'Default Dark Modern' });
    workbench = await openWorkbench(server, workspace.root);
    page = workbench.page;
  });

  after(async () => {
    if (workbench) {
      fs.writeFileSync(path.join(shots, 'browser-console.log'), workbench.consoleLines.join('\n'));
      await workbench.close();
    }
    if (server) {
      fs.writeFileSync(path.join(shots, 'code-server.log'), server.log());
      await server.stop();
      fs.rmSync(server.runDir, { recursive: true, force: true });
    }
    workspace?.remove();
    console.log(`# scenario: ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });

  step('the workbench opens the workspace with the extension installed from the VSIX', async () => {
    await explorerItem(page, datasetName).waitFor({ timeout: 60_000 });
    assert.ok(server!.installedExtensionDir.includes('image-trainer.image-trainer-'));
    await screenshot(page, shots, '01-workbench');
  });

  step('the Image Datasets view lists the dataset with its classes and image counts', async () => {
    const view = await expandView(page, 'Image Datasets');
    const datasetRow = view.getByRole('treeitem').filter({ hasText: datasetName }).first();
    await datasetRow.waitFor({ timeout: 60_000 });
    // The twistie, not the row: a click on the row could run the item's command.
    if ((await datasetRow.getAttribute('aria-expanded')) === 'false') await datasetRow.locator('.monaco-tl-twistie').click();
    const total = Object.values(workspace.counts).reduce((a, b) => a + b, 0);
    for (const className of workspace.classes) {
      const row = view
        .getByRole('treeitem')
        .filter({ hasText: new RegExp(`^\\s*${className}`) })
        .first();
      await row.waitFor({ timeout: 30_000 });
      const text = (await row.innerText()).replace(/\s+/g, ' ');
      assert.match(
        text,
        new RegExp(`(?<!\\d)${workspace.counts[className]} images`),
        `class row "${text}" should show ${workspace.counts[className]} images`,
      );
    }
    const datasetText = (await datasetRow.innerText()).replace(/\s+/g, ' ');
    assert.match(
      datasetText,
      new RegExp(`(?<!\\d)${workspace.classes.length} classes.*(?<!\\d)${total} images`),
      `dataset row "${datasetText}" should show its classes and images`,
    );
    await screenshot(page, shots, '02-datasets-view');
  });

  step('right-clicking the dataset folder and choosing Train Image Classifier opens the training panel', async () => {
    const folder = explorerItem(page, datasetName);
    await clickContextMenuItem(page, folder, trainCommand);
    const panel = panelFrame(page);
    await panel.locator('#run-state').waitFor({ timeout: 60_000 });
    await observePanel(panel);
    assert.match((await panel.locator('#run-state').getAttribute('data-state')) ?? '', /^(starting|running|finished)$/);
  });

  step('the panel shows the progress advancing and the learning curves gaining points', async () => {
    const panel = panelFrame(page);
    await panel.locator('#curves[data-epochs]:not([data-epochs="0"])').waitFor({ timeout: trainingTimeoutMs });
    await screenshot(page, shots, '03-panel-training-dark');
    await panel.locator('#run-state[data-state="finished"], #run-state[data-state="failed"]').waitFor({ timeout: trainingTimeoutMs });
    const observations = await readObservations(panel);
    fs.writeFileSync(path.join(shots, 'panel-observations.json'), JSON.stringify(observations, null, 1));
    // The bar restarts at each stage (features, then each epoch): count the steps forward.
    const running = observations.filter((o) => o.state === 'running' && o.progress !== null).map((o) => o.progress!);
    const advances = running.filter((v, i) => i > 0 && v > running[i - 1]!).length;
    assert.ok(advances >= 3, `progress should advance several times while running, saw ${JSON.stringify(running)}`);
    const epochs = distinctIncreasing(observations.map((o) => o.epochs));
    assert.ok(epochs.length >= 2 && epochs.at(-1)! >= 2, `the curves should gain points epoch by epoch, saw ${JSON.stringify(epochs)}`);
    assert.ok(epochs.at(-1)! <= fastTrainingSettings['imageTrainer.epochs'], `no more epochs than configured: ${JSON.stringify(epochs)}`);
  });

  step('the confusion matrix appears when training ends', async () => {
    const panel = panelFrame(page);
    assert.equal(await panel.locator('#run-state').getAttribute('data-state'), 'finished', await panel.locator('body').innerText());
    assert.match((await panel.locator('#run-state').innerText()).toLowerCase(), /finish|done|complete/);
    const cells = panel.locator('#matrix td[data-actual][data-predicted]');
    await cells.first().waitFor({ timeout: 30_000 });
    assert.equal(await cells.count(), workspace.classes.length ** 2);
    const runs = runFolders(workspace);
    assert.equal(runs.length, 1, `one run folder: ${runs.join(', ')}`);
    firstRunDir = runs[0]!;
    for (const file of ['labels.json', 'evaluation.json', ...checkpointFiles(path.join(firstRunDir, 'model'))]) {
      assert.ok(fs.existsSync(path.join(firstRunDir, file)), `run folder holds ${file}`);
    }
    await waitFor(() => trainingProcesses(server!).length === 0, 30_000, 'the training process to exit after the run finished');
    await screenshot(page, shots, '04-matrix-dark');
    await setColorTheme(page, 'Default Light Modern');
    await screenshot(page, shots, '04-matrix-light');
    await setColorTheme(page, 'Default Dark Modern');
  });

  step('clicking the off-diagonal cell of the misplaced image shows its thumbnail', async () => {
    const panel = panelFrame(page);
    const actual = workspace.classes.indexOf(misplaced.wrongClass);
    const predicted = workspace.classes.indexOf(misplaced.trueClass);
    const cell = panel.locator(`#matrix td[data-actual="${actual}"][data-predicted="${predicted}"]`);
    const count = Number((await cell.innerText()).trim());
    const row = await panel.locator(`#matrix td[data-actual="${actual}"]`).allInnerTexts();
    assert.ok(
      count >= 1,
      `the cell "true ${misplaced.wrongClass}, predicted ${misplaced.trueClass}" should hold the misplaced image; row ${misplaced.wrongClass}: ${row.join(' ')}`,
    );
    assert.match(
      (await cell.getAttribute('aria-label')) ?? '',
      new RegExp(`${misplaced.wrongClass}.*${misplaced.trueClass}.*${count}`, 'i'),
    );
    await cell.click();
    const thumb = panel.locator(`#gallery .thumb[data-path="${misplaced.relativePath}"]`);
    await thumb.waitFor({ timeout: 20_000 });
    await waitFor(
      () => thumb.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0),
      20_000,
      'the thumbnail to decode',
    );
    assert.equal(await panel.locator('#gallery .thumb').count(), count, 'one thumbnail per image of the cell');
    await thumb.scrollIntoViewIfNeeded();
    await screenshot(page, shots, '05-gallery-dark');
    await setColorTheme(page, 'Default Light Modern');
    await screenshot(page, shots, '05-gallery-light');
    await setColorTheme(page, 'Default Dark Modern');
  });

  step("the heatmap toggle lays each thumbnail's heatmap over it, and the opened image shows its heatmap", async () => {
    const panel = panelFrame(page);
    const gallery = panel.locator('#gallery');
    const thumbs = gallery.locator('.thumb');
    const count = await thumbs.count();
    await panel.locator('#heatmap-toggle').click();
    await panel.locator('#gallery[data-heatmaps="on"]').waitFor({ timeout: 10_000 });
    // Computed on demand by the engine (one `explain` process for the page), then drawn over each thumbnail.
    const t0 = Date.now();
    await waitFor(
      async () => (await gallery.locator('.thumb[data-heatmap="shown"], .thumb[data-heatmap="failed"]').count()) === count,
      120_000,
      'every thumbnail of the cell to get its heatmap',
    );
    console.log(`# heatmaps of ${count} thumbnails shown ${Date.now() - t0} ms after the toggle`);
    assert.equal(await gallery.locator('.thumb[data-heatmap="failed"]').count(), 0, await gallery.innerText());
    const thumb = gallery.locator(`.thumb[data-path="${misplaced.relativePath}"]`);
    const overlay = thumb.locator('.open canvas.heatmap');
    // The overlay covers the thumbnail and has colour in it (a heatmap is not all zeros).
    const drawn = await overlay.evaluate((canvas: HTMLCanvasElement) => {
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let opaque = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i]! > 40) opaque++;
      const box = canvas.getBoundingClientRect();
      const img = canvas.parentElement!.querySelector('img')!.getBoundingClientRect();
      return { opaque, cells: canvas.width * canvas.height, box: [box.width, box.height], img: [img.width, img.height] };
    });
    assert.ok(drawn.opaque > 0 && drawn.opaque < drawn.cells, JSON.stringify(drawn));
    assert.deepEqual(drawn.box, drawn.img, 'the overlay lies exactly over the image');
    await thumb.scrollIntoViewIfNeeded();
    await screenshot(page, shots, '05b-heatmaps-dark');
    await setColorTheme(page, 'Default Light Modern');
    await screenshot(page, shots, '05b-heatmaps-light');
    // Narrow: the panel 420 px wide (the rest of the window as it was).
    const frameBox = await page.locator('iframe.webview.ready').filter({ visible: true }).last().boundingBox();
    const wide = page.viewportSize()!;
    if (frameBox) await page.setViewportSize({ width: Math.round(wide.width - frameBox.width + 420), height: wide.height });
    await page.waitForTimeout(500);
    // The thumbnail in the middle of the panel, clear of the notification toasts in the corner.
    await thumb.evaluate((el) => el.scrollIntoView({ block: 'center' }));
    await screenshot(page, shots, '05b-heatmaps-narrow-light');
    await setColorTheme(page, 'Default Dark Modern');
    await screenshot(page, shots, '05b-heatmaps-narrow-dark');
    await panel.locator('#reliability-section').scrollIntoViewIfNeeded();
    await screenshot(page, shots, '05c-reliability-narrow-dark');
    await page.setViewportSize(wide);
    await page.waitForTimeout(500);
    await panel.locator('#reliability-section').scrollIntoViewIfNeeded();
    // Drawn from the run's evaluation.json: one diagram when the temperature stayed 1, before and after otherwise.
    const { calibration } = JSON.parse(fs.readFileSync(path.join(firstRunDir, 'evaluation.json'), 'utf8')) as {
      calibration: { temperature: number; eceBefore: number };
    };
    assert.equal(await panel.locator('#reliability-section figure.reliability').count(), calibration.temperature === 1 ? 1 : 2);
    assert.match(
      await panel.locator('#reliability-section figcaption').first().innerText(),
      new RegExp(`ECE ${calibration.eceBefore.toFixed(3)}`),
    );
    assert.match(await panel.locator('#ece-summary').innerText(), /Expected calibration error \(15 bins\)/);
    await screenshot(page, shots, '05c-reliability-dark');
    await setColorTheme(page, 'Default Light Modern');
    await screenshot(page, shots, '05c-reliability-light');
    await setColorTheme(page, 'Default Dark Modern');

    // With heatmaps on, the opened image is the image with its heatmap: a PNG drawn outside the dataset.
    const before = hashTree(workspace.datasetRoot);
    const stem = path.basename(misplaced.relativePath, path.extname(misplaced.relativePath)).replace(/[^\w.-]+/g, '_');
    await thumb.scrollIntoViewIfNeeded();
    await thumb.locator('img').click();
    await editorTab(page, new RegExp(`${escapeRegExp(stem)}-[0-9a-f]{12}\\.png`)).waitFor({ timeout: 60_000 });
    const size = await imagePreviewSize(page);
    const onDisk = await sharp(path.join(workspace.datasetRoot, misplaced.relativePath)).metadata();
    assert.deepEqual(size, { width: onDisk.width, height: onDisk.height });
    assert.deepEqual(hashTree(workspace.datasetRoot), before, 'the dataset folder is not written');
    await screenshot(page, shots, '05d-heatmap-opened');
    await panel.locator('#heatmap-toggle').click();
    await panel.locator('#gallery[data-heatmaps="off"]').waitFor({ timeout: 10_000 });
  });

  step('clicking the thumbnail opens the image in an editor tab, and the image decodes', async () => {
    const panel = panelFrame(page);
    const fileName = path.basename(misplaced.relativePath);
    await panel.locator(`#gallery .thumb[data-path="${misplaced.relativePath}"] img`).click();
    await editorTab(page, new RegExp(escapeRegExp(fileName))).waitFor({ timeout: 30_000 });
    const size = await imagePreviewSize(page);
    const onDisk = await sharp(path.join(workspace.datasetRoot, misplaced.relativePath)).metadata();
    assert.deepEqual(size, { width: onDisk.width, height: onDisk.height });
    await screenshot(page, shots, '06-image-opened');
  });

  step('Move to class folder… moves the file to its true class, and Undo puts it back', async () => {
    const panel = panelFrame(page);
    const fileName = path.basename(misplaced.relativePath);
    const from = path.join(workspace.datasetRoot, misplaced.relativePath);
    const to = path.join(workspace.datasetRoot, misplaced.trueClass, fileName);
    const thumb = panel.locator(`#gallery .thumb[data-path="${misplaced.relativePath}"]`);
    await thumb.locator('.move-target').selectOption(misplaced.trueClass);
    await thumb.locator('.move').click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 20_000 });
    await screenshot(page, shots, '07-move-confirm');
    await dialog.getByRole('button', { name: 'Move', exact: true }).click();
    await waitFor(() => fs.existsSync(to) && !fs.existsSync(from), 20_000, `${fileName} to move into ${misplaced.trueClass}/`);
    await panel.locator(`#gallery .thumb[data-path="${misplaced.relativePath}"][data-moved="true"]`).waitFor({ timeout: 20_000 });
    await panel.locator('#retrain-hint').waitFor({ state: 'visible', timeout: 20_000 });
    await screenshot(page, shots, '07-moved');

    await undoLastFileOperation(page, () => fs.existsSync(from) && !fs.existsSync(to), fileName);
    await waitFor(() => fs.existsSync(from) && !fs.existsSync(to), 20_000, `Undo to put ${fileName} back into ${misplaced.wrongClass}/`);
    await panel.locator(`#gallery .thumb[data-path="${misplaced.relativePath}"]:not([data-moved="true"])`).waitFor({ timeout: 20_000 });
    await screenshot(page, shots, '08-undone');
  });

  step('a second run can be cancelled: the panel says so, the process is gone and the first checkpoint is intact', async () => {
    const checkpoint = hashTree(path.join(firstRunDir, 'model'));
    // A long second run (features come from the cache now), so that there is time to cancel it.
    workspace.writeSettings({ ...fastTrainingSettings, 'imageTrainer.epochs': 1000 });
    await page.waitForTimeout(1_000);
    await clickContextMenuItem(page, explorerItem(page, datasetName), trainCommand);
    const panel = panelFrame(page);
    await panel.locator('#run-state[data-state="running"]').waitFor({ timeout: trainingTimeoutMs });
    await waitFor(() => trainingProcesses(server!).length > 0, 30_000, 'the training process of the second run');
    // Cancel mid-training, once the second run has a best epoch of its own to keep.
    await panel.locator('#curves[data-epochs]:not([data-epochs="0"]):not([data-epochs="1"])').waitFor({ timeout: trainingTimeoutMs });
    await screenshot(page, shots, '09-second-run');
    await panel.locator('#cancel').click();
    await panel.locator('#run-state[data-state="cancelled"]').waitFor({ timeout: 60_000 });
    assert.match((await panel.locator('#run-state').innerText()).toLowerCase(), /cancel/);
    await waitFor(() => trainingProcesses(server!).length === 0, 30_000, 'the training process to exit after cancel');
    await screenshot(page, shots, '10-cancelled-dark');
    await setColorTheme(page, 'Default Light Modern');
    await screenshot(page, shots, '10-cancelled-light');
    assert.deepEqual(hashTree(path.join(firstRunDir, 'model')), checkpoint, "the first run's checkpoint is unchanged");
    for (const file of checkpointFiles(path.join(firstRunDir, 'model')))
      assert.ok(checkpoint[path.relative('model', file)], `checkpoint holds ${file}`);
    const runs = runFolders(workspace);
    assert.equal(runs.length, 2);
    const secondStatus = JSON.parse(fs.readFileSync(path.join(runs[1]!, 'status.json'), 'utf8')) as {
      state: string;
      hasCheckpoint: boolean;
    };
    assert.equal(secondStatus.state, 'cancelled');
    assert.equal(secondStatus.hasCheckpoint, true, 'the cancelled run keeps its best checkpoint');
  });
});

/** model/model.json and the weight files its manifest names, relative to the run folder. */
function checkpointFiles(modelDir: string): string[] {
  const modelJson = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
  const weights = modelJson.weightsManifest.flatMap((group) => group.paths);
  assert.ok(weights.length > 0, 'model.json names its weight files');
  return ['model/model.json', ...weights.map((w) => `model/${w}`)];
}

/** Starts recording the panel's state, progress and plotted epochs on every DOM change. */
async function observePanel(panel: FrameLocator): Promise<void> {
  await panel.locator('body').evaluate((body) => {
    const w = window as unknown as { __observations: unknown[] };
    w.__observations = [];
    let last = '';
    const record = (): void => {
      const num = (v: string | null | undefined): number | null => (v === null || v === undefined || v === '' ? null : Number(v));
      const o = {
        t: Math.round(performance.now()),
        state: document.querySelector('#run-state')?.getAttribute('data-state') ?? null,
        progress: num(document.querySelector('#progress')?.getAttribute('aria-valuenow')),
        epochs: num(document.querySelector('#curves')?.getAttribute('data-epochs')),
      };
      const key = JSON.stringify({ ...o, t: 0 });
      if (key !== last) w.__observations.push(o);
      last = key;
    };
    record();
    new MutationObserver(record).observe(body, { subtree: true, childList: true, attributes: true, characterData: true });
  });
}

async function readObservations(panel: FrameLocator): Promise<PanelObservation[]> {
  return panel.locator('body').evaluate(() => (window as unknown as { __observations: PanelObservation[] }).__observations);
}

/** The values of a series that exceed every earlier value (nulls ignored). */
function distinctIncreasing(values: (number | null)[]): number[] {
  const result: number[] = [];
  for (const v of values) if (v !== null && !Number.isNaN(v) && (result.length === 0 || v > result.at(-1)!)) result.push(v);
  return result;
}

/**
 * Undoes the last file operation the way a person does: Edit › Undo with the explorer focused,
 * confirming VS Code's "undo rename?" dialog when it asks. Focus and the dialog arrive
 * asynchronously in the browser, so a keypress that lands before the explorer has focus is retried.
 */
async function undoLastFileOperation(page: Page, isUndone: () => boolean, fileName: string): Promise<void> {
  const dialog = page.locator('.monaco-dialog-box');
  for (let attempt = 1; attempt <= 6 && !isUndone(); attempt++) {
    // VS Code undoes a file operation from the Explorer or from an editor of the renamed file.
    if (attempt % 2 === 1) await explorerItem(page, datasetName).click();
    else await editorTab(page, new RegExp(escapeRegExp(fileName))).click();
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

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function readVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}
