// Times one fine-tuning epoch on the WebAssembly backend with the composed gradient kernels
// (wasmGradients.ts, `fast`) against the pure-JS cpu reference kernels (`reference`):
// 64 real leaf photos, activations cached at block_16_expand, batch 8.
// Run: npx tsx scripts/fineTuneEpochBench.ts [images=64] [batch=8]
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import sharp from 'sharp';
import { DEFAULT_TRAIN_OPTIONS } from '../src/shared/types';
import { fineTune, splitAtLayer } from '../src/training/fit/fineTune';
import { buildHead } from '../src/training/fit/head';
import { registerWasmGradients, wasmGradientStats, type WasmGradientMode } from '../src/training/backend/wasmGradients';

const repoRoot = path.resolve(__dirname, '..');

async function main(): Promise<void> {
  const images = Number(process.argv[2] ?? 64);
  const batchSize = Number(process.argv[3] ?? 8);
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
  const json = JSON.parse(await readFile(path.join(modelDir, 'model.json'), 'utf8'));
  const w = await readFile(path.join(modelDir, 'weights.bin'));
  const base = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightsManifest[0].weights,
      weightData: w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength),
    }),
  );
  const cut = splitAtLayer(tf, base, 'block_16_expand');

  const root = path.join(repoRoot, 'samples/leaves');
  const classes = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const files: { file: string; label: number }[] = [];
  for (const [label, c] of classes.entries())
    for (const f of (await readdir(path.join(root, c))).sort()) files.push({ file: path.join(root, c, f), label });
  const picked = Array.from({ length: images }, (_, i) => files[Math.floor((i * files.length) / images)]);

  const t0 = performance.now();
  const per = 7 * 7 * 56;
  const acts = new Float32Array(images * per);
  for (const [i, { file }] of picked.entries()) {
    const { data } = await sharp(file)
      .rotate()
      .removeAlpha()
      .resize(224, 224, { fit: 'cover' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    const out = tf.tidy(
      () =>
        cut.bottom.predict(
          tf.tensor4d(
            Float32Array.from(data, (v) => v / 127.5 - 1),
            [1, 224, 224, 3],
          ),
        ) as tf.Tensor,
    );
    acts.set(out.dataSync(), i * per);
    out.dispose();
  }
  const activationMs = performance.now() - t0;
  const y = Int32Array.from(picked.map((p) => p.label));
  const train = { x: acts, shape: [images, 7, 7, 56], y };
  const val = { x: acts.subarray(0, 8 * per), shape: [8, 7, 7, 56], y: y.subarray(0, 8) };
  const o = { ...DEFAULT_TRAIN_OPTIONS, batchSize, fineTuneEpochs: 1, patience: 0, lrPatience: 0 };

  const results: Record<string, number> = {};
  const cpuMs: Record<string, number> = {};
  for (const mode of ['fast', 'reference', 'fast'] as WasmGradientMode[]) {
    registerWasmGradients(tf, mode);
    const head = buildHead(tf, 1280, classes.length, o);
    const before = { ...wasmGradientStats };
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    await fineTune(tf, cut, head, train, val, classes.length, o, {}, 0);
    results[mode] = performance.now() - t;
    const cpu = process.cpuUsage(cpu0);
    cpuMs[mode] = (cpu.user + cpu.system) / 1000;
    head.dispose();
    console.log(
      `${mode}: ${(results[mode] / 1000).toFixed(2)} s wall, ${(cpuMs[mode] / 1000).toFixed(2)} s CPU per epoch (${Math.ceil(images / batchSize)} steps of ${batchSize}); kernels fast ${wasmGradientStats.fast - before.fast}, reference ${wasmGradientStats.reference - before.reference}`,
    );
  }
  console.log(`bottom activations for ${images} images (decode + bottom forward): ${(activationMs / 1000).toFixed(2)} s`);
  console.log(
    `speed-up of the WebAssembly kernels over the pure-JS fallback: ${(results.reference / results.fast).toFixed(1)}× wall, ${(cpuMs.reference / cpuMs.fast).toFixed(1)}× CPU`,
  );
  console.log(`threads: ${(tf.backend() as unknown as { getThreadsCount?(): number }).getThreadsCount?.() ?? 1}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
