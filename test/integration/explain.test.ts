// Grad-CAM heatmaps of a run trained by the real CLI on two classes of real flower photos: the
// heatmap points at the photo when it is pasted into one quadrant of a grey canvas, it mirrors
// with the image, and `explain` prints, refuses and draws what it says. The composites are
// explained in this process (40 CLI start-ups would dominate the test); the CLI's own behaviour is
// checked through the built bundle.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { initBackend } from '../../src/training/backend/backend';
import { openRunClassifier } from '../../src/training/models/predict';
import { explainImage, gradCamModelOf, type GradCamModel, type Heatmap } from '../../src/training/explain/gradCam';
import type { Tf } from '../../src/training/util/tf';
import { tempDir } from '../support/tempDirs';
import { bundle, onlyRun, repo } from '../support/trainingBundle';

// The shared datasets sit beside the repository (as on CI).
const FLOWERS = path.resolve(repo, '../shared/datasets/flowers');
const CLASSES = ['daisy', 'sunflower'];
const PER_CLASS = 60;

let work: string;
let runDir: string;
let tf: Tf;
let model: GradCamModel;

function node(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 120_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** A seeded linear congruential generator in [0, 1). */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

function photosOf(c: string): string[] {
  return fs
    .readdirSync(path.join(work, 'flowers', c))
    .sort()
    .map((f) => path.join(work, 'flowers', c, f));
}

/** `photo`, upright and cut to a square, pasted into quadrant `q` (0 top left, 1 top right, 2 bottom left, 3 bottom right) of a grey 448×448 canvas. */
async function composite(photo: string, q: number, out: string): Promise<string> {
  const tile = await sharp(photo).rotate().resize(224, 224, { fit: 'cover' }).toBuffer();
  await sharp({ create: { width: 448, height: 448, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .composite([{ input: tile, left: (q % 2) * 224, top: Math.floor(q / 2) * 224 }])
    .png()
    .toFile(out);
  return out;
}

/** The quadrant (numbered as in `composite`) of the heatmap's maximum. */
function quadrantOfMax(h: Heatmap): number {
  let best = 0;
  for (let i = 1; i < h.values.length; i++) if (h.values[i] > h.values[best]) best = i;
  const x = best % h.width;
  const y = Math.floor(best / h.width);
  return (x >= h.width / 2 ? 1 : 0) + (y >= h.height / 2 ? 2 : 0);
}

/** Pearson correlation of two equally long value lists. */
function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < n; i++) {
    sa += a[i];
    sb += b[i];
  }
  const ma = sa / n;
  const mb = sb / n;
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < n; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

/** `h` flipped left to right. */
function mirrored(h: Heatmap): Float32Array {
  const out = new Float32Array(h.values.length);
  for (let y = 0; y < h.height; y++) for (let x = 0; x < h.width; x++) out[y * h.width + x] = h.values[y * h.width + (h.width - 1 - x)];
  return out;
}

before(async () => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  work = tempDir('it-explain-');
  for (const c of CLASSES) {
    fs.mkdirSync(path.join(work, 'flowers', c), { recursive: true });
    for (const f of fs.readdirSync(path.join(FLOWERS, c)).sort().slice(0, PER_CLASS)) {
      fs.copyFileSync(path.join(FLOWERS, c, f), path.join(work, 'flowers', c, f));
    }
  }
  const args = ['train', path.join(work, 'flowers'), '--out', path.join(work, 'runs'), '--cache', path.join(work, 'cache')];
  // A head trained on each photo and its mirror image (--recipe flip), so that what the mirror test
  // below measures is the base's own asymmetry. Under `auto` this subset used to get 8 views (88.5%
  // vs 87.5% for plain on the search's sample); now that takes more than noise (3 images better, 2
  // worse is not), it gets plain, whose head alone put one photo's mirrored heatmap at 0.26.
  const out = await node([bundle, ...args, '--epochs', '20', '--recipe', 'flip', '--quiet']);
  assert.equal(out.code, 0, out.stderr);
  runDir = onlyRun(path.join(work, 'runs'));
  ({ tf } = await initBackend({ preference: 'wasm', wasmThreads: 1 }));
  model = gradCamModelOf(tf, await openRunClassifier(tf, runDir));
});

test('the heatmap of a photo pasted into one quadrant of a grey canvas peaks in that quadrant for at least 90% of 40 composites', async (t) => {
  const rnd = random(13);
  let hits = 0;
  const misses: string[] = [];
  // Each quadrant 10 times, each class 5 times in each; the photos drawn at random.
  for (let i = 0; i < 40; i++) {
    const c = CLASSES[i % 2];
    const q = Math.floor(i / 2) % 4;
    const photos = photosOf(c);
    const photo = photos[Math.floor(rnd() * photos.length)];
    const e = await explainImage(tf, model, await composite(photo, q, path.join(work, `composite-${i}.png`)), c);
    const got = quadrantOfMax(e.heatmap);
    if (got === q) hits++;
    else misses.push(`${path.basename(photo)} in quadrant ${q}, peak in ${got}`);
  }
  t.diagnostic(`heatmap maximum in the photo's quadrant: ${hits}/40 (${((100 * hits) / 40).toFixed(1)}%)`);
  assert.ok(hits >= 36, `only ${hits}/40 composites peak in the photo's quadrant; misses: ${misses.join('; ')}`);
});

/** `values` (rows of `width`) moved `dx` columns to the right, compared with `ref` where both are defined. */
function shiftedCorrelation(ref: Heatmap, values: Float32Array, dx: number): number {
  const a: number[] = [];
  const b: number[] = [];
  for (let y = 0; y < ref.height; y++) {
    for (let x = Math.max(0, dx); x < Math.min(ref.width, ref.width + dx); x++) {
      a.push(ref.values[y * ref.width + x]);
      b.push(values[y * ref.width + x - dx]);
    }
  }
  return correlation(a, b);
}

// MobileNetV2 is not mirror-symmetric (its filters are learned, and its strided convolutions pad
// at the bottom and right only), so the heatmap of a mirrored photo is not the exact mirror of the
// photo's: over 20 flower photos the two correlate at 0.42–0.98, 0.79 on average, and differ by
// 0.04–0.21 per value on average. That spread is the network's, not a misplaced map: moved left or
// right by an eighth of the image, the mirrored heatmap agrees less (0.54 to 0.70 on average). So
// the test holds the average agreement and checks that it is best where the mirror puts it.
test('the heatmap of a horizontally mirrored photo is the mirror of the heatmap, within what the network itself allows', async () => {
  const correlations: number[] = [];
  const shifted: number[] = [];
  const diffs: number[] = [];
  for (const c of CLASSES) {
    for (const photo of photosOf(c).slice(10, 20)) {
      const flipped = path.join(work, `mirror-${path.basename(photo)}.png`);
      await sharp(photo).rotate().flop().png().toFile(flipped);
      const a = (await explainImage(tf, model, photo, c)).heatmap;
      const b = (await explainImage(tf, model, flipped, c)).heatmap;
      assert.deepEqual([b.width, b.height], [a.width, a.height]);
      const back = mirrored(b);
      const r = correlation(a.values, back);
      assert.ok(r >= 0.3, `${path.basename(photo)}: the mirrored heatmap correlates at only ${r.toFixed(3)}`);
      correlations.push(r);
      const eighth = Math.round(a.width / 8);
      shifted.push((shiftedCorrelation(a, back, eighth) + shiftedCorrelation(a, back, -eighth)) / 2);
      diffs.push(a.values.reduce((s, v, k) => s + Math.abs(v - back[k]), 0) / back.length);
    }
  }
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(mean(correlations) >= 0.7, `mirrored heatmaps correlate at ${mean(correlations).toFixed(3)} on average`);
  assert.ok(mean(diffs) <= 0.2, `mirrored heatmaps differ by ${mean(diffs).toFixed(3)} per value on average`);
  assert.ok(
    mean(correlations) > mean(shifted) + 0.05,
    `the mirrored heatmap agrees as well when moved by an eighth of the image (${mean(shifted).toFixed(3)} vs ${mean(correlations).toFixed(3)})`,
  );
});

test('explain --json prints the prediction and a heatmap in [0, 1] over the whole image, 0 where the centre crop cut it away', async () => {
  // A wide canvas: the decoder keeps its middle third (cover, centre crop); the photo sits in it.
  const wide = path.join(work, 'wide.png');
  const tile = await sharp(photosOf('sunflower')[0]).rotate().resize(200, 200, { fit: 'cover' }).toBuffer();
  await sharp({ create: { width: 600, height: 200, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .composite([{ input: tile, left: 200, top: 0 }])
    .png()
    .toFile(wide);
  const out = await node([bundle, 'explain', runDir, wide, '--json']);
  assert.equal(out.code, 0, out.stderr);
  const lines = out.stdout.trim().split('\n');
  assert.equal(lines.length, 1);
  const e = JSON.parse(lines[0]) as {
    path: string;
    label: string;
    confidence: number;
    class: string;
    heatmap: { width: number; height: number; values: number[] };
  };
  assert.deepEqual(Object.keys(e), ['path', 'label', 'confidence', 'class', 'heatmap']);
  assert.deepEqual(Object.keys(e.heatmap), ['width', 'height', 'values']);
  assert.equal(e.path, wide);
  assert.ok(CLASSES.includes(e.label));
  assert.equal(e.class, e.label);
  assert.ok(e.confidence >= 0.5 && e.confidence <= 1);
  // 600×200 shown at most 256 values wide, same aspect ratio.
  assert.deepEqual([e.heatmap.width, e.heatmap.height], [256, 85]);
  assert.equal(e.heatmap.values.length, 256 * 85);
  assert.ok(e.heatmap.values.every((v) => v >= 0 && v <= 1));
  // Sampled between the cells' centres, the maximum comes close to the map's 1.
  assert.ok(Math.max(...e.heatmap.values) >= 0.9);
  for (let y = 0; y < e.heatmap.height; y++) {
    for (let x = 0; x < e.heatmap.width; x++) {
      const v = e.heatmap.values[y * e.heatmap.width + x];
      if (x < 84 || x > 171) assert.equal(v, 0, `value at (${x}, ${y}), outside what the model saw, is ${v}`);
    }
  }
});

test('explain --class explains a class that is not the predicted one, and keeps the prediction', async () => {
  const image = await composite(photosOf('daisy')[1], 0, path.join(work, 'class.png'));
  const predicted = await node([bundle, 'explain', runDir, image, '--json']);
  assert.equal(predicted.code, 0, predicted.stderr);
  const p = JSON.parse(predicted.stdout) as { label: string; class: string; heatmap: { values: number[] } };
  const other = CLASSES.find((c) => c !== p.label)!;
  const out = await node([bundle, 'explain', runDir, image, '--json', '--class', other]);
  assert.equal(out.code, 0, out.stderr);
  const e = JSON.parse(out.stdout) as { label: string; class: string; heatmap: { values: number[] } };
  assert.equal(e.label, p.label);
  assert.equal(e.class, other);
  assert.notDeepEqual(e.heatmap.values, p.heatmap.values);
});

test('explain with a class the model does not have fails in one line that names its classes', async () => {
  const image = await composite(photosOf('daisy')[2], 1, path.join(work, 'unknown.png'));
  const out = await node([bundle, 'explain', runDir, image, '--class', 'rose']);
  assert.equal(out.code, 1);
  assert.equal(out.stdout, '');
  const lines = out.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.deepEqual(lines, [`Invalid options: Unknown class "rose": the model's classes are daisy, sunflower`]);
});

test('explain --out writes the image, at its own size, with the heatmap blended over it', async () => {
  const image = await composite(photosOf('sunflower')[3], 3, path.join(work, 'overlay-in.png'));
  const file = path.join(work, 'heatmap.png');
  const out = await node([bundle, 'explain', runDir, image, '--out', file]);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /heatmap\.png/);
  const meta = await sharp(file).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 448, 448]);
  // The grey quadrant far from the photo stays grey; the photo's quadrant is coloured.
  const { data } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const pixel = (x: number, y: number) => Array.from(data.subarray((y * 448 + x) * 3, (y * 448 + x) * 3 + 3));
  const original = await sharp(image).removeAlpha().raw().toBuffer();
  const originalPixel = (x: number, y: number) => Array.from(original.subarray((y * 448 + x) * 3, (y * 448 + x) * 3 + 3));
  const changed = (x: number, y: number) => pixel(x, y).some((v, k) => Math.abs(v - originalPixel(x, y)[k]) > 8);
  assert.ok(changed(336, 336), 'the photo is not coloured by the heatmap');
});
