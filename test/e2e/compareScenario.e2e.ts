// Comparing runs and reading the feature map, clicked through in a real VS Code (code-server)
// with the packaged VSIX: two real runs of the leaf sample (trained with the CLI of the same
// bundle, so the story starts where a person has already trained twice), Compare with… on the
// newer run's tree item, a flipped image opened from the comparison; then the feature map, a point
// clicked and its image opened, and a lasso selection moved to another class and undone.
// Screenshots of both views, dark and light, narrow and wide.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import type { RunComparison } from '../../src/shared/compare';
import type { FeatureMapFile } from '../../src/shared/featureMap';
import {
  clickContextMenuItem,
  editorTab,
  expandView,
  explorerItem,
  freshResultsFolder,
  imagePreviewSize,
  openWorkbench,
  panelFrame,
  repoRoot,
  screenshot,
  setColorTheme,
  startCodeServer,
  undoLastFileOperation,
  waitFor,
} from './harness';
import type { CodeServer, Workbench } from './harness';
import { createLeavesWorkspace, datasetName, fastTrainingSettings, runFolders } from './workspaceFixture';
import type { Workspace } from './workspaceFixture';

const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const vsix = process.env.IMAGE_TRAINER_VSIX ?? path.join(repoRoot, `image-trainer-${version}.vsix`);
const bundle = path.join(repoRoot, 'dist', 'training.js');
/** Space around the map's points in the canvas (src/webview/mapView.ts MAP_PAD). */
const MAP_PAD = 16;

describe('a person compares two runs of a dataset and explores its feature map in VS Code', () => {
  let workspace: Workspace;
  let server: CodeServer | undefined;
  let workbench: Workbench | undefined;
  let page: Page;
  let shots: string;
  let runA: string;
  let runB: string;
  let comparison: RunComparison;
  let failed = false;
  /** The map point the map step opened, which the lasso step selects. */
  let lassoed: { path: string; className: string; at: { x: number; y: number }; gap: number; classes: string[] } | undefined;

  function step(name: string, body: () => Promise<void>): void {
    it(name, { timeout: 240_000 }, async () => {
      if (failed) throw new Error('not run: an earlier step failed');
      const t0 = Date.now();
      try {
        await body();
      } catch (error) {
        failed = true;
        if (workbench) await screenshot(page, shots, '99-failure').catch(() => undefined);
        throw error;
      } finally {
        console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s  ${name}`);
      }
    });
  }

  /** The panel at a width: narrow (its webview about 420 px wide) or wide (a 1600 px window). */
  async function width(kind: 'narrow' | 'wide'): Promise<void> {
    await page.setViewportSize({ width: kind === 'narrow' ? 720 : 1600, height: 1000 });
    await page.waitForTimeout(500);
    if (kind === 'wide') return;
    const frame = page.locator('iframe.webview.ready').last();
    const actual = (await frame.boundingBox())?.width ?? 420;
    await page.setViewportSize({ width: Math.round(720 + 420 - actual), height: 1000 });
    await page.waitForTimeout(500);
  }

  /** Screenshots of the panel scrolled to `selector`: dark and light, narrow and wide. */
  async function fourShots(selector: string, name: string): Promise<void> {
    const panel = panelFrame(page);
    for (const theme of ['Default Dark Modern', 'Default Light Modern'] as const) {
      await setColorTheme(page, theme);
      for (const kind of ['wide', 'narrow'] as const) {
        await width(kind);
        await panel.locator(selector).evaluate((el) => el.scrollIntoView({ block: 'start' }));
        await page.waitForTimeout(300);
        await screenshot(page, shots, `${name}-${theme.includes('Dark') ? 'dark' : 'light'}-${kind}`);
      }
    }
    await setColorTheme(page, 'Default Dark Modern');
    await width('wide');
  }

  before(async () => {
    shots = freshResultsFolder('compare');
    assert.ok(fs.existsSync(vsix), `no VSIX at ${vsix}: run \`npm run package\``);
    assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build`');
    workspace = createLeavesWorkspace();
    const out = [
      '--out',
      path.join(workspace.root, '.image-trainer', 'runs'),
      '--cache',
      path.join(workspace.root, '.image-trainer', 'cache'),
    ];
    const common = [
      '--seed',
      String(fastTrainingSettings['imageTrainer.seed']),
      '--val-split',
      String(fastTrainingSettings['imageTrainer.valSplit']),
      '--quiet',
    ];
    // A weak first run (one epoch of a 4-unit head at a low learning rate), then the usual one: the same split, so the second fixes images the first got wrong.
    execFileSync(process.execPath, [
      bundle,
      'train',
      workspace.datasetRoot,
      ...out,
      ...common,
      '--epochs',
      '1',
      '--hidden-units',
      '4',
      '--learning-rate',
      '0.0003',
    ]);
    execFileSync(process.execPath, [bundle, 'train', workspace.datasetRoot, ...out, ...common, '--epochs', '8']);
    [runA, runB] = runFolders(workspace) as [string, string];
    comparison = JSON.parse(
      execFileSync(process.execPath, [bundle, 'compare', runA, runB, '--json'], { encoding: 'utf8' }),
    ) as RunComparison;
    assert.ok(comparison.flips.fixed.length > 0, 'the second run fixes at least one image of the first');
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
  });

  step('the tree lists both runs, newest first, with accuracy and main settings', async () => {
    await explorerItem(page, datasetName).waitFor({ timeout: 60_000 });
    // The folders pane collapsed, so the Image Datasets view has room for the runs.
    const folders = page
      .locator('.pane-header')
      .filter({ hasText: path.basename(workspace.root).toUpperCase() })
      .first();
    if ((await folders.getAttribute('aria-expanded')) === 'true') await folders.click();
    const view = await expandView(page, 'Image Datasets');
    const dataset = view.getByRole('treeitem').filter({ hasText: datasetName }).first();
    await dataset.waitFor({ timeout: 60_000 });
    if ((await dataset.getAttribute('aria-expanded')) === 'false') await dataset.locator('.monaco-tl-twistie').click();
    const runs = view
      .getByRole('treeitem')
      .filter({ hasText: /^\s*Runs/ })
      .first();
    await runs.waitFor({ timeout: 30_000 });
    if ((await runs.getAttribute('aria-expanded')) === 'false') await runs.locator('.monaco-tl-twistie').click();
    const items = view.getByRole('treeitem').filter({ hasText: /val \d+\.\d% · finished/ });
    await items.nth(1).waitFor({ timeout: 30_000 });
    const texts = (await items.allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
    assert.match(texts[0]!, /· 8 epochs · seed 7/, `newest first: ${texts.join(' | ')}`);
    assert.match(texts[1]!, /· 1 epochs · seed 7/);
    await screenshot(page, shots, '01-tree-runs');
  });

  step('Compare with… on the newer run compares it with the run picked from the list, and a flipped image opens', async () => {
    const view = await expandView(page, 'Image Datasets');
    const newer = view
      .getByRole('treeitem')
      .filter({ hasText: /· 8 epochs · seed 7/ })
      .first();
    await clickContextMenuItem(page, newer, 'Compare with…');
    const pick = page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ hasText: path.basename(runA) })
      .first();
    await pick.waitFor({ timeout: 60_000 });
    await pick.click();
    const panel = panelFrame(page);
    await panel.locator('#compare:not([hidden]) #compare-summary').waitFor({ timeout: 90_000 });
    const summary = await panel.locator('#compare-summary').innerText();
    assert.match(summary, new RegExp(`${comparison.flips.fixed.length} fixed, ${comparison.flips.broken.length} broken`));
    assert.equal(await panel.locator('#flips-fixed .thumb').count(), comparison.flips.fixed.length);
    assert.equal(await panel.locator('#compare-matrices table').count(), 3);
    await fourShots('#compare', '02-compare');
    const flip = comparison.flips.fixed[0]!;
    const thumb = panel.locator(`#flips-fixed .thumb[data-path="${flip.path}"]`);
    await thumb.scrollIntoViewIfNeeded();
    await thumb.locator('img').click();
    await editorTab(page, path.basename(flip.path)).waitFor({ timeout: 30_000 });
    const opened = await imagePreviewSize(page);
    const onDisk = await sharp(path.join(workspace.datasetRoot, flip.path)).metadata();
    assert.deepEqual(opened, { width: onDisk.width, height: onDisk.height }, 'the flipped image itself is shown');
    await screenshot(page, shots, '03-flipped-image-opened');
  });

  step('the feature map shows every image; a click on a point opens its image', async () => {
    const panel = panelFrame(page);
    await panel.locator('#explore-map').click();
    await panel.locator('#map:not([hidden]) #map-canvas').waitFor({ timeout: 30_000 });
    const map = JSON.parse(fs.readFileSync(path.join(runB, 'feature-map.json'), 'utf8')) as FeatureMapFile;
    assert.match(await panel.locator('#map-caption').innerText(), new RegExp(`^${map.paths.length} images`));
    await fourShots('#map', '04-map');
    const canvas = panel.locator('#map-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    // The point farthest from its nearest neighbour on screen: a click on it can only mean it.
    const screen = map.paths.map((_, i) => ({
      x: MAP_PAD + map.x[i]! * (box.width - 2 * MAP_PAD),
      y: MAP_PAD + map.y[i]! * (box.height - 2 * MAP_PAD),
    }));
    let best = 0;
    let bestGap = -1;
    screen.forEach((p, i) => {
      const gap = Math.min(...screen.filter((_, j) => j !== i).map((q) => Math.hypot(q.x - p.x, q.y - p.y)));
      if (gap > bestGap) [best, bestGap] = [i, gap];
    });
    await page.mouse.move(box.x + screen[best]!.x, box.y + screen[best]!.y);
    await panel.locator('#map-tip:not([hidden])').waitFor({ timeout: 10_000 });
    assert.match(await panel.locator('#map-tip').innerText(), new RegExp(path.basename(map.paths[best]!).replace('.', '\\.')));
    await screenshot(page, shots, '05-map-hover');
    await page.mouse.down();
    await page.mouse.up();
    await editorTab(page, path.basename(map.paths[best]!)).waitFor({ timeout: 30_000 });
    const shown = await imagePreviewSize(page);
    const file = await sharp(path.join(workspace.datasetRoot, map.paths[best]!)).metadata();
    assert.deepEqual(shown, { width: file.width, height: file.height }, 'the clicked point’s image is shown');
    await screenshot(page, shots, '06-map-point-opened');
    lassoed = { path: map.paths[best]!, className: map.classes[map.labels[best]!]!, at: screen[best]!, gap: bestGap, classes: map.classes };
  });

  step('a Shift-drag lasso around that point moves its image to another class after one confirmation, and Undo puts it back', async () => {
    const panel = panelFrame(page);
    const canvas = panel.locator('#map-canvas');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const { path: rel, className, at, gap, classes } = lassoed!;
    const r = Math.max(4, Math.min(gap / 2, 20));
    await page.keyboard.down('Shift');
    await page.mouse.move(box.x + at.x - r, box.y + at.y - r);
    await page.mouse.down();
    for (const [dx, dy] of [
      [r, -r],
      [r, r],
      [-r, r],
    ])
      await page.mouse.move(box.x + at.x + dx!, box.y + at.y + dy!, { steps: 3 });
    await page.mouse.up();
    await page.keyboard.up('Shift');
    await panel.locator('#map-selection:not([hidden])').waitFor({ timeout: 10_000 });
    assert.match(await panel.locator('#map-selection').innerText(), /^1 image selected/);
    const toClass = classes.find((c) => c !== className)!;
    await panel.locator('#map-move-target').selectOption(toClass);
    await panel.locator('#map-move').click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 20_000 });
    assert.match(await dialog.innerText(), new RegExp(`Move 1 image to class "${toClass}"`));
    await screenshot(page, shots, '07-lasso-move-confirm');
    await dialog.getByRole('button', { name: 'Move', exact: true }).click();
    const from = path.join(workspace.datasetRoot, rel);
    const to = path.join(workspace.datasetRoot, toClass, path.basename(rel));
    await waitFor(() => fs.existsSync(to) && !fs.existsSync(from), 20_000, `${rel} to move into ${toClass}/`);
    await panel.locator('#retrain-hint').waitFor({ state: 'visible', timeout: 20_000 });
    // Undo from the Explorer, as a person does: show the folders again first.
    const folders = page
      .locator('.pane-header')
      .filter({ hasText: path.basename(workspace.root) })
      .first();
    if ((await folders.getAttribute('aria-expanded')) === 'false') await folders.click();
    await undoLastFileOperation(page, datasetName, () => fs.existsSync(from) && !fs.existsSync(to), path.basename(rel));
    await waitFor(() => fs.existsSync(from) && !fs.existsSync(to), 20_000, `Undo to put ${rel} back`);
    await screenshot(page, shots, '08-lasso-undone');
  });
});
