// `npm run bench [-- <dataset> --json FILE]`: the engine side by side with the naive route, in one
// run, on one dataset (default: the shipped sample), then the speed targets of what a user waits
// for (test/bench/speedTargets.ts). The tests check that those things work; their timings are
// measured here, where a busy machine gives a slow figure instead of a failed test. The bench
// exits with status 3 when a target is missed.
//
// Engine: the product's own stages (scan, parallel decode, the fastest base runtime that loads,
// head on cached features), end to end through the built CLI with a cold and a warm feature cache.
// Naive route: sequential sharp decode → the base as loaded (tfjs WebAssembly, 1 thread, the
// layers model) → head on the default backend, no cache; run in its own process so its memory
// and thread settings are its own.
//
// The machine may be shared: compare the ratios within one run, not absolute figures across runs.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import {
  DEFAULT_TRAIN_OPTIONS,
  type BackendInfo,
  type EpochMetrics,
  type Evaluation,
  type RecipeChoice,
  type StageTimes,
} from '../src/shared/types';
import { formatStageTimes } from '../src/shared/stages';
import { RUN_FILES, type RunStatus } from '../src/shared/runFolder';
import { loadLayersModelFromDir as loadModelDir } from '../src/training/models/baseModel';
import { scanDataset, type DatasetItem } from '../src/training/dataset/datasetScanner';
import { buildHead, trainHead, type FeatureSet } from '../src/training/fit/head';
import { decodeBatches, decodeImage } from '../src/training/dataset/imageDecoder';
import type { LoopResult } from '../src/training/fit/trainingLoop';
import { findModel, type ModelEntry } from '../src/training/models/modelRegistry';
import { loadOnnxBaseModel, loadOnnxRuntime } from '../src/training/onnx/onnxFeatures';
import { encodeMatMulModel } from '../src/training/onnx/onnxProto';

const repoRoot = path.resolve(__dirname, '..');
const BATCH = 32;

interface Args {
  dataset: string;
  json?: string;
  model: string;
  sample: number;
  fineTuneLayers: number;
  coldRuns: number;
  warmRuns: number;
  skipNaive: boolean;
  naiveChild: boolean;
  targetsOnly: boolean;
  skipTargets: boolean;
  skipRecipes: boolean;
}

function parse(): Args {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      json: { type: 'string' },
      model: { type: 'string', default: DEFAULT_TRAIN_OPTIONS.model },
      sample: { type: 'string', default: '256' },
      'fine-tune-layers': { type: 'string', default: '20' },
      'cold-runs': { type: 'string', default: '2' },
      'warm-runs': { type: 'string', default: '3' },
      'skip-naive': { type: 'boolean', default: false },
      'naive-child': { type: 'boolean', default: false },
      'targets-only': { type: 'boolean', default: false },
      'skip-targets': { type: 'boolean', default: false },
      'skip-recipes': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'npm run bench -- [dataset] [--json FILE] [--model ID] [--sample N (images for the inference-only rates, default 256)] [--fine-tune-layers N (0 = skip, default 20)] [--cold-runs N (default 2)] [--warm-runs N (default 3)] [--skip-naive] [--targets-only | --skip-targets (the speed targets of workspace discovery, GPU diagnosis, model download and the panel)] [--skip-recipes (no --recipe auto runs)]',
    );
    process.exit(0);
  }
  return {
    dataset: path.resolve(positionals[0] ?? path.join(repoRoot, 'samples/leaves')),
    json: values.json,
    model: values.model as string,
    sample: Math.max(BATCH, Number(values.sample)),
    fineTuneLayers: Math.max(0, Number(values['fine-tune-layers'])),
    coldRuns: Math.max(1, Number(values['cold-runs'])),
    warmRuns: Math.max(1, Number(values['warm-runs'])),
    skipNaive: Boolean(values['skip-naive']),
    naiveChild: Boolean(values['naive-child']),
    targetsOnly: Boolean(values['targets-only']),
    skipTargets: Boolean(values['skip-targets']),
    skipRecipes: Boolean(values['skip-recipes']),
  };
}

const seconds = (ms: number): number => ms / 1000;
const now = (): number => performance.now();

/** Multiply-adds of one image through `model` (Conv2D, DepthwiseConv2D, SeparableConv2D, Dense), nested models included. */
function countMultiplyAdds(model: tf.LayersModel): number {
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls === 'Model' || cls === 'Functional' || cls === 'Sequential') {
      macs += countMultiplyAdds(layer as unknown as tf.LayersModel);
      continue;
    }
    const out = layer.outputShape as number[];
    const spatial = out.length === 4 ? (out[1] ?? 0) * (out[2] ?? 0) : 1;
    for (const w of layer.weights) {
      const n = w.originalName ?? w.name;
      if (n.endsWith('/kernel') || n.endsWith('/depthwise_kernel') || n.endsWith('/pointwise_kernel')) {
        // Conv [kh,kw,ci,co] and depthwise [kh,kw,ci,m]: every kernel weight is used once per output pixel.
        macs += w.shape.reduce((a: number, b) => a * (b ?? 0), 1) * spatial;
      }
    }
  }
  return macs;
}

/** Measured single-precision matrix-multiply rate (GFLOP/s), 1024×1024 × 1024×1024, best of several runs. */
async function matmulPeak(threads: number): Promise<{ gflops: number; how: string }> {
  const N = 1024;
  const b = new Float32Array(N * N).map((_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
  const flop = 2 * N ** 3;
  const ort = await loadOnnxRuntime();
  if (typeof ort !== 'string') {
    const bytes = encodeMatMulModel(b, N, N, N, 'image-trainer-bench');
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
    const a = new ort.Tensor('float32', b.slice(), [N, N]);
    await s.run({ a });
    let best = Infinity;
    for (let r = 0; r < 10; r++) {
      const t = now();
      for (let i = 0; i < 3; i++) await s.run({ a });
      best = Math.min(best, (now() - t) / 3);
    }
    await s.release();
    return {
      gflops: flop / (best / 1000) / 1e9,
      how: `onnxruntime-node MatMul 1024×1024×1024 fp32, ${threads} threads (MLAS), best of 10×3`,
    };
  }
  const x = tf.tensor2d(b, [N, N]);
  tf.tidy(() => tf.matMul(x, x).dataSync());
  let best = Infinity;
  for (let r = 0; r < 4; r++) {
    const t = now();
    tf.tidy(() => tf.matMul(x, x).dataSync());
    best = Math.min(best, now() - t);
  }
  x.dispose();
  return {
    gflops: flop / (best / 1000) / 1e9,
    how: `tfjs ${tf.getBackend()} matMul 1024×1024×1024 fp32 (onnxruntime unavailable: ${ort}), best of 4`,
  };
}

/** Polls /proc for the peak resident set (VmHWM) of a child until it exits. */
function runChild(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; wallS: number; peakRssMb: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn(cmd, args, { cwd: opts.cwd ?? repoRoot, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let peakKb = 0;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // exited between polls, or not Linux
      }
    }, 50);
    child.on('error', (e) => {
      clearInterval(poll);
      reject(e);
    });
    child.on('close', (code) => {
      clearInterval(poll);
      resolve({ code: code ?? 1, wallS: seconds(now() - t0), peakRssMb: peakKb / 1024, stdout, stderr });
    });
  });
}

interface EngineRun {
  wallS: number;
  peakRssMb: number;
  accuracy: number | null;
  featuresPerS: number | null;
  headS: number | null;
  fineTuneEpochS: number | null;
  cache: { hits: number; misses: number } | null;
  backend: string | null;
  /** Where the run's time went (status.json summary), milliseconds. */
  stageMs: StageTimes | null;
  runDir: string | null;
}

/** One end-to-end engine run through the built CLI. */
async function engineRun(dataset: string, runsDir: string, cacheDir: string, extra: string[]): Promise<EngineRun> {
  const cli = path.join(repoRoot, 'dist/training.js');
  const before = new Set(fs.existsSync(runsDir) ? fs.readdirSync(runsDir) : []);
  const r = await runChild(process.execPath, [cli, 'train', dataset, '--out', runsDir, '--cache', cacheDir, '--quiet', ...extra]);
  if (r.code !== 0)
    throw new Error(`engine run failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split('\n').slice(-5).join(' | ')}`);
  const created = fs.readdirSync(runsDir).filter((d) => !before.has(d));
  const runDir = created.length === 1 ? path.join(runsDir, created[0]) : null;
  let status: RunStatus | undefined;
  let metrics: EpochMetrics[] = [];
  let backend: string | null = null;
  if (runDir) {
    status = JSON.parse(fs.readFileSync(path.join(runDir, RUN_FILES.status), 'utf8')) as RunStatus;
    const lines = fs.existsSync(path.join(runDir, RUN_FILES.metrics))
      ? fs.readFileSync(path.join(runDir, RUN_FILES.metrics), 'utf8').split('\n')
      : [];
    metrics = lines.filter((l) => l.trim()).map((l) => JSON.parse(l) as EpochMetrics);
    try {
      const config = JSON.parse(fs.readFileSync(path.join(runDir, RUN_FILES.config), 'utf8')) as { backend?: BackendInfo };
      const b = config.backend;
      backend = b
        ? `${b.featureRuntime ? `features on ${b.featureRuntime}; ` : ''}${b.headRuntime ? `head on ${b.headRuntime}; ` : ''}${b.summary ?? b.backend ?? ''}`
        : null;
    } catch {
      backend = null;
    }
  }
  const head = metrics.filter((m) => m.stage === 'head');
  const ft = metrics.filter((m) => m.stage === 'fine-tune');
  return {
    wallS: r.wallS,
    peakRssMb: r.peakRssMb,
    accuracy: status?.valAccuracy ?? status?.summary?.valAccuracy ?? null,
    featuresPerS: status?.summary?.featuresPerSec ?? null,
    headS: head.length ? seconds(head.reduce((s, m) => s + m.durationMs, 0)) : null,
    fineTuneEpochS: ft.length ? seconds(ft.reduce((s, m) => s + m.durationMs, 0) / ft.length) : null,
    cache: status?.summary?.cache ?? null,
    backend,
    stageMs: status?.summary?.stageMs ?? null,
    runDir,
  };
}

interface RecipeFigures {
  accuracy: number | null;
  cold_s: number;
  warm_s: number;
}

/** `--recipe plain` (the engine's runs above) against `--recipe auto`: accuracy, cold and warm time, what auto chose and why. */
async function autoAgainstPlain(
  attempt: (what: string, cacheDir: string, extra: string[]) => Promise<EngineRun>,
  work: string,
  warmRuns: number,
  plainCold: EngineRun,
  plainWarm: EngineRun,
): Promise<{ plain: RecipeFigures; auto: RecipeFigures & { recipe: RecipeChoice | null }; auto_cold_ratio: number }> {
  const cache = path.join(work, 'cache-auto');
  const cold = await attempt('engine, --recipe auto, cold cache', cache, ['--recipe', 'auto']);
  const warms: EngineRun[] = [];
  for (let i = 0; i < warmRuns; i++) warms.push(await attempt(`engine, --recipe auto, warm cache ${i + 1}`, cache, ['--recipe', 'auto']));
  const warm = [...warms].sort((a, b) => a.wallS - b.wallS)[Math.floor((warms.length - 1) / 2)];
  const evaluationFile = cold.runDir ? path.join(cold.runDir, RUN_FILES.evaluation) : '';
  const recipe = fs.existsSync(evaluationFile)
    ? ((JSON.parse(fs.readFileSync(evaluationFile, 'utf8')) as Evaluation).recipe ?? null)
    : null;
  return {
    plain: { accuracy: plainCold.accuracy, cold_s: plainCold.wallS, warm_s: plainWarm.wallS },
    auto: { accuracy: cold.accuracy, cold_s: cold.wallS, warm_s: warm.wallS, recipe },
    auto_cold_ratio: cold.wallS / plainCold.wallS,
  };
}

function printRecipes(r: NonNullable<Awaited<ReturnType<typeof autoAgainstPlain>>>): void {
  const pct = (a: number | null) => (a === null ? '—' : `${(100 * a).toFixed(1)}%`);
  console.log('\n| recipe | val. accuracy | cold s | warm s |\n|---|---:|---:|---:|');
  console.log(`| plain | ${pct(r.plain.accuracy)} | ${fmt(r.plain.cold_s, 2)} | ${fmt(r.plain.warm_s, 2)} |`);
  console.log(`| auto → ${r.auto.recipe?.chosen ?? '?'} | ${pct(r.auto.accuracy)} | ${fmt(r.auto.cold_s, 2)} | ${fmt(r.auto.warm_s, 2)} |`);
  console.log(`auto cold ÷ plain cold: ${r.auto_cold_ratio.toFixed(2)}×; ${r.auto.recipe?.reason ?? 'no recipe recorded'}`);
  if (r.auto.recipe?.candidates.length)
    console.log(
      `candidates (CV on ${r.auto.recipe.images} training images): ${r.auto.recipe.candidates.map((c) => `${c.recipe} ${pct(c.accuracy)}`).join(', ')}`,
    );
}

/** Decodes the first `count` items into batches of BATCH (kept in memory: the sample is small). */
async function decodeSample(items: DatasetItem[], size: number, count: number): Promise<{ pixels: Uint8Array; n: number }[]> {
  const batches: { pixels: Uint8Array; n: number }[] = [];
  for await (const b of decodeBatches(items.slice(0, count), { size, batchSize: BATCH, maxPixels: DEFAULT_TRAIN_OPTIONS.maxPixels })) {
    if (b.items.length > 0) batches.push({ pixels: b.pixels, n: b.items.length });
  }
  return batches;
}

interface NaiveResult {
  scanS: number;
  decodePerS: number;
  featuresPerS: number;
  headS: number;
  wallS: number;
  accuracy: number;
  peakRssMb: number;
  images: number;
}

/** The naive route, in this (child) process: sequential decode → layers model on wasm → head, no cache. */
async function naiveRoute(args: Args): Promise<NaiveResult> {
  const t0 = now();
  await tf.setBackend('wasm');
  const entry = mustFindModel(args.model);
  const scanStart = now();
  const scan = await scanDataset(args.dataset, {
    valSplit: DEFAULT_TRAIN_OPTIONS.valSplit,
    seed: DEFAULT_TRAIN_OPTIONS.seed,
    maxPixels: DEFAULT_TRAIN_OPTIONS.maxPixels,
  });
  const scanS = seconds(now() - scanStart);
  const base = await loadModelDir(tf, modelFolder(entry));
  const size = entry.inputSize;
  const imageBytes = size * size * 3;
  const features = new Map<DatasetItem, Float32Array>();
  let decodeMs = 0;
  let inferMs = 0;
  for (let start = 0; start < scan.items.length; start += BATCH) {
    const items = scan.items.slice(start, start + BATCH);
    const ok: DatasetItem[] = [];
    const pixels = new Uint8Array(items.length * imageBytes);
    const d0 = now();
    for (const item of items) {
      try {
        pixels.set(await decodeImage(item.abs, size, DEFAULT_TRAIN_OPTIONS.maxPixels), ok.length * imageBytes);
        ok.push(item);
      } catch {
        // skipped, as the engine skips it
      }
    }
    decodeMs += now() - d0;
    if (ok.length === 0) continue;
    const i0 = now();
    const out = tf.tidy(() => {
      const x = tf.tensor4d(pixels.subarray(0, ok.length * imageBytes), [ok.length, size, size, 3], 'float32');
      return base.predict(x.mul(entry.preprocessing.scale).add(entry.preprocessing.offset)) as tf.Tensor;
    });
    const data = (await out.data()) as Float32Array;
    out.dispose();
    inferMs += now() - i0;
    ok.forEach((item, i) => features.set(item, data.slice(i * entry.featureSize, (i + 1) * entry.featureSize)));
  }
  const toSet = (split: 'train' | 'val'): FeatureSet => {
    const items = scan.items.filter((i) => i.split === split && features.has(i));
    const x = new Float32Array(items.length * entry.featureSize);
    items.forEach((item, i) => x.set(features.get(item) as Float32Array, i * entry.featureSize));
    return { x, y: Int32Array.from(items.map((i) => i.classIndex)), n: items.length, featureSize: entry.featureSize };
  };
  const train = toSet('train');
  const val = toSet('val');
  const h0 = now();
  const head = buildHead(tf, entry.featureSize, scan.classes.length, DEFAULT_TRAIN_OPTIONS);
  const result = await trainHead(tf, head, train, val, scan.classes.length, DEFAULT_TRAIN_OPTIONS, {});
  const headS = seconds(now() - h0);
  const accuracy = bestValAccuracy(result);
  head.dispose();
  base.dispose();
  const images = features.size;
  return {
    scanS,
    decodePerS: images / seconds(decodeMs),
    featuresPerS: images / seconds(inferMs),
    headS,
    wallS: seconds(now() - t0),
    accuracy,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    images,
  };
}

/** Validation accuracy of the kept (best) epoch. */
function bestValAccuracy(result: LoopResult): number {
  const kept = result.history.find((m) => m.epoch === result.bestEpoch);
  return kept ? kept.valAcc : Number.NaN;
}

function mustFindModel(id: string): ModelEntry {
  const entry = findModel(id);
  if (!entry) throw new Error(`unknown model ${id}`);
  return entry;
}

function modelFolder(entry: ModelEntry): string {
  if (entry.source.kind === 'embedded') return path.join(repoRoot, entry.source.folder);
  if (entry.source.kind === 'folder') return entry.source.path;
  throw new Error(`the bench runs on local models only; ${entry.id} is downloaded on demand`);
}

const fmt = (x: number | null | undefined, digits = 1): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(digits);
const ratio = (a: number | null | undefined, b: number | null | undefined): string => (a && b ? `${(a / b).toFixed(1)}×` : '—');

interface SpeedReading {
  name: string;
  ms: number;
  targetMs: number;
  detail?: string;
}

const SPEED_SECTIONS = ['discovery', 'gpu-diagnosis', 'model-download', 'panel-jsdom', 'panel-chromium', 'explain-heatmap', 'doctor'];

/**
 * Runs each section of test/bench/speedTargets.ts in its own process and prints every reading
 * next to its target, e.g. `discovery of a 20,000-file workspace: 412 ms (target < 2000 ms)`.
 */
async function speedTargets(): Promise<{ readings: SpeedReading[]; missed: string[]; notMeasured: string[] }> {
  const script = path.join(repoRoot, 'test/bench/speedTargets.ts');
  const readings: SpeedReading[] = [];
  const missed: string[] = [];
  const notMeasured: string[] = [];
  console.log('\nSpeed targets');
  for (const section of SPEED_SECTIONS) {
    const r = await runChild(process.execPath, ['--import', 'tsx', script, section]);
    const lines = r.stdout.split('\n');
    for (const line of lines) {
      if (line.startsWith('SPEED_TARGET ')) {
        const reading = JSON.parse(line.slice('SPEED_TARGET '.length)) as SpeedReading;
        readings.push(reading);
        const ok = reading.ms < reading.targetMs;
        if (!ok) missed.push(reading.name);
        console.log(
          `${ok ? '  ' : '✗ '}${reading.name}: ${reading.ms.toFixed(0)} ms (target < ${reading.targetMs} ms)${reading.detail ? ` — ${reading.detail}` : ''}`,
        );
      } else if (line.startsWith('SPEED_SKIPPED ')) {
        const { why } = JSON.parse(line.slice('SPEED_SKIPPED '.length)) as { why: string };
        notMeasured.push(`${section}: ${why}`);
        console.log(`  ${section}: not measured — ${why}`);
      }
    }
    if (r.code !== 0) {
      const why = `failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`;
      notMeasured.push(`${section}: ${why}`);
      console.log(`✗ ${section}: ${why}`);
    }
  }
  if (missed.length) console.log(`\n${missed.length} speed target${missed.length === 1 ? '' : 's'} missed: ${missed.join('; ')}`);
  return { readings, missed, notMeasured };
}

async function main(): Promise<void> {
  const args = parse();
  if (args.naiveChild) {
    const r = await naiveRoute(args);
    console.log(`NAIVE_RESULT ${JSON.stringify(r)}`);
    return;
  }
  if (args.targetsOnly) {
    const targets = await speedTargets();
    if (args.json) {
      fs.mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
      fs.writeFileSync(args.json, `${JSON.stringify({ date: new Date().toISOString(), speed_targets: targets }, null, 2)}\n`);
    }
    if (targets.missed.length || targets.notMeasured.some((n) => n.includes('failed'))) process.exitCode = 3;
    return;
  }
  if (!fs.existsSync(path.join(repoRoot, 'dist/training.js')))
    throw new Error('dist/training.js is missing: run `npm run build` first (npm run bench does)');
  const entry = mustFindModel(args.model);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-bench-'));
  const startedAt = new Date();
  const loadStart = os.loadavg()[0];
  console.error(`bench: ${args.dataset} with ${entry.id}; scratch folder ${work}`);
  try {
    await tf.setBackend('wasm');
    const threads = os.availableParallelism();

    const base = await loadModelDir(tf, modelFolder(entry));
    const macs = countMultiplyAdds(base);
    const flopsPerImage = 2 * macs;

    // Engine stages, in process.
    const s0 = now();
    const scan = await scanDataset(args.dataset, {
      valSplit: DEFAULT_TRAIN_OPTIONS.valSplit,
      seed: DEFAULT_TRAIN_OPTIONS.seed,
      maxPixels: DEFAULT_TRAIN_OPTIONS.maxPixels,
    });
    const scanS = seconds(now() - s0);
    const d0 = now();
    let decoded = 0;
    for await (const b of decodeBatches(scan.items, {
      size: entry.inputSize,
      batchSize: BATCH,
      maxPixels: DEFAULT_TRAIN_OPTIONS.maxPixels,
    }))
      decoded += b.items.length;
    const decodePerS = decoded / seconds(now() - d0);
    const sample = await decodeSample(scan.items, entry.inputSize, args.sample);
    const sampleImages = sample.reduce((s, b) => s + b.n, 0);

    // Inference only, on the same decoded sample: the engine's CPU runtime (onnxruntime when it
    // loads), the naive route's layers model (tfjs wasm, 1 thread) and the matmul peak, measured in
    // interleaved rounds. On a shared machine the load changes from second to second, so each
    // ratio is taken within one round and the median over the rounds is reported.
    const reasons: string[] = [];
    const onnxBase = await loadOnnxBaseModel(await loadModelDir(tf, modelFolder(entry)), entry, path.join(work, 'onnx-cache'), {
      onUnavailable: (r) => reasons.push(r),
    });
    const engineRuntime = onnxBase ? onnxBase.routeNote : `onnxruntime unavailable: ${reasons.join('; ')}`;
    const size = entry.inputSize;
    const predict = (b: { pixels: Uint8Array; n: number }): void =>
      tf.tidy(() => {
        const x = tf.tensor4d(b.pixels, [b.n, size, size, 3], 'float32');
        (base.predict(x.mul(entry.preprocessing.scale).add(entry.preprocessing.offset)) as tf.Tensor).dataSync();
      });
    const naiveSample = sample.slice(0, Math.max(1, Math.ceil(sample.length / 2)));
    const naiveImages = naiveSample.reduce((s, b) => s + b.n, 0);
    predict(sample[0]);
    if (onnxBase) await onnxBase.extract(sample[0].pixels, sample[0].n);
    const rounds: { peak: number; engine: number | null; naive: number }[] = [];
    let peakHow = '';
    for (let r = 0; r < 3; r++) {
      const peak = await matmulPeak(threads);
      peakHow = peak.how;
      let engine: number | null = null;
      if (onnxBase) {
        const t = now();
        for (const b of sample) await onnxBase.extract(b.pixels, b.n);
        engine = sampleImages / seconds(now() - t);
      }
      const tn = now();
      for (const b of naiveSample) predict(b);
      rounds.push({ peak: peak.gflops, engine, naive: naiveImages / seconds(now() - tn) });
    }
    onnxBase?.dispose();
    onnxBase?.layersModel.dispose();
    base.dispose();
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const engineFeaturesPerS = onnxBase ? median(rounds.map((r) => r.engine as number)) : null;
    const baselineFeaturesPerS = median(rounds.map((r) => r.naive));
    const peak = { gflops: Math.max(...rounds.map((r) => r.peak)), how: peakHow };
    const peakSpread = rounds.map((r) => r.peak);
    const featuresSpeedup = onnxBase ? median(rounds.map((r) => (r.engine as number) / r.naive)) : null;
    const shareOfPeak = onnxBase ? median(rounds.map((r) => ((r.engine as number) * flopsPerImage) / 1e9 / r.peak)) : null;

    // End to end, engine: cold caches (each run with an empty cache folder: no features, no ONNX
    // graph, no scan index), then warm reruns on the last one, then fine-tuning. Medians.
    const runsDir = path.join(work, 'runs');
    const errors: string[] = [];
    const failed: EngineRun = {
      wallS: Number.NaN,
      peakRssMb: Number.NaN,
      accuracy: null,
      featuresPerS: null,
      headS: null,
      fineTuneEpochS: null,
      cache: null,
      backend: null,
      stageMs: null,
      runDir: null,
    };
    const attempt = async (what: string, cacheDir: string, extra: string[]): Promise<EngineRun> => {
      try {
        return await engineRun(args.dataset, runsDir, cacheDir, extra);
      } catch (error) {
        errors.push(`${what}: ${(error as Error).message}`);
        return failed;
      }
    };
    // The engine's speed figures are those of the plain recipe (one view); `auto` is measured below.
    const plainArgs = ['--recipe', 'plain'];
    const colds: EngineRun[] = [];
    for (let i = 0; i < args.coldRuns; i++)
      colds.push(await attempt(`engine, cold cache ${i + 1}`, path.join(work, `cache-${i}`), plainArgs));
    const cacheDir = path.join(work, `cache-${args.coldRuns - 1}`);
    const warms: EngineRun[] = [];
    for (let i = 0; i < args.warmRuns; i++) warms.push(await attempt(`engine, warm cache ${i + 1}`, cacheDir, plainArgs));
    const byWall = (runs: EngineRun[]): EngineRun =>
      [...runs].sort((a, b) => (Number.isNaN(a.wallS) ? 1 : Number.isNaN(b.wallS) ? -1 : a.wallS - b.wallS))[
        Math.floor((runs.length - 1) / 2)
      ];
    const cold = byWall(colds);
    const warm = byWall(warms);
    const recipes = args.skipRecipes ? null : await autoAgainstPlain(attempt, work, args.warmRuns, byWall(colds), byWall(warms));
    const ft =
      args.fineTuneLayers > 0
        ? await attempt('engine, fine-tuning', cacheDir, ['--fine-tune-layers', String(args.fineTuneLayers), '--fine-tune-epochs', '2'])
        : undefined;
    const stageSeconds = (t: StageTimes | null) => (t ? Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v / 1000])) : null);

    // End to end, naive route, in its own process.
    let naive: NaiveResult | undefined;
    if (!args.skipNaive) {
      const r = await runChild(process.execPath, [
        '--import',
        'tsx',
        path.join(repoRoot, 'scripts/bench.ts'),
        args.dataset,
        '--model',
        args.model,
        '--naive-child',
      ]);
      const line = r.stdout.split('\n').find((l) => l.startsWith('NAIVE_RESULT '));
      if (r.code !== 0 || !line)
        throw new Error(`naive route failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`);
      naive = JSON.parse(line.slice('NAIVE_RESULT '.length)) as NaiveResult;
      naive.peakRssMb = Math.max(naive.peakRssMb, r.peakRssMb);
    }

    const engineGflops = engineFeaturesPerS ? (engineFeaturesPerS * flopsPerImage) / 1e9 : null;
    const roundsOut = rounds.map((r) => ({ matmul_gflops: r.peak, features_per_s: r.engine, baseline_features_per_s: r.naive }));
    const result = {
      date: startedAt.toISOString(),
      machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${threads} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${loadStart.toFixed(1)} at start, ${os.loadavg()[0].toFixed(1)} at end`,
      node: process.version,
      dataset: args.dataset,
      images: scan.items.length,
      classes: scan.classes.length,
      model: entry.id,
      model_flops_per_image: flopsPerImage,
      matmul_peak_gflops: peak.gflops,
      matmul_peak_how: peak.how,
      matmul_peak_measurements_gflops: peakSpread,
      engine_runtime: engineRuntime,
      engine_backend: cold.backend,
      scan_s: scanS,
      decode_per_s: decodePerS,
      features_per_s: engineFeaturesPerS,
      features_share_of_peak: shareOfPeak,
      baseline_features_per_s: baselineFeaturesPerS,
      features_speedup: featuresSpeedup,
      inference_rounds: roundsOut,
      files_to_features_per_s: cold.featuresPerS,
      head_s: cold.headS,
      fine_tune_epoch_s: ft?.fineTuneEpochS ?? null,
      cold_s: cold.wallS,
      warm_s: warm.wallS,
      warm_speedup: cold.wallS / warm.wallS,
      cold_runs_s: colds.map((r) => r.wallS),
      warm_runs_s: warms.map((r) => r.wallS),
      cold_stage_s: stageSeconds(cold.stageMs),
      warm_stage_s: stageSeconds(warm.stageMs),
      warm_cache: warm.cache,
      // The feature map (PCA + UMAP of every image's vector): projected in the cold run, read from the cache in the warm one.
      feature_map_s: {
        cold: cold.stageMs?.map === undefined ? null : cold.stageMs.map / 1000,
        warm: warm.stageMs?.map === undefined ? null : warm.stageMs.map / 1000,
      },
      accuracy: cold.accuracy,
      accuracy_fine_tuned: ft?.accuracy ?? null,
      peak_rss_mb: Math.max(...colds.map((r) => r.peakRssMb), ...warms.map((r) => r.peakRssMb)) || null,
      naive: naive ?? null,
      recipes,
      sample_images: sampleImages,
      errors,
    };

    const rows: [string, string, string, string][] = [
      ['scan (s)', fmt(scanS, 2), fmt(naive?.scanS, 2), ratio(naive?.scanS, scanS)],
      ['decode (images/s)', fmt(decodePerS), fmt(naive?.decodePerS), ratio(decodePerS, naive?.decodePerS)],
      [
        'feature extraction, inference only, batch 32 (images/s)',
        fmt(engineFeaturesPerS),
        fmt(baselineFeaturesPerS),
        featuresSpeedup === null ? '—' : `${featuresSpeedup.toFixed(1)}×`,
      ],
      [
        'files → features, end to end (images/s)',
        fmt(cold.featuresPerS),
        fmt(naive ? naive.images / (naive.images / naive.decodePerS + naive.images / naive.featuresPerS) : null),
        ratio(cold.featuresPerS, naive ? naive.images / (naive.images / naive.decodePerS + naive.images / naive.featuresPerS) : null),
      ],
      [
        `feature map, PCA + UMAP of ${scan.items.length} vectors (s; warm: from the cache)`,
        fmt(result.feature_map_s.cold, 2),
        '—',
        `warm ${fmt(result.feature_map_s.warm, 2)}`,
      ],
      ['head training (s)', fmt(cold.headS, 2), fmt(naive?.headS, 2), ratio(naive?.headS, cold.headS)],
      [`fine-tuning, ${args.fineTuneLayers} layers (s/epoch)`, fmt(ft?.fineTuneEpochS, 2), '—', '—'],
      [`end to end, cold cache (s, median of ${colds.length})`, fmt(cold.wallS, 2), fmt(naive?.wallS, 2), ratio(naive?.wallS, cold.wallS)],
      [`end to end, warm cache (s, median of ${warms.length})`, fmt(warm.wallS, 2), '—', `${ratio(cold.wallS, warm.wallS)} vs cold`],
      [
        'validation accuracy',
        fmt(cold.accuracy === null ? null : 100 * cold.accuracy) + '%',
        naive ? `${fmt(100 * naive.accuracy)}%` : '—',
        '',
      ],
      ['peak RSS (MB)', fmt(result.peak_rss_mb, 0), fmt(naive?.peakRssMb, 0), ''],
    ];
    const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length), ['stage', 'engine', 'naive', 'ratio'][c].length));
    const line = (r: string[]): string => `| ${r.map((x, i) => x.padEnd(widths[i])).join(' | ')} |`;
    console.log(`\nImage Trainer bench — ${result.date}\n${result.machine}, Node ${result.node}`);
    console.log(`dataset ${args.dataset}: ${scan.items.length} images, ${scan.classes.length} classes; model ${entry.id}`);
    console.log(`engine runtime: ${engineRuntime}; engine run backend: ${cold.backend ?? 'unknown'}`);
    console.log(
      `model: ${(flopsPerImage / 1e6).toFixed(0)} MFLOP/image (${(macs / 1e6).toFixed(0)} M multiply-adds); measured peak: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.how}; rounds ${peakSpread.map((g) => g.toFixed(0)).join(', ')})`,
    );
    console.log(
      `feature extraction: ${fmt(engineGflops)} GFLOP/s (median of ${rounds.length} rounds); ${shareOfPeak === null ? '—' : (100 * shareOfPeak).toFixed(0)}% of the matmul peak measured in the same round (median)\n`,
    );
    console.log(line(['stage', 'engine', 'naive', 'ratio']));
    console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    for (const r of rows) console.log(line(r));
    console.log(
      `\nInference-only rates: medians of ${rounds.length} interleaved rounds over the same decoded images (engine: the ONNX base on ${sampleImages}; naive: the layers model on tfjs wasm, 1 thread, on ${naiveImages}); the ratio is the median of per-round ratios. ` +
        'Engine end-to-end times run the built CLI (dist/training.js) from process start; the naive route is timed inside its process after start-up.',
    );
    console.log(
      `cold runs (s): ${colds.map((r) => fmt(r.wallS, 2)).join(', ')}; warm runs (s): ${warms.map((r) => fmt(r.wallS, 2)).join(', ')}`,
    );
    if (cold.stageMs) console.log(`median cold run: ${formatStageTimes(cold.stageMs)}`);
    if (warm.stageMs) console.log(`median warm run: ${formatStageTimes(warm.stageMs)}`);
    if (recipes) printRecipes(recipes);
    for (const e of errors) console.log(`\nnot measured — ${e}`);
    const targets = args.skipTargets ? undefined : await speedTargets();
    if (targets && (targets.missed.length || targets.notMeasured.some((n) => n.includes('failed')))) process.exitCode = 3;
    if (args.json) {
      fs.mkdirSync(path.dirname(path.resolve(args.json)), { recursive: true });
      fs.writeFileSync(args.json, `${JSON.stringify({ ...result, speed_targets: targets ?? null }, null, 2)}\n`);
      console.log(`\nJSON: ${args.json}`);
    }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
