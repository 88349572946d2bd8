// One training run, start to finish: scan → split → features (cached) → head → optional
// fine-tuning → evaluation → outputs. Drives everything the CLI prints and the panel shows through
// `TrainingNotification`s; knows nothing about how they are delivered.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import { RUN_FILES, type RunConfig } from '../../shared/runFolder';
import type { TrainingNotification } from '../../shared/protocol/training';
import type { DatasetReport, EpochMetrics, StageTimes, Evaluation, RunSummary, SkippedFile, TrainOptions } from '../../shared/types';
import { initBackend } from '../backend/backend';
import type { Tf } from '../util/tf';
import { loadBaseModel, type BaseModel } from '../models/baseModel';
import { loadOnnxBaseModel, probeOnnxRuntime, type OnnxBaseModel } from '../onnx/onnxFeatures';
import { chooseHeadRuntime } from '../onnx/onnxHead';
import { buildClassifier, classifierMetadata, saveModelDir } from '../models/classifierModel';
import { datasetFolderKey, scanDataset, type DatasetItem } from '../dataset/datasetScanner';
import { evaluate } from '../fit/evaluation';
import { FeatureCache } from '../features/featureCache';
import { chooseCutLayer, fineTune, splitAtLayer, type CutModel } from '../fit/fineTune';
import { buildHead, predictProbs, trainHead, type FeatureSet } from '../fit/head';
import { decodeBatches, DecodeError } from '../dataset/imageDecoder';
import { DEFAULT_MODEL_ID, findModel, MODEL_REGISTRY, type ModelEntry } from '../models/modelRegistry';
import { ensureModel, ModelDownloadError } from '../models/modelDownload';
import { CUSTOM_MODEL_DESCRIPTOR_FILE, readCustomModel } from '../models/customModel';
import { ProgressThrottle, RateMeter } from './progressThrottle';
import { registerWasmGradients } from '../backend/wasmGradients';
import { createRunFolder, RunFolderWriter } from './runFolderWriter';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicWrite';
import { RunCancelled } from '../util/errors';
import { renderRunReport } from './runReport';
import { sharpVersion } from '../dataset/lazySharp';

export interface RunRequest {
  datasetRoot: string;
  runsDir: string;
  cacheDir: string;
  options: TrainOptions;
  /** Folder of the product (holds media/models); found from the bundle's location when absent. */
  extensionRoot?: string;
  /** Extra folders where a native tfjs backend was installed on demand. */
  nativeModulePaths?: string[];
  /** Folder that holds downloaded base models (`<folder>/models/<id>`); default: `cacheDir`. */
  modelCacheDir?: string;
  /** A base model that is not in the registry (a user's own folder, or a test's server); overrides `options.model`. */
  modelEntry?: ModelEntry;
}

/** Cooperative cancellation: set `cancelled` and the run stops after the current batch. */
export interface CancelToken {
  cancelled: boolean;
}


/** What the feature stage needs of a frozen base, on tfjs or onnxruntime. */
type FeatureExtractor = Pick<BaseModel, 'extract' | 'cacheKey' | 'featureSize' | 'inputSize'>;

const NO_FEATURES = new Float32Array(0);

interface Embedded {
  item: DatasetItem;
  features: Float32Array;
}

/** Runs one training and returns its summary; throws on failure after recording it in the run folder. */
export async function runTraining(req: RunRequest, notify: (n: TrainingNotification) => void, cancel: CancelToken): Promise<RunSummary> {
  const t0 = Date.now();
  const stageMs: StageTimes = { startup: Math.round(process.uptime() * 1000) };
  let lapStart = performance.now();
  /** Adds the time since the previous lap to `stage`. */
  const lap = (stage: keyof StageTimes) => {
    const t = performance.now();
    stageMs[stage] = Math.round((stageMs[stage] ?? 0) + t - lapStart);
    lapStart = t;
  };
  const options = req.options;
  let entry = req.modelEntry ?? (await resolveModelEntry(options.model));
  const datasetRoot = path.resolve(req.datasetRoot);
  const stat = await fs.promises.stat(datasetRoot).catch(() => undefined);
  if (!stat?.isDirectory()) throw new Error(`${datasetRoot} is not a folder.`);
  const datasetName = path.basename(datasetRoot);

  const runDir = await createRunFolder(req.runsDir, datasetRoot, datasetName, new Date());
  const writer = new RunFolderWriter(runDir, {
    state: 'running',
    datasetRoot,
    datasetName,
    startedAt: new Date(t0).toISOString(),
    hasCheckpoint: false,
    pid: process.pid,
  });
  const log = (level: 'info' | 'warn' | 'error', message: string) => {
    writer.log(`[${level}] ${message}`);
    notify({ type: 'log', level, message });
  };
  const progress = new ProgressThrottle((p) => notify({ type: 'progress', progress: p }));
  const history: EpochMetrics[] = [];
  let report: DatasetReport | undefined;
  let config: RunConfig | undefined;
  let evaluation: Evaluation | undefined;
  let cacheStats = { hits: 0, misses: 0 };
  let featuresPerSec = 0;
  let bestEpoch = 0;
  let base: BaseModel | undefined;
  let onnx: OnnxBaseModel | undefined;
  let tf: Tf | undefined;

  const summaryOf = (cancelled: boolean): RunSummary => ({
    runDir,
    valAccuracy: evaluation?.accuracy ?? writer.currentStatus.valAccuracy ?? 0,
    bestEpoch,
    epochsRun: history.length,
    cache: cacheStats,
    wallMs: Date.now() - t0,
    stageMs: { ...stageMs },
    featuresPerSec,
    cancelled,
  });

  const writeReport = async (state: string, message?: string) => {
    if (!report || !config) return;
    const { runDir: _omit, ...summary } = summaryOf(state === 'cancelled');
    await writeFileAtomic(
      writer.file(RUN_FILES.report),
      renderRunReport({ runName: path.basename(runDir), config, dataset: report, history, evaluation, summary, state, message }),
    );
  };

  try {
    await writer.updateStatus({});
    log('info', `Run folder: ${runDir}`);

    // 1. Backend
    // When onnxruntime computes the features, WebAssembly only trains the head: small products
    // whose per-operation thread hand-offs cost more than they gain, so it gets one thread.
    const onnxReady = options.fineTuneLayers === 0 && process.env.IMAGE_TRAINER_FEATURE_RUNTIME !== 'tfjs' && (await probeOnnxRuntime()).ok;
    const backend = await initBackend({
      preference: options.backend,
      nativeModulePaths: req.nativeModulePaths,
      wasmThreads: onnxReady ? 1 : undefined,
    });
    tf = backend.tf;
    log('info', `Backend: ${backend.info.summary}`);
    // WebAssembly lacks convolution gradients and runs transposed products slowly (the head's
    // weight gradients): register the project's kernels for both.
    if (tf.getBackend() === 'wasm') registerWasmGradients(tf);

    lap('backend');
    // 2. Scan + split
    progress.offer({ stage: 'scan', done: 0, total: 1 });
    const scan = await scanDataset(datasetRoot, {
      valSplit: options.valSplit,
      seed: options.seed,
      maxPixels: options.maxPixels,
      onProgress: (done, total) => progress.offer({ stage: 'scan', done, total }),
      index: path.join(req.cacheDir, 'scan'),
    });
    report = scan.report;
    const classes = scan.classes;
    await writeJsonAtomic(writer.file(RUN_FILES.datasetReport), report);
    await writeJsonAtomic(writer.file(RUN_FILES.labels), classes);

    lap('scan');
    // 3. Base model
    const resolved = await resolveModelFolder(entry, req, cancel, progress, log);
    entry = resolved.entry;
    // The frozen base runs where it is fastest: on a CPU, onnxruntime when it loads (the graph is
    // exported from these same weights; the fused tfjs graph is then not built); on a GPU,
    // tfjs-node-gpu. Fine-tuning needs the tfjs layers either way.
    const useOnnx = onnxReady && backend.info.backend !== 'tensorflow-gpu';
    const baseOptions = { extensionRoot: req.extensionRoot, modelDir: resolved.dir };
    base = await loadBaseModel(tf, entry, { ...baseOptions, route: useOnnx ? 'layers' : 'auto' });
    let extractor: FeatureExtractor = base;
    if (useOnnx) {
      onnx = await loadOnnxBaseModel(base.layersModel, entry, req.cacheDir, {
        onUnavailable: (reason) => log('info', `onnxruntime not used for features: ${reason}`),
        log: (m) => writer.log(`[info] ${m}`),
      });
      if (onnx) {
        extractor = onnx;
      } else {
        base.dispose();
        base = await loadBaseModel(tf, entry, baseOptions);
        extractor = base;
      }
    }
    backend.info.featureRuntime = onnx
      ? onnx.routeNote
      : `tfjs ${backend.info.backend} (${base.route}${base.routeNote ? `: ${base.routeNote}` : ''})`;
    log('info', `Features on ${backend.info.featureRuntime}`);
    const headRuntime = await chooseHeadRuntime(backend.info.backend);
    backend.info.headRuntime = headRuntime.note;
    log('info', `Head on ${headRuntime.note}`);
    const modelInfo = { id: entry.id, name: entry.name, inputSize: base.inputSize, featureSize: base.featureSize };
    config = {
      datasetRoot,
      options,
      backend: backend.info,
      model: modelInfo,
      versions: versions(tf),
      createdAt: new Date(t0).toISOString(),
    };
    await writeJsonAtomic(writer.file(RUN_FILES.config), config);
    notify({ type: 'started', runDir, backend: backend.info, model: modelInfo, dataset: report, options });

    const trainItems = scan.items.filter((i) => i.split === 'train');
    const valItems = scan.items.filter((i) => i.split === 'val');
    if (trainItems.length === 0 || valItems.length === 0) {
      throw new Error(
        `Need images for both training and validation; got ${trainItems.length} training and ${valItems.length} validation images. Add images or change the validation fraction (${options.valSplit}).`,
      );
    }

    lap('model');
    // 4. Features (cached) — or, for fine-tuning, activations at the cut point.
    const cut = options.fineTuneLayers > 0 ? chooseCut(tf, base, entry, options.fineTuneLayers, log) : undefined;
    const cache = new FeatureCache(req.cacheDir, extractor.cacheKey, extractor.featureSize);
    const embedded = await embedAll(
      tf,
      base,
      extractor,
      cache,
      datasetFolderKey(datasetRoot),
      [...trainItems, ...valItems],
      options,
      cancel,
      progress,
      cut,
    );
    // Fine-tuning embeds every image through the cut (activations are needed), bypassing the cache.
    cacheStats = cut ? { hits: 0, misses: embedded.ok.length + embedded.failed.length } : { hits: cache.hits, misses: cache.misses };
    featuresPerSec = embedded.perSec;
    if (embedded.failed.length) {
      report.skipped.push(...embedded.failed);
      recount(
        report,
        classes,
        embedded.ok.map((e) => e.item),
      );
      await writeJsonAtomic(writer.file(RUN_FILES.datasetReport), report);
      log(
        'warn',
        `${embedded.failed.length} images could not be decoded and were skipped: ${embedded.failed.map((f) => f.path).join(', ')}`,
      );
    }
    log(
      'info',
      `Features: ${embedded.ok.length} images, ${cacheStats.hits} cache hits, ${cacheStats.misses} misses, ${featuresPerSec.toFixed(1)} images/s`,
    );
    const train = toFeatureSet(
      embedded.ok.filter((e) => e.item.split === 'train'),
      base.featureSize,
    );
    const valEmbedded = embedded.ok.filter((e) => e.item.split === 'val');
    const val = toFeatureSet(valEmbedded, base.featureSize);
    // The feature sets hold the only copy the head needs: let the per-image vectors go, so memory
    // grows with the dataset by one feature matrix, not two.
    for (const e of embedded.ok) e.features = NO_FEATURES;
    if (new Set(train.y).size < 2) throw new Error('Fewer than 2 classes have usable training images after decoding.');

    // Nothing needs the feature session any more (fine-tuning runs the tfjs layers): release it and
    // its thread pool before the head trains.
    onnx?.dispose();
    lap('features');
    // 5. Head
    const tfr = tf;
    const head = buildHead(tfr, base.featureSize, classes.length, options);
    const classifier = buildClassifier(tfr, base.layersModel, head, entry);
    const metadata = classifierMetadata(classes, entry);
    const modelDir = writer.file(RUN_FILES.modelDir);
    const hooks = (stage: 'head' | 'fine-tune', totalEpochs: number) => ({
      onEpochEnd: async (m: EpochMetrics) => {
        history.push(m);
        await writer.appendMetrics(m);
        notify({ type: 'epochEnd', metrics: m });
      },
      onBatchEnd: (batch: number, batches: number, epoch: number) =>
        progress.offer({ stage, done: batch, total: batches, epoch, epochs: totalEpochs }),
      onBest: async (epoch: number, valAcc: number) => {
        bestEpoch = epoch;
        await saveModelDir(classifier, modelDir, metadata, tfr);
        await writer.updateStatus({ hasCheckpoint: true, valAccuracy: valAcc, bestEpoch: epoch });
      },
      shouldStop: () => cancel.cancelled,
    });
    const totalEpochs = options.epochs + (cut ? options.fineTuneEpochs : 0);
    const headResult = await trainHead(tfr, head, train, val, classes.length, options, hooks('head', totalEpochs), headRuntime.runtime);
    bestEpoch = headResult.bestEpoch;
    // Cancelled before any epoch ended: there is no trained model to evaluate or keep.
    if (cancel.cancelled && headResult.bestEpoch === 0) throw new RunCancelled();
    log('info', `Head: ${headResult.epochsRun} epochs, best epoch ${headResult.bestEpoch} (stopped by ${headResult.stoppedBy})`);

    lap('head');
    // 6. Fine-tuning
    if (cut && !cancel.cancelled && embedded.activations) {
      const acts = embedded.activations;
      const pick = (split: 'train' | 'val') => {
        const idx = embedded.ok.map((e, i) => (e.item.split === split ? i : -1)).filter((i) => i >= 0);
        const per = acts.perImage;
        const x = new Float32Array(idx.length * per);
        idx.forEach((src, j) => x.set(acts.data.subarray(src * per, (src + 1) * per), j * per));
        return { x, shape: [idx.length, ...acts.shape], y: Int32Array.from(idx.map((i) => embedded.ok[i].item.classIndex)) };
      };
      const ft = await fineTune(
        tfr,
        cut,
        head,
        pick('train'),
        pick('val'),
        classes.length,
        options,
        hooks('fine-tune', totalEpochs),
        history.length,
      );
      if (ft.bestEpoch > 0) bestEpoch = ft.bestEpoch;
      log('info', `Fine-tuning: ${ft.epochsRun} epochs, best epoch ${ft.bestEpoch}`);
    }

    if (cut) lap('fineTune');
    // 7. Evaluation with the kept weights (features recomputed only when fine-tuning changed the base)
    progress.offer({ stage: 'evaluate', done: 0, total: val.n });
    const valFeatures = cut && embedded.activations ? await recomputeFeatures(tfr, cut, embedded, 'val', base.featureSize) : val;
    const probs = await predictProbs(tfr, head, valFeatures);
    evaluation = evaluate(
      classes,
      val.y,
      probs,
      valEmbedded.map((e) => e.item.rel),
      bestEpoch,
    );
    progress.offer({ stage: 'evaluate', done: val.n, total: val.n });
    await writeJsonAtomic(writer.file(RUN_FILES.evaluation), evaluation);
    notify({ type: 'evaluation', evaluation });

    lap('evaluate');
    // 8. Final model and report. The callbacks restored the best weights, which the last onBest
    // checkpoint already holds; save only if no checkpoint was written.
    progress.offer({ stage: 'save', done: 0, total: 1 });
    if (!writer.currentStatus.hasCheckpoint) await saveModelDir(classifier, modelDir, metadata, tfr);
    const cancelled = cancel.cancelled;
    const state = cancelled ? 'cancelled' : 'finished';
    lap('save');
    const summary = summaryOf(cancelled);
    const { runDir: _r, ...summaryOnDisk } = summary;
    await writer.updateStatus({
      state,
      hasCheckpoint: true,
      valAccuracy: evaluation.accuracy,
      bestEpoch,
      pid: undefined,
      summary: summaryOnDisk,
      message: cancelled ? 'Cancelled; the best checkpoint was kept.' : undefined,
    });
    await writeReport(state, cancelled ? 'Cancelled; the best checkpoint was kept.' : undefined);
    progress.offer({ stage: 'save', done: 1, total: 1 });
    head.dispose();
    return summary;
  } catch (err) {
    const cancelled = err instanceof RunCancelled || cancel.cancelled;
    const message = cancelled ? 'Cancelled before a model was trained.' : errorMessage(err);
    writer.log(`[error] ${err instanceof Error && err.stack ? err.stack : message}`);
    await writer.updateStatus({ state: cancelled ? 'cancelled' : 'failed', message, pid: undefined }).catch(() => undefined);
    await writeReport(cancelled ? 'cancelled' : 'failed', message).catch(() => undefined);
    if (cancelled) return summaryOf(true);
    (err as { runDir?: string }).runDir = runDir;
    throw err;
  } finally {
    // Both wrap the same LayersModel; whichever disposes it second must not fail the run.
    for (const m of [onnx, base]) {
      try {
        m?.dispose();
      } catch {
        // already disposed
      }
    }
    await writer.close();
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function versions(tf: Tf): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  for (const [k, val] of Object.entries(tf.version ?? {})) v[k] = String(val);
  v.sharp = sharpVersion();
  return v;
}

/** A registry id, or the folder of a user's own LayersModel with its descriptor file. */
async function resolveModelEntry(model: string): Promise<ModelEntry> {
  const known = findModel(model);
  if (known) return known;
  if (/[\\/]/.test(model) || fs.existsSync(path.join(model, CUSTOM_MODEL_DESCRIPTOR_FILE))) return readCustomModel(path.resolve(model));
  throw new Error(
    `Unknown base model "${model}"; known: ${MODEL_REGISTRY.map((m) => m.id).join(', ')}, or the folder of your own TF.js LayersModel with ${CUSTOM_MODEL_DESCRIPTOR_FILE}.`,
  );
}

/**
 * The folder of the base model's files: embedded ones as shipped, hosted ones downloaded into the
 * cache (with progress). When a download fails, the run continues on the embedded default and says why.
 */
async function resolveModelFolder(
  entry: ModelEntry,
  req: RunRequest,
  cancel: CancelToken,
  progress: ProgressThrottle,
  log: (level: 'info' | 'warn', message: string) => void,
): Promise<{ entry: ModelEntry; dir: string | undefined }> {
  if (entry.source.kind === 'embedded') return { entry, dir: undefined };
  if (entry.source.kind === 'folder') return { entry, dir: entry.source.path };
  // A cancel during the download aborts it (nothing half-written stays in the cache).
  const abort = new AbortController();
  const watch = setInterval(() => cancel.cancelled && abort.abort(), 200);
  try {
    const dir = await ensureModel(entry, req.modelCacheDir ?? req.cacheDir, {
      extensionRoot: req.extensionRoot,
      signal: abort.signal,
      onProgress: (p) => progress.offer({ stage: 'download', done: p.bytes, total: p.total ?? Math.max(p.bytes, 1) }),
    });
    return { entry, dir };
  } catch (err) {
    if (cancel.cancelled) throw new RunCancelled();
    const fallback = findModel(DEFAULT_MODEL_ID)!;
    if (!(err instanceof ModelDownloadError) || fallback.id === entry.id) throw err;
    log('warn', `${err.message} Continuing with the embedded ${fallback.name}.`);
    return { entry: fallback, dir: undefined };
  } finally {
    clearInterval(watch);
  }
}

/** Splits the base where about `layers` layers get unfrozen, or explains why fine-tuning is skipped. */
function chooseCut(
  tf: Tf,
  base: BaseModel,
  entry: ModelEntry,
  layers: number,
  log: (l: 'info' | 'warn', m: string) => void,
): CutModel | undefined {
  const cutName = chooseCutLayer(base.layersModel, entry.fineTuneCutPoints, layers);
  if (!cutName) {
    log('warn', `Fine-tuning skipped: ${entry.name} has no known cut point.`);
    return undefined;
  }
  const cut = splitAtLayer(tf, base.layersModel, cutName);
  log('info', `Fine-tuning cut at ${cutName}: ${cut.trainableLayerCount} layers with weights unfrozen (asked for about ${layers} layers).`);
  return cut;
}

interface Activations {
  data: Float32Array;
  perImage: number;
  shape: number[];
}

/** Features for every item: from the cache where possible, else decoded and embedded in batches. */
async function embedAll(
  tf: Tf,
  base: BaseModel,
  extractor: FeatureExtractor,
  cache: FeatureCache,
  /** The dataset's pack in the feature cache (`datasetFolderKey`). */
  packName: string,
  items: DatasetItem[],
  options: TrainOptions,
  cancel: CancelToken,
  progress: ProgressThrottle,
  cut: CutModel | undefined,
): Promise<{ ok: Embedded[]; failed: SkippedFile[]; perSec: number; activations?: Activations }> {
  const features = new Map<DatasetItem, Float32Array>();
  const failed: SkippedFile[] = [];
  const toEmbed: DatasetItem[] = [];
  if (!cut) {
    const hits = await cache.getMany(
      items.map((item) => item.sha256),
      { pack: packName },
    );
    items.forEach((item, i) => {
      const hit = hits[i];
      if (hit) features.set(item, hit);
      else toEmbed.push(item);
    });
  } else {
    toEmbed.push(...items);
  }
  const meter = new RateMeter(toEmbed.length);
  let done = 0;
  const actChunks = new Map<DatasetItem, Float32Array>();
  let actShape: number[] = [];
  progress.offer({ stage: 'features', done: 0, total: toEmbed.length });
  const batchSize = 32;
  for await (const batch of decodeBatches(toEmbed, { size: base.inputSize, batchSize, maxPixels: options.maxPixels })) {
    if (cancel.cancelled) throw new RunCancelled();
    for (const f of batch.failed) {
      failed.push({ path: f.item.rel, reason: f.error instanceof DecodeError ? f.error.reason : 'corrupt', detail: f.error.message });
    }
    const n = batch.items.length;
    if (n > 0) {
      let vectors: Float32Array;
      if (cut) {
        const out = tf.tidy(() => {
          const size = base.inputSize;
          const x = tf.tensor4d(batch.pixels, [n, size, size, 3], 'float32');
          const scaled = x.mul(base.entry.preprocessing.scale).add(base.entry.preprocessing.offset);
          const act = cut.bottom.predict(scaled) as tfType.Tensor;
          const feat = cut.top.predict(act) as tfType.Tensor;
          return [act, feat] as const;
        });
        const actData = (await out[0].data()) as Float32Array;
        actShape = out[0].shape.slice(1);
        const per = actData.length / n;
        batch.items.forEach((item, i) => actChunks.set(item, actData.slice(i * per, (i + 1) * per)));
        vectors = (await out[1].data()) as Float32Array;
        out[0].dispose();
        out[1].dispose();
      } else {
        vectors = await extractor.extract(batch.pixels, n);
      }
      const fs = base.featureSize;
      for (let i = 0; i < n; i++) {
        const v = vectors.slice(i * fs, (i + 1) * fs);
        features.set(batch.items[i], v);
        if (!cut) await cache.put(batch.items[i].sha256, v);
      }
    }
    done += n + batch.failed.length;
    const { perSec, etaSec } = meter.measure(done);
    progress.offer({ stage: 'features', done, total: toEmbed.length, imagesPerSec: perSec, etaSec });
  }
  const ok: Embedded[] = [];
  for (const item of items) {
    const f = features.get(item);
    if (f) ok.push({ item, features: f });
  }
  // Leave a pack of this dataset's vectors for the next run, unless the pack already was exactly that.
  const distinct = new Set(ok.map((e) => e.item.sha256)).size;
  if (!cut && !cache.packServedAll(distinct))
    await cache.writePack(
      packName,
      ok.map((e) => ({ sha256: e.item.sha256, v: e.features })),
    );
  let activations: Activations | undefined;
  if (cut) {
    const per = actShape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(ok.length * per);
    ok.forEach((e, i) => data.set(actChunks.get(e.item)!, i * per));
    activations = { data, perImage: per, shape: actShape };
  }
  return { ok, failed, perSec: toEmbed.length ? meter.measure(done).perSec : 0, activations };
}

async function recomputeFeatures(
  tf: Tf,
  cut: CutModel,
  embedded: { ok: Embedded[]; activations?: Activations },
  split: 'train' | 'val',
  featureSize: number,
): Promise<FeatureSet> {
  const acts = embedded.activations!;
  const idx = embedded.ok.map((e, i) => (e.item.split === split ? i : -1)).filter((i) => i >= 0);
  const x = new Float32Array(idx.length * featureSize);
  for (let start = 0; start < idx.length; start += 32) {
    const chunk = idx.slice(start, start + 32);
    const input = new Float32Array(chunk.length * acts.perImage);
    chunk.forEach((src, j) => input.set(acts.data.subarray(src * acts.perImage, (src + 1) * acts.perImage), j * acts.perImage));
    const out = tf.tidy(() => cut.top.predict(tf.tensor(input, [chunk.length, ...acts.shape])) as tfType.Tensor);
    x.set((await out.data()) as Float32Array, start * featureSize);
    out.dispose();
  }
  return { x, y: Int32Array.from(idx.map((i) => embedded.ok[i].item.classIndex)), n: idx.length, featureSize };
}

function toFeatureSet(rows: Embedded[], featureSize: number): FeatureSet {
  const x = new Float32Array(rows.length * featureSize);
  rows.forEach((r, i) => x.set(r.features, i * featureSize));
  return { x, y: Int32Array.from(rows.map((r) => r.item.classIndex)), n: rows.length, featureSize };
}

/** Updates the per-class counts after images failed to decode. */
function recount(report: DatasetReport, classes: string[], used: DatasetItem[]): void {
  report.classes = classes.map((name, ci) => ({
    name,
    train: used.filter((i) => i.classIndex === ci && i.split === 'train').length,
    val: used.filter((i) => i.classIndex === ci && i.split === 'val').length,
    test: used.filter((i) => i.classIndex === ci && i.split === 'test').length,
  }));
}
