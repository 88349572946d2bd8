// The Image Datasets tree: the leaf sample's classes and counts, a warning on a class holding a broken
// image, new datasets found after a file change, and a 20,000-file workspace listed without blocking.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DatasetNode } from '../../src/extension/datasetTree';
import { copyLeaves, fixtureFolder, imageTrainer, waitFor } from './hostFixtures';

function iconId(item: vscode.TreeItem): string | undefined {
  return item.iconPath instanceof vscode.ThemeIcon ? item.iconPath.id : undefined;
}

describe('Image Datasets tree', () => {
  const fixtures = fixtureFolder('tree');
  after(() => fixtures.cleanup());

  it('lists the leaf classes with their image counts and warns on the class holding a broken image', async () => {
    const api = await imageTrainer();
    const root = copyLeaves(path.join(fixtures.dir, 'leaves'), 30);
    fs.writeFileSync(path.join(root, 'scab', 'broken.jpg'), 'not a jpeg: a text file with an image name');
    await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
    const datasetNode = api.datasets.getChildren().find((n) => n.kind === 'dataset' && n.dataset.root === root);
    assert.ok(datasetNode, `dataset ${root} in the tree: ${api.datasets.datasets.map((d) => d.root).join(', ')}`);
    await api.datasets.healthOf(root);

    const classes = api.datasets.getChildren(datasetNode).filter((n): n is DatasetNode & { kind: 'class' } => n.kind === 'class');
    const items = classes.map((n) => api.datasets.getTreeItem(n));
    assert.deepEqual(
      items.map((i) => [i.label, i.description]),
      [
        ['black_rot', '30 images'],
        ['cedar_rust', '30 images'],
        ['healthy', '30 images'],
        ['scab', '30 images · 1 bad file'],
      ],
    );
    assert.deepEqual(items.map(iconId), ['folder', 'folder', 'folder', 'warning']);
    const tooltip = items[3].tooltip as vscode.MarkdownString;
    // The same words the engine's scan gives this file (one set of dataset rules).
    assert.match(tooltip.value, /broken\.jpg: a text file, not a JPEG, PNG, WebP, GIF or TIFF image/);

    const datasetItem = api.datasets.getTreeItem(datasetNode);
    assert.equal(datasetItem.label, 'leaves');
    assert.equal(datasetItem.contextValue, 'dataset');
    assert.equal(iconId(datasetItem), 'warning');
    assert.match(String(datasetItem.description), /^4 classes · 120 images · 1 warning$/);
  });

  it('finds a dataset created after activation through the file watcher, without a manual refresh', async () => {
    const api = await imageTrainer();
    const root = path.join(fixtures.dir, 'later');
    const found = new Promise<void>((resolve) => {
      const sub = api.datasets.onDidDiscover((datasets) => {
        if (datasets.some((d) => d.root === root)) {
          sub.dispose();
          resolve();
        }
      });
    });
    copyLeaves(root, 3, ['healthy', 'scab']);
    await Promise.race([found, new Promise((_, reject) => setTimeout(() => reject(new Error('not discovered within 15 s')), 15_000))]);
  });

  it('lists datasets in a workspace of 20,000 files without blocking the extension host', async () => {
    const api = await imageTrainer();
    const big = path.join(fixtures.dir, 'big');
    // 3 datasets x 4 classes x 1,000 images (empty files named .jpg) + 8,000 other files.
    for (let d = 0; d < 3; d++) {
      for (let c = 0; c < 4; c++) {
        const dir = path.join(big, `project${d}`, `set${d}`, `class${c}`);
        fs.mkdirSync(dir, { recursive: true });
        for (let i = 0; i < 1000; i++) fs.writeFileSync(path.join(dir, `img${i}.jpg`), '');
      }
    }
    for (let m = 0; m < 160; m++) {
      const dir = path.join(big, 'src', `module${m}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < 50; i++) fs.writeFileSync(path.join(dir, `file${i}.ts`), '');
    }
    let longestStallMs = 0;
    let last = Date.now();
    const ticker = setInterval(() => {
      const now = Date.now();
      longestStallMs = Math.max(longestStallMs, now - last);
      last = now;
    }, 5);
    const t0 = Date.now();
    await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
    const elapsed = Date.now() - t0;
    clearInterval(ticker);
    const sets = api.datasets.datasets.filter((d) => d.root.startsWith(big));
    console.log(
      `[host] 20,000-file workspace: ${sets.length} datasets listed in ${api.datasets.lastDiscoveryMs} ms of discovery (${elapsed} ms with runs), longest extension-host stall ${longestStallMs} ms`,
    );
    assert.deepEqual(
      sets.map((d) => [d.name, d.imageCount]),
      [
        ['set0', 4000],
        ['set1', 4000],
        ['set2', 4000],
      ],
    );
    assert.ok(longestStallMs < 500, `the extension host stalled ${longestStallMs} ms`);
    // Health checks of 4,000 empty files run in the background; wait so cleanup does not race them.
    for (const d of sets) await waitFor(`health of ${d.name}`, () => api.datasets.healthOf(d.root), 60_000);
    fs.rmSync(big, { recursive: true, force: true });
    await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
  });
});
