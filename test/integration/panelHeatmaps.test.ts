// The host side of the gallery's heatmaps and of Classify Image's overlay, through the real built
// bundle on a run trained by the real CLI: the paths the webview names are checked by the real
// ImagePathGuard, a gallery page is explained in one process, an unreadable image fails alone, the
// blended PNG is drawn outside the dataset, and the dataset is left as it was.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { MAX_PANEL_HEATMAP_SIDE } from '../../src/shared/protocol/panel';
import { ImagePathGuard } from '../../src/extension/imagePathGuard';
import { bundleRunner, checkImagesToExplain, heatmapOverlayPath, HeatmapService } from '../../src/extension/panelHeatmaps';
import { tempDir } from '../support/tempDirs';
import { bundle, runBundle, trainSampleCopy, treeDigest } from '../support/trainingBundle';

let work: string;
let data: string;
let runDir: string;
let images: string[];
const logs: string[] = [];
let service: HeatmapService;

before(async () => {
  work = tempDir('it-heatmaps-');
  ({ runDir, data } = await trainSampleCopy(work, 30, { epochs: 3 }));
  images = fs
    .readdirSync(data)
    .sort()
    .flatMap((c) =>
      fs
        .readdirSync(path.join(data, c))
        .sort()
        .map((f) => `${c}/${f}`),
    );
  // Known to the run but not an image any more (replaced after training): it must fail alone.
  fs.writeFileSync(path.join(data, 'scab', 'zz-broken.jpg'), 'not a jpeg');
  images.push('scab/zz-broken.jpg');
  service = new HeatmapService(bundleRunner(bundle, path.join(work, 'native')), (line) => logs.push(line));
});

function guard(known: readonly string[]): ImagePathGuard {
  return new ImagePathGuard(data, known, () => [data]);
}

test('the paths of an explainImages command go through the image guard: unknown, escaping and absolute ones are refused', async () => {
  const g = guard(images);
  const { images: ok, refused } = await checkImagesToExplain(g, [
    'scab/zz-broken.jpg',
    images[0]!,
    images[0]!,
    '../leaves/healthy/x.jpg',
    path.join(data, images[1]!),
    'healthy/not-in-this-run.jpg',
  ]);
  assert.deepEqual(
    ok.map((i) => i.relativePath),
    ['scab/zz-broken.jpg', images[0]],
    'the known ones, once each',
  );
  assert.equal(ok[1]!.absolutePath, fs.realpathSync(path.join(data, images[0]!)));
  assert.deepEqual(refused, [
    { path: '../leaves/healthy/x.jpg', reason: 'not normalised (empty, "." or ".." segment)' },
    { path: path.join(data, images[1]!), reason: 'absolute path' },
    { path: 'healthy/not-in-this-run.jpg', reason: 'not an image of this run' },
  ]);
});

test('a gallery page of 60 images is explained in one process: a small heatmap per image over the whole image, and the unreadable one fails alone', async () => {
  const before = treeDigest(data);
  const page = [...images.slice(0, 59), 'scab/zz-broken.jpg'];
  const { images: checked } = await checkImagesToExplain(guard(images), page);
  const started = Date.now();
  const result = await service.explain(runDir, checked);
  const ms = Date.now() - started;
  assert.equal(result.type, 'heatmaps');
  assert.deepEqual(
    result.heatmaps.map((h) => h.path),
    page.slice(0, 59),
  );
  assert.equal(result.failed.length, 1);
  assert.equal(result.failed[0]!.path, 'scab/zz-broken.jpg');
  assert.ok(result.failed[0]!.reason.length > 0);
  for (const h of result.heatmaps) {
    assert.ok(Math.max(h.width, h.height) === MAX_PANEL_HEATMAP_SIDE, `${h.path}: ${h.width}×${h.height}`);
    assert.equal(h.values.length, h.width * h.height);
    assert.ok(h.values.every((v) => v >= 0 && v <= 1));
    assert.ok(Math.max(...h.values) > 0.5, `${h.path}: the map has a hot spot`);
  }
  // The sample's images are square 256 px photos: a square heatmap.
  const meta = await sharp(path.join(data, page[0]!)).metadata();
  assert.equal(result.heatmaps[0]!.width / result.heatmaps[0]!.height, meta.width! / meta.height!);
  assert.equal(treeDigest(data), before, 'the dataset is not written');
  assert.match(logs.at(-1) ?? '', /^\[heatmap\] 59 of 60 heatmaps with leaves-\S+ in \d+ ms \(1 failed: /);
  console.log(`[figure] ${page.length} heatmaps in one explain process: ${ms} ms`);
});

test('one process per image would cost the start-up each time: the batch is measured against it', async () => {
  const { images: three } = await checkImagesToExplain(guard(images), images.slice(0, 3));
  let singles = 0;
  for (const image of three) {
    const t = Date.now();
    const r = await service.explain(runDir, [image]);
    singles += Date.now() - t;
    assert.equal(r.heatmaps.length, 1);
  }
  const t = Date.now();
  const batch = await service.explain(runDir, three);
  const batchMs = Date.now() - t;
  assert.equal(batch.heatmaps.length, 3);
  // Same model, same images: the same maps.
  console.log(`[figure] 3 images: ${singles} ms as 3 processes, ${batchMs} ms as one batch`);
  assert.ok(batchMs < singles, `one batch (${batchMs} ms) is faster than a process per image (${singles} ms)`);
});

test('a run folder that is not a run gives every image a failure that says so, and nothing is thrown', async () => {
  const { images: two } = await checkImagesToExplain(guard(images), images.slice(0, 2));
  const result = await service.explain(path.join(work, 'not-a-run'), two);
  assert.deepEqual(result.heatmaps, []);
  assert.equal(result.failed.length, 2);
  for (const f of result.failed) assert.match(f.reason, /^Run folder problem: /);
});

test('the opened image with its heatmap is a PNG drawn in a temporary folder, at the image’s size, never in the dataset', async () => {
  const before = treeDigest(data);
  const image = path.join(data, images[0]!);
  const file = await service.drawOverlay(runDir, image);
  assert.ok(file);
  assert.equal(file, heatmapOverlayPath(runDir, image));
  assert.ok(!path.resolve(file).startsWith(path.resolve(data) + path.sep), file);
  const [overlay, original] = await Promise.all([sharp(file).metadata(), sharp(image).metadata()]);
  assert.deepEqual([overlay.format, overlay.width, overlay.height], ['png', original.width, original.height]);
  assert.equal(treeDigest(data), before);
  // An image that cannot be read draws nothing, says why in the log, and throws nothing.
  assert.equal(await service.drawOverlay(runDir, path.join(data, 'scab', 'zz-broken.jpg')), undefined);
  assert.match(logs.at(-1) ?? '', /^\[heatmap\] explain --out .*zz-broken\.jpg with /);
});

test('explain through the CLI: several images print one line each, --out refuses more than one image', async () => {
  const files = [images[0]!, 'scab/zz-broken.jpg'].map((p) => path.join(data, p));
  const out = await runBundle(['explain', runDir, ...files, '--json', '--max-side', '16']);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { path: string; error?: string; heatmap?: { width: number; height: number } });
  assert.deepEqual(
    lines.map((l) => l.path),
    files,
  );
  assert.deepEqual([lines[0]!.heatmap?.width, lines[0]!.heatmap?.height], [16, 16]);
  assert.equal(typeof lines[1]!.error, 'string');
  const refused = await runBundle(['explain', runDir, ...files, '--out', path.join(work, 'x.png')]);
  assert.equal(refused.code, 1);
  assert.equal(refused.stderr.trim(), '--out draws one image; 2 were given (leave out --out, or explain them one at a time)');
  assert.equal(fs.existsSync(path.join(work, 'x.png')), false);
  const onlyBroken = await runBundle(['explain', runDir, files[1]!]);
  assert.equal(onlyBroken.code, 1, 'every image failed: a failing exit');
});
