// Feature-extraction speed of the base model on WebAssembly, route by route (not a test):
//   npx tsx scripts/measureFeatures.ts [--model mobilenet_v2_0.35] [--model-dir DIR] [--images 128] [--batch 32] [--rounds 3]
// Each configuration runs in its own process (the WebAssembly thread count is fixed once per
// process), one after the other, on the fixture photos repeated to fill the batches. The machine
// may be shared: compare the ratios within one run, not absolute figures across runs.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { initBackend } from '../src/training/backend/backend';
import { loadBaseModel, type FeatureRoute } from '../src/training/models/baseModel';
import { DEFAULT_MODEL_ID, findModel } from '../src/training/models/modelRegistry';

interface Result {
  label: string;
  route: FeatureRoute;
  threads: number;
  imagesPerSec: number;
  backend: string;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const photosDir = path.resolve(__dirname, '../test/fixtures/photos');
const PHOTOS = ['chelsea.jpg', 'coffee.jpg', 'motorcycle_left.jpg', 'motorcycle_right.jpg'];

async function measure(route: FeatureRoute, threads: number, label: string): Promise<Result> {
  const entry = findModel(arg('model', DEFAULT_MODEL_ID));
  if (!entry) throw new Error(`unknown model ${arg('model', DEFAULT_MODEL_ID)}`);
  const modelDir = process.argv.includes('--model-dir') ? arg('model-dir', '') : undefined;
  const images = Number(arg('images', '128'));
  const batchSize = Number(arg('batch', '32'));
  const { tf, info } = await initBackend({ preference: 'wasm', wasmThreads: threads });
  const base = await loadBaseModel(tf, entry, { route, batchSize, modelDir });
  if (base.route !== route) throw new Error(`asked for the ${route} route, got ${base.route}: ${base.routeNote}`);
  const size = base.inputSize;
  const one = size * size * 3;
  const pixels = new Uint8Array(batchSize * one);
  for (let i = 0; i < batchSize; i++) {
    const raw = await sharp(path.join(photosDir, PHOTOS[i % PHOTOS.length]))
      .resize(size, size, { fit: 'cover' })
      .removeAlpha()
      .raw()
      .toBuffer();
    pixels.set(raw, i * one);
  }
  await base.extract(pixels, batchSize); // warm-up: kernels, weights, memory growth
  const start = process.hrtime.bigint();
  let done = 0;
  while (done < images) {
    await base.extract(pixels, batchSize);
    done += batchSize;
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  base.dispose();
  return { label, route, threads: info.threads ?? 1, imagesPerSec: done / seconds, backend: info.summary };
}

async function main(): Promise<void> {
  const child = process.argv.indexOf('--child');
  if (child >= 0) {
    const [route, threads, label] = process.argv.slice(child + 1, child + 4);
    process.stdout.write(JSON.stringify(await measure(route as FeatureRoute, Number(threads), label)));
    return;
  }
  const threads = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const configs: [FeatureRoute, number, string][] = [
    ['layers', 1, 'naive: layers model as loaded, 1 thread'],
    ['fused', 1, 'fused graph, 1 thread'],
    ['fused', threads, `fused graph, threaded (${threads} threads)`],
  ];
  const passThrough = process.argv.slice(2);
  const rounds = Number(arg('rounds', '3'));
  const runs: Result[][] = configs.map(() => []);
  const loadBefore = os.loadavg()[0];
  // Rounds interleave the configurations so that a burst of load elsewhere hits all of them.
  for (let round = 0; round < rounds; round++) {
    configs.forEach(([route, n, label], i) => {
      const out = execFileSync(process.execPath, ['--import', 'tsx', __filename, ...passThrough, '--child', route, String(n), label], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      runs[i].push(JSON.parse(out.slice(out.lastIndexOf('{"label"'))) as Result);
    });
  }
  const entry = findModel(arg('model', DEFAULT_MODEL_ID))!;
  const stats = runs.map((rs) => {
    const v = rs.map((r) => r.imagesPerSec).sort((a, b) => a - b);
    return { ...rs[0], best: v[v.length - 1], median: v[Math.floor(v.length / 2)] };
  });
  const naive = stats[0];
  console.log(
    `${entry.name}, batch ${arg('batch', '32')}, ${arg('images', '128')} images x ${rounds} rounds per configuration, ` +
      `${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), load average ${loadBefore.toFixed(1)} -> ${os.loadavg()[0].toFixed(1)}`,
  );
  console.log(`${'configuration'.padEnd(44)} ${'median'.padStart(7)} ${'best'.padStart(7)}  images/s  (ratio to naive, by median)`);
  for (const r of stats) {
    const gflops = entry.flops ? `, ${((2 * entry.flops * r.median) / 1e9).toFixed(1)} GFLOP/s` : '';
    console.log(
      `${r.label.padEnd(44)} ${r.median.toFixed(1).padStart(7)} ${r.best.toFixed(1).padStart(7)}  (${(r.median / naive.median).toFixed(2)}x${gflops}) [threads ${r.threads}]`,
    );
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
