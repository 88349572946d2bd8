// The heatmap service's queue: one explain process at a time, and a flood of requests from the
// (untrusted) webview refused instead of queued. The bundle is a real child process: a small script
// that prints what `explain --json` prints, after a delay, so the requests overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { bundleRunner, HeatmapService, MAX_QUEUED_BATCHES } from '../../../src/extension/panelHeatmaps';
import { tempDir } from '../../support/tempDirs';

function fakeBundle(): { file: string; running: string } {
  const dir = tempDir('heatmap-queue-');
  const running = path.join(dir, 'running');
  const file = path.join(dir, 'bundle.js');
  // Records how many copies run at once, then prints one 1×1 heatmap per image argument.
  fs.writeFileSync(
    file,
    `const fs = require('fs');
const images = process.argv.slice(3).filter((a, i, all) => !a.startsWith('--') && !(all[i - 1] || '').startsWith('--'));
fs.appendFileSync(${JSON.stringify(running)}, '+');
setTimeout(() => {
  fs.appendFileSync(${JSON.stringify(running)}, '-');
  for (const p of images) console.log(JSON.stringify({ path: p, label: 'a', confidence: 1, class: 'a', heatmap: { width: 1, height: 1, values: [1] } }));
}, 300);`,
  );
  return { file, running };
}

test('batches run one at a time, and requests beyond the queue are refused at once with a reason', async () => {
  const { file, running } = fakeBundle();
  const logs: string[] = [];
  const service = new HeatmapService(bundleRunner(file, path.dirname(file)), (l) => logs.push(l));
  const image = (n: number) => ({ relativePath: `c/${n}.jpg`, absolutePath: path.resolve(`/data/c/${n}.jpg`) });
  const requests = Array.from({ length: MAX_QUEUED_BATCHES + 2 }, (_, i) => service.explain('/runs/r', [image(i)]));
  const results = await Promise.all(requests);
  for (const r of results.slice(0, MAX_QUEUED_BATCHES)) {
    assert.equal(r.heatmaps.length, 1);
    assert.deepEqual(r.failed, []);
  }
  for (const r of results.slice(MAX_QUEUED_BATCHES)) {
    assert.deepEqual(r.heatmaps, []);
    assert.match(r.failed[0]!.reason, /^too many heatmap requests at once/);
  }
  // Never two processes at once: the log of starts and ends alternates.
  assert.equal(fs.readFileSync(running, 'utf8'), '+-'.repeat(MAX_QUEUED_BATCHES));
  assert.equal(logs.filter((l) => l.startsWith('[heatmap] refused')).length, 2);
  // The queue drains: a later request runs again.
  assert.equal((await service.explain('/runs/r', [image(9)])).heatmaps.length, 1);
});
