// The feature map of a 20,000-image run in headless Chromium, with the panel's real bundle, CSS and
// Content-Security-Policy: how many frames per second it draws while the user pans and zooms, what
// one frame costs, and that hovering a point shows its thumbnail. The figures are printed (and
// written to test-results/feature-map-fps.json); the test fails below 20 frames per second.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildWebviewBundle } from '../support/webviewBundle';
import { chromium, type Browser } from 'playwright-core';
import { createNonce, panelHtml } from '../../src/extension/panelHtml';
import type { FeatureMapFile } from '../../src/shared/featureMap';
import { seededRandom } from '../../src/training/util/random';
import { sampleState, syntheticEvaluation } from '../support/webviewTestKit';

const repoRoot = path.resolve(__dirname, '../..');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const photo = path.join(repoRoot, 'samples/leaves/healthy/healthy_01.jpg');
const POINTS = 20_000;
let server: http.Server;
let origin: string;
let browser: Browser;
let bundleDir: string;

/** 20,000 points in 8 seeded clusters, as a UMAP layout of 8 classes looks. */
function bigMap(): FeatureMapFile {
  const random = seededRandom(3);
  const classes = Array.from({ length: 8 }, (_, i) => `class_${i}`);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const labels = Array.from({ length: POINTS }, (_, i) => i % classes.length);
  const clamp = (v: number) => Math.min(1, Math.max(0, v));
  return {
    format: 'image-trainer/feature-map@1',
    method: { pca: 32, nNeighbors: 15, minDist: 0.1, nEpochs: 200, seed: 1 },
    classes,
    paths: labels.map((c, i) => `${classes[c]}/img_${i}.jpg`),
    labels,
    sides: labels.map((_, i) => (i % 5 === 0 ? 1 : 0)),
    x: labels.map((c) => clamp(0.15 + 0.7 * ((c % 4) / 3) + 0.05 * gauss())),
    y: labels.map((c) => clamp(0.25 + 0.5 * Math.floor(c / 4) + 0.06 * gauss())),
    ms: { pca: 0, umap: 0 },
    cached: true,
  };
}

before(async () => {
  assert.ok(fs.existsSync(chromiumPath), `Chromium is needed: ${chromiumPath} is missing`);
  bundleDir = fs.mkdtempSync(path.join(os.tmpdir(), 'map-bundle-'));
  await buildWebviewBundle(bundleDir);
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', origin);
    if (url.pathname === '/panel') {
      const nonce = createNonce();
      const html = panelHtml({
        cspSource: origin,
        nonce,
        scriptUri: `${origin}/webview.js`,
        styleUri: `${origin}/panel.css`,
        title: 'Map',
      }).replace(
        '</head>',
        `<style nonce="${nonce}">:root { --vscode-charts-blue: #3794ff; --vscode-editor-background: #1f1f1f; --vscode-foreground: #ccc; }</style></head>`,
      );
      res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    } else if (url.pathname === '/webview.js')
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(path.join(bundleDir, 'webview.js')));
    else if (url.pathname === '/panel.css')
      res.writeHead(200, { 'content-type': 'text/css' }).end(fs.readFileSync(path.join(repoRoot, 'media/panel.css')));
    else if (url.pathname.startsWith('/data/')) res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fs.readFileSync(photo));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  if (bundleDir) fs.rmSync(bundleDir, { recursive: true, force: true });
});

test('20,000 points pan and zoom smoothly in headless Chromium, and a hovered point shows its thumbnail', async () => {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.addInitScript(`
    window.__name = (f) => f;
    window.__posted = [];
    window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => undefined, setState: () => undefined });
  `);
  await page.goto(`${origin}/panel`);
  const map = bigMap();
  const state = sampleState({ state: 'finished', imageBaseUri: `${origin}/data`, evaluation: syntheticEvaluation(map.classes, 2) });
  await page.evaluate((m) => window.postMessage(m, '*'), { type: 'state', state });
  await page.evaluate((m) => window.postMessage(m, '*'), { type: 'featureMap', map, marks: {} });
  const canvas = page.locator('#map-canvas');
  await page.locator('#map-canvas[data-frames]').waitFor({ timeout: 20_000 });
  const box = (await canvas.boundingBox())!;
  // 120 frames of interaction, each a wheel zoom or a drag step, each waiting for the frame that draws it.
  const result = await page.evaluate(async (frames) => {
    const c = document.getElementById('map-canvas')!;
    const r = c.getBoundingClientRect();
    const cx = r.left + r.width / 2;
    const cy = r.top + r.height / 2;
    const costs: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < frames; i++) {
      if (i % 2 === 0)
        c.dispatchEvent(
          new WheelEvent('wheel', { deltaY: i % 40 < 20 ? -60 : 60, clientX: cx, clientY: cy, bubbles: true, cancelable: true }),
        );
      else {
        c.dispatchEvent(new MouseEvent('mousedown', { clientX: cx, clientY: cy, buttons: 1, bubbles: true }));
        c.dispatchEvent(new MouseEvent('mousemove', { clientX: cx + 8, clientY: cy + 5, buttons: 1, bubbles: true }));
        c.dispatchEvent(new MouseEvent('mouseup', { clientX: cx + 8, clientY: cy + 5, bubbles: true }));
      }
      await new Promise((resolve) => requestAnimationFrame(() => resolve(undefined)));
      costs.push(Number(c.dataset.frameMs));
    }
    const seconds = (performance.now() - t0) / 1000;
    costs.sort((a, b) => a - b);
    return { fps: frames / seconds, medianFrameMs: costs[Math.floor(costs.length / 2)]!, drawn: Number(c.dataset.frames) };
  }, 120);
  console.log(
    `# feature map, ${POINTS} points, headless Chromium (software rendering): ${result.fps.toFixed(1)} frames/s while panning and zooming; median draw ${result.medianFrameMs} ms`,
  );
  fs.mkdirSync(path.join(repoRoot, 'test-results'), { recursive: true });
  fs.writeFileSync(path.join(repoRoot, 'test-results', 'feature-map-fps.json'), JSON.stringify({ points: POINTS, ...result }, null, 2));
  assert.ok(result.drawn >= 120, `every interaction drew a frame (${result.drawn})`);
  assert.ok(result.fps >= 20, `${result.fps.toFixed(1)} frames per second`);
  // Back to the whole map; then hover an isolated point: its thumbnail shows.
  await canvas.dblclick();
  await page.waitForTimeout(100);
  await page.mouse.move(box.x + 4, box.y + 4);
  await page.screenshot({ path: path.join(repoRoot, 'test-results', 'feature-map-20000.png') });
  assert.deepEqual(errors, []);
  await page.close();
});
