// The panel bundle in a real browser (headless Chromium via playwright-core): the real VS Code
// Elements and uPlot, the real Content-Security-Policy of the panel's HTML, real leaf photos as
// thumbnails, dark and light theme variables. Screenshots go to test-results/ for review.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildWebviewBundle } from '../support/webviewBundle';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createNonce, panelHtml } from '../../src/extension/panelHtml';
import type { PanelState } from '../../src/shared/protocol/panel';
import type { Prediction } from '../../src/shared/types';
import { MODEL_CHOICES } from '../../src/shared/modelChoices';
import { GALLERY_PAGE_SIZE } from '../../src/webview/galleryView';
import { seededRandom } from '../../src/training/util/random';
import { evaluationOf, sampleState, syntheticEpochs } from '../support/webviewTestKit';

const repoRoot = path.resolve(__dirname, '../..');
const leavesRoot = path.join(repoRoot, 'samples/leaves');
const resultsDir = path.join(repoRoot, 'test-results');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const DARK: Record<string, string> = {
  'font-family': '-apple-system, BlinkMacSystemFont, "Segoe WPC", "Segoe UI", "Ubuntu", "Droid Sans", sans-serif',
  'font-size': '13px',
  'font-weight': 'normal',
  'editor-font-family': '"Droid Sans Mono", monospace',
  foreground: '#cccccc',
  descriptionForeground: '#9d9d9d',
  disabledForeground: 'rgba(204, 204, 204, 0.5)',
  errorForeground: '#f85149',
  focusBorder: '#0078d4',
  'editor-background': '#1f1f1f',
  'editor-foreground': '#cccccc',
  'editorWidget-background': '#202020',
  'editorWidget-border': '#313131',
  'panel-border': '#2b2b2b',
  'widget-border': '#313131',
  'button-background': '#0078d4',
  'button-foreground': '#ffffff',
  'button-hoverBackground': '#026ec1',
  'button-border': 'rgba(255, 255, 255, 0.07)',
  'button-secondaryBackground': '#313131',
  'button-secondaryForeground': '#cccccc',
  'button-secondaryHoverBackground': '#3c3c3c',
  'badge-background': '#616161',
  'badge-foreground': '#f8f8f8',
  'dropdown-background': '#313131',
  'dropdown-foreground': '#cccccc',
  'dropdown-border': '#3c3c3c',
  'checkbox-background': '#313131',
  'checkbox-border': '#3c3c3c',
  'checkbox-foreground': '#cccccc',
  'progressBar-background': '#0078d4',
  'charts-foreground': '#cccccc',
  'charts-red': '#f14c4c',
  'charts-blue': '#3794ff',
  'charts-yellow': '#cca700',
  'charts-orange': '#d18616',
  'charts-green': '#89d185',
  'charts-purple': '#b180d7',
  'textLink-foreground': '#4daafc',
  'textLink-activeForeground': '#4daafc',
  'textPreformat-foreground': '#d0d0d0',
  'textBlockQuote-background': '#2b2b2b',
  'editorIndentGuide-background1': '#404040',
  'inputValidation-infoBackground': '#063b49',
  'inputValidation-infoBorder': '#007acc',
  'inputValidation-errorBackground': '#5a1d1d',
  'inputValidation-errorBorder': '#be1100',
  'testing-iconPassed': '#73c991',
  'editorWarning-foreground': '#cca700',
  'editor-selectionBackground': '#264f78',
  'keybindingTable-rowsBackground': 'rgba(204, 204, 204, 0.04)',
  'editorGroup-border': 'rgba(255, 255, 255, 0.09)',
  'sash-hoverBorder': '#0078d4',
  'icon-foreground': '#cccccc',
  'settings-checkboxBackground': '#313131',
  'settings-checkboxBorder': '#3c3c3c',
  'settings-checkboxForeground': '#cccccc',
  'sideBarSectionHeader-background': '#181818',
  'sideBarTitle-foreground': '#cccccc',
  'sideBar-background': '#181818',
  'keybindingTable-headerBackground': 'rgba(204, 204, 204, 0.04)',
  'button-separator': 'rgba(255, 255, 255, 0.4)',
};
const LIGHT: Record<string, string> = {
  ...DARK,
  foreground: '#3b3b3b',
  descriptionForeground: '#717171',
  disabledForeground: 'rgba(97, 97, 97, 0.5)',
  errorForeground: '#f85149',
  focusBorder: '#005fb8',
  'editor-background': '#ffffff',
  'editor-foreground': '#3b3b3b',
  'editorWidget-background': '#f8f8f8',
  'editorWidget-border': '#c8c8c8',
  'panel-border': '#e5e5e5',
  'widget-border': '#e5e5e5',
  'button-background': '#005fb8',
  'button-hoverBackground': '#0258a8',
  'button-border': 'rgba(0, 0, 0, 0.1)',
  'button-secondaryBackground': '#e5e5e5',
  'button-secondaryForeground': '#3b3b3b',
  'button-secondaryHoverBackground': '#cccccc',
  'badge-background': '#cccccc',
  'badge-foreground': '#3b3b3b',
  'dropdown-background': '#ffffff',
  'dropdown-foreground': '#3b3b3b',
  'dropdown-border': '#cecece',
  'checkbox-background': '#f8f8f8',
  'checkbox-border': '#cecece',
  'checkbox-foreground': '#3b3b3b',
  'progressBar-background': '#005fb8',
  'charts-foreground': '#616161',
  'charts-red': '#e51400',
  'charts-blue': '#1a85ff',
  'charts-yellow': '#bf8803',
  'charts-orange': '#d18616',
  'charts-green': '#388a34',
  'charts-purple': '#652d90',
  'textLink-foreground': '#005fb8',
  'textLink-activeForeground': '#005fb8',
  'textPreformat-foreground': '#3b3b3b',
  'textBlockQuote-background': '#f8f8f8',
  'editorIndentGuide-background1': '#d3d3d3',
  'inputValidation-infoBackground': '#d6ecf2',
  'inputValidation-errorBackground': '#f2dede',
  'testing-iconPassed': '#388a34',
  'editorWarning-foreground': '#bf8803',
  'editor-selectionBackground': '#add6ff',
  'keybindingTable-rowsBackground': 'rgba(97, 97, 97, 0.04)',
  'editorGroup-border': '#e5e5e5',
  'icon-foreground': '#3b3b3b',
  'settings-checkboxBackground': '#f8f8f8',
  'settings-checkboxBorder': '#cecece',
  'settings-checkboxForeground': '#3b3b3b',
  'sideBarSectionHeader-background': '#f8f8f8',
  'sideBarTitle-foreground': '#3b3b3b',
  'sideBar-background': '#f8f8f8',
  'keybindingTable-headerBackground': 'rgba(97, 97, 97, 0.04)',
  'button-separator': 'rgba(255, 255, 255, 0.4)',
};

let server: http.Server;
let origin: string;
let browser: Browser;
let bundleDir: string;

/** The leaf photos, `class/file` relative paths per class. */
function leafImages(): Map<string, string[]> {
  const byClass = new Map<string, string[]>();
  for (const cls of fs.readdirSync(leavesRoot).sort()) {
    byClass.set(
      cls,
      fs
        .readdirSync(path.join(leavesRoot, cls))
        .sort()
        .map((f) => `${cls}/${f}`),
    );
  }
  return byClass;
}

/** A finished run over the real leaf photos: 6 validation images per class, a few confusions. */
function leafState(): PanelState {
  const images = leafImages();
  const classes = [...images.keys()];
  const random = seededRandom(11);
  const predictions: Prediction[] = [];
  classes.forEach((cls, actual) => {
    images
      .get(cls)!
      .slice(0, 6)
      .forEach((file, i) => {
        const predicted = i === 0 && actual !== 1 ? (actual + 1) % classes.length : i === 1 && actual === 3 ? 0 : actual;
        const top = 0.45 + random() * 0.5;
        const probs = classes.map((_, j) => (j === predicted ? top : (1 - top) / (classes.length - 1)));
        predictions.push({ path: file, actual, predicted, confidence: top, probs: probs.map((p) => Math.round(p * 10000) / 10000) });
      });
  });
  const evaluation = evaluationOf(classes, predictions, 9);
  return sampleState({
    state: 'finished',
    imageBaseUri: `${origin}/data/leaves`,
    evaluation,
    epochs: syntheticEpochs(14, { lrDropAt: 6, fineTuneFrom: 11 }),
    progress: { stage: 'save', done: 1, total: 1 },
    options: { ...sampleState().options!, epochs: 10, fineTuneLayers: 20, fineTuneEpochs: 5 },
    summary: {
      valAccuracy: evaluation.accuracy,
      bestEpoch: 9,
      epochsRun: 14,
      cache: { hits: 96, misses: 24 },
      wallMs: 83_000,
      featuresPerSec: 61,
      cancelled: false,
    },
  });
}

function pageHtml(theme: 'dark' | 'light'): string {
  const nonce = createNonce();
  const vars = Object.entries(theme === 'dark' ? DARK : LIGHT)
    .map(([k, v]) => `--vscode-${k}: ${v};`)
    .join(' ');
  // VS Code sets these variables and the body class itself; here a nonce'd <style> stands in.
  return panelHtml({
    cspSource: origin,
    nonce,
    scriptUri: `${origin}/dist/webview.js`,
    styleUri: `${origin}/media/panel.css`,
    title: 'Training',
  })
    .replace('</head>', `<style nonce="${nonce}">:root { ${vars} }</style>\n</head>`)
    .replace('<body>', `<body class="vscode-${theme}" data-vscode-theme-kind="vscode-${theme}">`);
}

function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', origin);
  const send = (file: string, type: string) => {
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': type });
    fs.createReadStream(file).pipe(res);
  };
  const pathname = decodeURIComponent(url.pathname);
  if (pathname === '/dark' || pathname === '/light')
    res.writeHead(200, { 'content-type': 'text/html' }).end(pageHtml(pathname.slice(1) as 'dark' | 'light'));
  else if (pathname === '/dist/webview.js') send(path.join(bundleDir, 'webview.js'), 'text/javascript');
  else if (pathname === '/media/panel.css') send(path.join(repoRoot, 'media/panel.css'), 'text/css');
  else if (pathname.startsWith('/data/leaves/') && !pathname.includes('..'))
    send(path.join(leavesRoot, pathname.slice('/data/leaves/'.length)), 'image/jpeg');
  // Any image of the big synthetic run is served as one real leaf photo.
  else if (pathname.startsWith('/big/')) send(path.join(leavesRoot, 'healthy/healthy_01.jpg'), 'image/jpeg');
  else if (pathname === '/favicon.ico') res.writeHead(204).end();
  else res.writeHead(404).end();
}

before(async () => {
  assert.ok(
    fs.existsSync(chromiumPath),
    `Chromium is needed for the browser check: ${chromiumPath} is missing (apt-get install chromium, or set CHROMIUM_PATH)`,
  );
  bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'webview-bundle-'));
  await buildWebviewBundle(bundleDir);
  server = http.createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  fs.mkdirSync(resultsDir, { recursive: true });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  if (bundleDir) fs.rmSync(bundleDir, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  problems: string[];
}

async function openPanel(theme: 'dark' | 'light'): Promise<Opened> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // A string, not a function: tsx would wrap a function's inner names in its `__name` helper,
  // which does not exist in the page (defined here as identity for later `evaluate` calls).
  await page.addInitScript(`
    window.__name = (f) => f;
    window.__posted = [];
    window.__violations = [];
    window.__saved = undefined;
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber));
    window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => window.__saved, setState: (s) => { window.__saved = s; } });
  `);
  await page.goto(`${origin}/${theme}`);
  await page
    .waitForFunction(() => (window as unknown as { __posted: unknown[] }).__posted.length > 0, undefined, { timeout: 5000 })
    .catch((e: Error) => {
      throw new Error(`${e.message}\n${problems.join('\n')}`);
    });
  return { page, problems };
}

async function deliver(page: Page, message: unknown): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, '*'), message);
}

for (const theme of ['dark', 'light'] as const) {
  test(`in Chromium (${theme} theme) the panel renders a finished run with real components, no CSP violation, and thumbnails that decode`, async () => {
    const { page, problems } = await openPanel(theme);
    assert.deepEqual(await page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted), [{ type: 'ready' }]);
    const state = leafState();
    await deliver(page, { type: 'state', state });
    await page.locator('#matrix td[data-actual][data-predicted]').first().waitFor();
    assert.equal(await page.locator('#matrix td[data-actual][data-predicted]').count(), 16);
    assert.equal(await page.locator('#run-state').getAttribute('data-state'), 'finished');
    assert.equal(await page.locator('#curves').getAttribute('data-epochs'), '14');
    assert.equal(await page.locator('#curves .marks .mark-best[data-epoch="9"]').count(), 2);
    // The VS Code Elements are real custom elements with their shadow DOM.
    const upgraded = await page.evaluate(() =>
      ['vscode-button', 'vscode-checkbox', 'vscode-collapsible', 'vscode-progress-bar', 'vscode-table'].map((tag) => [
        tag,
        !!customElements.get(tag),
        !!document.querySelector(tag)?.shadowRoot,
      ]),
    );
    for (const [tag, defined, shadow] of upgraded) assert.ok(defined && shadow, `${String(tag)} upgraded`);
    // A matrix cell with a confusion: black_rot (0) predicted as cedar_rust (1).
    await page.locator('#matrix td[data-actual="0"][data-predicted="1"]').click();
    const thumb = page.locator('#gallery .thumb').first();
    await thumb.waitFor();
    await thumb.scrollIntoViewIfNeeded();
    await page.waitForFunction(() =>
      [...document.querySelectorAll<HTMLImageElement>('#gallery .thumb img')].every((img) => img.complete && img.naturalWidth > 0),
    );
    await thumb.locator('img').click();
    await thumb.locator('.move-target').selectOption('healthy');
    await thumb.locator('.move').click();
    const posted = await page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted);
    assert.deepEqual(posted.slice(1), [
      { type: 'openImage', path: 'black_rot/black_rot_01.jpg' },
      { type: 'moveImage', path: 'black_rot/black_rot_01.jpg', toClass: 'healthy' },
    ]);
    await deliver(page, { type: 'imageMoved', path: 'black_rot/black_rot_01.jpg', toClass: 'healthy' });
    await page.locator('#retrain-hint').waitFor({ state: 'visible' });
    // Keyboard: focus lands on the matrix and arrows move it.
    await page.locator('#matrix td[data-actual="0"][data-predicted="1"]').focus();
    await page.keyboard.press('ArrowDown');
    assert.equal(
      await page.evaluate(
        () => (document.activeElement as HTMLElement).dataset.actual + ',' + (document.activeElement as HTMLElement).dataset.predicted,
      ),
      '1,1',
    );
    await page.locator('#skipped').click();
    await page.screenshot({ path: path.join(resultsDir, `panel-${theme}.png`), fullPage: true });
    const violations = await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations);
    assert.deepEqual(violations, [], 'no Content-Security-Policy violation');
    assert.deepEqual(problems, []);
    await page.close();
  });
}

test('in Chromium a live run shows progress and curves growing epoch by epoch', async () => {
  const { page, problems } = await openPanel('dark');
  const state = sampleState({
    imageBaseUri: `${origin}/data/leaves`,
    epochs: [],
    progress: { stage: 'features', done: 40, total: 120, imagesPerSec: 61.3, etaSec: 1.3 },
  });
  await deliver(page, { type: 'state', state });
  await page.locator('#run-state[data-state="running"]').waitFor();
  assert.equal(await page.locator('#progress').getAttribute('aria-valuenow'), '33');
  for (const metrics of syntheticEpochs(4)) {
    await deliver(page, { type: 'epoch', metrics });
    await deliver(page, {
      type: 'progress',
      progress: { stage: 'head', done: 2, total: 4, epoch: metrics.epoch, epochs: 20, imagesPerSec: 900, etaSec: 20 },
    });
  }
  await page.locator('#curves[data-epochs="4"]').waitFor();
  assert.equal(await page.locator('#epoch').innerText(), 'Epoch 4 of 20');
  assert.equal(await page.locator('#progress').getAttribute('aria-valuenow'), '50');
  await page.screenshot({ path: path.join(resultsDir, 'panel-live-dark.png'), fullPage: false });
  await page.locator('#cancel').click();
  assert.deepEqual((await page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted)).at(-1), { type: 'cancel' });
  assert.deepEqual(problems, []);
  await page.close();
});

test('in Chromium a 10-class run with 2,000 validation images renders, and its 300-image cell opens a page at a time', async () => {
  const { page, problems } = await openPanel('dark');
  const names = Array.from({ length: 10 }, (_, i) => `class_${i}`);
  const random = seededRandom(5);
  const predictions: Prediction[] = [];
  for (let i = 0; i < 2000; i++) {
    const actual = i < 400 ? 0 : 1 + ((i - 400) % 9);
    const predicted = i < 300 ? 1 : i < 400 ? 0 : random() < 0.85 ? actual : (actual + 1 + Math.floor(random() * 9)) % 10;
    const top = 0.4 + random() * 0.59;
    const probs = names.map((_, j) => (j === predicted ? top : (1 - top) / 9));
    predictions.push({ path: `${names[actual]}/image ${i}.jpg`, actual, predicted, confidence: top, probs });
  }
  const evaluation = evaluationOf(names, predictions, 7);
  assert.equal(evaluation.matrix[0]![1], 300);
  const state = sampleState({
    state: 'finished',
    imageBaseUri: `${origin}/big`,
    evaluation,
    epochs: syntheticEpochs(20, { lrDropAt: 12 }),
  });
  // How long rendering and opening take is a speed target of `npm run bench`, not a test.
  const shown = await page.evaluate(async (s) => {
    const frame = () => new Promise<void>((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    window.dispatchEvent(new MessageEvent('message', { data: { type: 'state', state: s } }));
    await frame();
    const cells = document.querySelectorAll('#matrix td[data-actual]').length;
    const cell = document.querySelector<HTMLElement>('#matrix td[data-actual="0"][data-predicted="1"]')!;
    const count = cell.textContent;
    cell.click();
    await frame();
    const thumbs = document.querySelectorAll('#gallery .thumb').length;
    // Another cell, then the big one again: the gallery shows each cell's images afresh.
    document.querySelector<HTMLElement>('#matrix td[data-actual="2"][data-predicted="2"]')!.click();
    await frame();
    const otherThumbs = document.querySelectorAll('#gallery .thumb').length;
    cell.click();
    await frame();
    return { cells, count, thumbs, otherThumbs, reopenedThumbs: document.querySelectorAll('#gallery .thumb').length };
  }, state);
  assert.equal(shown.cells, 100);
  assert.equal(shown.count, '300');
  assert.equal(shown.thumbs, GALLERY_PAGE_SIZE);
  assert.equal(shown.otherThumbs, Math.min(GALLERY_PAGE_SIZE, evaluation.matrix[2]![2]!));
  assert.equal(shown.reopenedThumbs, GALLERY_PAGE_SIZE);
  // Scrolling to the end brings in the remaining thumbnails.
  for (let i = 0; i < 20 && (await page.locator('#gallery .thumb').count()) < 300; i++) {
    await page
      .locator('#gallery-more')
      .scrollIntoViewIfNeeded()
      .catch(() => undefined);
    await page.waitForTimeout(100);
  }
  assert.equal(await page.locator('#gallery .thumb').count(), 300);
  await page.locator('#matrix').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(resultsDir, 'panel-10-classes-dark.png'), fullPage: false });
  assert.deepEqual(problems, []);
  await page.close();
});

interface ChartBoxes {
  loss: DOMRectJSON;
  accuracy: DOMRectJSON;
  /** Each chart's uPlot root: it must fit inside its own figure. */
  plots: DOMRectJSON[];
}
interface DOMRectJSON {
  left: number;
  top: number;
  right: number;
  bottom: number;
  width: number;
  height: number;
}

async function chartBoxes(page: Page): Promise<ChartBoxes> {
  return page.evaluate(() => {
    const box = (e: Element | null): DOMRectJSON => {
      const r = e!.getBoundingClientRect();
      return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height };
    };
    const charts = ['loss', 'accuracy'].map((key) => document.querySelector(`#curves .chart[data-chart="${key}"]`));
    return { loss: box(charts[0]!), accuracy: box(charts[1]!), plots: charts.map((c) => box(c!.querySelector('.uplot'))) };
  });
}

function intersects(a: DOMRectJSON, b: DOMRectJSON): boolean {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

test('in Chromium the loss and accuracy charts never overlap: side by side when wide, stacked when narrow, resized live', async () => {
  const { page, problems } = await openPanel('dark');
  const state = sampleState({
    state: 'finished',
    imageBaseUri: `${origin}/data/leaves`,
    epochs: syntheticEpochs(14, { lrDropAt: 6, fineTuneFrom: 11 }),
    models: MODEL_CHOICES.map((m) => ({ ...m })),
    currentModel: 'mobilenet_v2_0.35',
  });
  await deliver(page, { type: 'state', state });
  await page.locator('#curves[data-epochs="14"] .chart .uplot canvas').first().waitFor();
  // 1200 px: an editor to itself; 545 and 420 px: an image opened beside the panel (the e2e layout).
  for (const width of [1200, 545, 420, 1200]) {
    await page.setViewportSize({ width, height: 900 });
    // ResizeObserver callbacks run before the next frames are painted.
    await page.evaluate(() => new Promise<void>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))));
    const boxes = await chartBoxes(page);
    const where = `at ${width} px: ${JSON.stringify(boxes)}`;
    assert.ok(!intersects(boxes.loss, boxes.accuracy), `the chart boxes intersect ${where}`);
    assert.ok(!intersects(boxes.plots[0]!, boxes.plots[1]!), `the plots intersect ${where}`);
    for (const [i, figure] of [boxes.loss, boxes.accuracy].entries()) {
      const plot = boxes.plots[i]!;
      assert.ok(plot.width > 150, `chart ${i} is drawn ${where}`);
      assert.ok(plot.left >= figure.left - 0.5 && plot.right <= figure.right + 0.5, `chart ${i}'s plot fits its box ${where}`);
      assert.ok(figure.right <= width, `chart ${i} fits the panel ${where}`);
    }
    if (width >= 1000)
      assert.ok(Math.abs(boxes.loss.top - boxes.accuracy.top) < 1 && boxes.loss.right <= boxes.accuracy.left, `side by side ${where}`);
    else assert.ok(boxes.loss.bottom <= boxes.accuracy.top, `stacked ${where}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 0, `nothing is wider than the panel ${where} (overflow ${overflow} px)`);
    if (width < 1000) await page.screenshot({ path: path.join(resultsDir, `panel-narrow-${width}px.png`), fullPage: true });
  }
  // The base-model dropdown in the header, a native select under the real CSP.
  await page.locator('#model-select').selectOption('mobilenet_v1_0.50');
  await page.locator('#retrain').click();
  assert.deepEqual((await page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted)).at(-1), {
    type: 'retrain',
    model: 'mobilenet_v1_0.50',
  });
  assert.deepEqual(await page.evaluate(() => (window as unknown as { __violations: string[] }).__violations), []);
  assert.deepEqual(problems, []);
  await page.close();
});
