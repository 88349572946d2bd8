// Classifying images with a trained run: the CLI `predict` and the extension's Classify Image
// (which runs the CLI). The run folder is checked before any image is decoded: a model whose
// labels, input size or weight files do not fit would otherwise answer wrongly with success, or
// read a device or a pipe without end (see openRunClassifier).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import { RUN_FILES, type ModelMetadata, type NoveltyFile } from '../../shared/runFolder';
import { noveltyScores, type NoveltyStats } from '../fit/novelty';
import { TrainerError } from '../util/errors';
import { isInside } from '../util/paths';
import type { Tf } from '../util/tf';
import { decodeBatches } from '../dataset/imageDecoder';
import { applyView, isViewName, VIEW_NAMES } from '../../shared/views';
import { averageViewProbs, meanOfViews } from '../fit/viewAveraging';

export interface ImagePrediction {
  path: string;
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  /** Distance to the nearest class in the model's feature space; absent for models saved without novelty statistics. */
  novelty?: number;
  /** True when `novelty` is above the run's threshold: the image is unlike every class. */
  unknown?: boolean;
}

export interface PredictFailure {
  path: string;
  error: string;
}

/** Files under `target` (a file, or a folder walked recursively, hidden entries skipped), sorted. */
export async function listImageFiles(target: string): Promise<string[]> {
  const stat = await fs.promises.stat(target);
  if (stat.isFile()) return [path.resolve(target)];
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(path.resolve(target));
  return out.sort();
}

/** A run folder whose model cannot be used as it is: the message names the file and the problem. */
export class RunFolderProblem extends TrainerError {
  override readonly name = 'RunFolderProblem';

  constructor(message: string) {
    super('model', message);
  }
}

/** A run's classifier, checked against its labels and input size, ready to predict. */
export interface RunClassifier {
  runDir: string;
  meta: ModelMetadata;
  model: tfType.LayersModel;
  /** The unknown-image detector, when the run saved one. */
  novelty?: Omit<NoveltyStats, 'fit' | 'valScores'> & { threshold: number };
}

// JSON files of a run folder are small; a larger one is not one the engine wrote.
const MAX_JSON_BYTES = 256 * 1024 * 1024;

const BYTES_PER_VALUE: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

function kindOf(stat: fs.Stats): string {
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  if (stat.isSocket()) return 'a socket';
  if (stat.isDirectory()) return 'a folder';
  return 'not a regular file';
}

/**
 * The stat of `rel` (relative to `runDir`) when it is a regular file, not a link: a link may point
 * out of the folder or at /dev/zero, and opening a FIFO blocks for ever.
 */
async function regularFile(runDir: string, rel: string): Promise<fs.Stats | undefined> {
  let stat: fs.Stats;
  try {
    stat = await fs.promises.lstat(path.join(runDir, rel));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RunFolderProblem(`${rel} cannot be read: ${(err as Error).message}`);
  }
  if (stat.isSymbolicLink())
    throw new RunFolderProblem(`${rel} is a symbolic link; the model's files must be regular files in the run folder`);
  if (!stat.isFile()) throw new RunFolderProblem(`${rel} is ${kindOf(stat)}, not a regular file`);
  return stat;
}

/** The bytes of a regular file, read through a handle that cannot follow a link swapped in after the check. */
async function readRegular(runDir: string, rel: string, size: number): Promise<Buffer> {
  const flags = fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0) | (fs.constants.O_NONBLOCK ?? 0);
  const handle = await fs.promises.open(path.join(runDir, rel), flags).catch((err: Error) => {
    throw new RunFolderProblem(`${rel} cannot be read: ${err.message}`);
  });
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new RunFolderProblem(`${rel} is ${kindOf(stat)}, not a regular file`);
    if (stat.size !== size) throw new RunFolderProblem(`${rel} changed while it was read`);
    const buffer = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buffer, 0, size, 0);
    if (bytesRead !== size) throw new RunFolderProblem(`${rel} changed while it was read`);
    return buffer;
  } finally {
    await handle.close();
  }
}

/** A JSON file of the run folder (a regular file, size-capped), parsed; undefined when it does not exist. */
export async function readJsonFile(runDir: string, rel: string): Promise<unknown> {
  const stat = await regularFile(runDir, rel);
  if (!stat) return undefined;
  if (stat.size > MAX_JSON_BYTES)
    throw new RunFolderProblem(`${rel} has ${stat.size} bytes, more than a run folder's JSON file ever holds`);
  const text = (await readRegular(runDir, rel, stat.size)).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RunFolderProblem(`${rel} is not valid JSON`);
  }
}

/** The label list of `rel`, each a string. */
function checkLabels(rel: string, labels: unknown): string[] {
  if (!Array.isArray(labels)) throw new RunFolderProblem(`${rel} holds no list of labels`);
  labels.forEach((label: unknown, i) => {
    if (typeof label !== 'string') throw new RunFolderProblem(`${rel}: label ${i + 1} is not a string (${JSON.stringify(label)})`);
  });
  return labels as string[];
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

interface ModelJson {
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: tfType.io.WeightsManifestEntry[] }[];
}

function checkModelJson(rel: string, value: unknown): ModelJson {
  const v = value as Partial<ModelJson> | undefined;
  const groups = v?.weightsManifest;
  if (
    typeof v?.modelTopology !== 'object' ||
    !Array.isArray(groups) ||
    !groups.every((g) => Array.isArray(g?.paths) && g.paths.every((p) => typeof p === 'string') && Array.isArray(g.weights))
  ) {
    throw new RunFolderProblem(`${rel} is not a TensorFlow.js LayersModel (modelTopology or weightsManifest missing)`);
  }
  return v as ModelJson;
}

/** Bytes the manifest's weights take, or undefined when a dtype's size is not known. */
function manifestBytes(specs: tfType.io.WeightsManifestEntry[]): number | undefined {
  let total = 0;
  for (const spec of specs) {
    const per = BYTES_PER_VALUE[spec.quantization?.dtype ?? spec.dtype];
    if (per === undefined || !spec.shape.every((d) => Number.isInteger(d) && d >= 0)) return undefined;
    total += spec.shape.reduce((a, b) => a * b, 1) * per;
  }
  return total;
}

/** The weight files of model.json, checked (inside the model folder, regular, of the manifest's size) and read. */
async function readWeights(runDir: string, json: ModelJson): Promise<{ specs: tfType.io.WeightsManifestEntry[]; data: ArrayBuffer }> {
  const modelDir = path.join(runDir, RUN_FILES.modelDir);
  const specs: tfType.io.WeightsManifestEntry[] = [];
  const files: { rel: string; size: number }[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    let size = 0;
    const rels: string[] = [];
    for (const p of group.paths) {
      const rel = path.posix.join(RUN_FILES.modelDir, p);
      if (!isInside(modelDir, path.join(modelDir, p)) || path.isAbsolute(p))
        throw new RunFolderProblem(`${RUN_FILES.modelDir}/model.json names a weights file outside the model folder: ${p}`);
      const stat = await regularFile(runDir, rel);
      if (!stat) throw new RunFolderProblem(`${rel} is missing (model.json names it)`);
      files.push({ rel, size: stat.size });
      rels.push(rel);
      size += stat.size;
    }
    const expected = manifestBytes(group.weights);
    if (expected !== undefined && size !== expected)
      throw new RunFolderProblem(
        `${rels.join(' + ')} ${rels.length === 1 ? 'has' : 'have'} ${size} bytes but model.json's manifest needs ${expected}`,
      );
  }
  const all = Buffer.concat(await Promise.all(files.map((f) => readRegular(runDir, f.rel, f.size))));
  return { specs, data: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer };
}

/** The label count and input size the loaded model actually has, against what the folder says. */
function checkAgainstModel(model: tfType.LayersModel, meta: ModelMetadata, labelsJson: string[] | undefined): void {
  const outputs = model.outputs[0]?.shape.at(-1);
  const input = model.inputs[0]?.shape;
  const metaRel = `${RUN_FILES.modelDir}/${RUN_FILES.metadata}`;
  if (typeof outputs === 'number') {
    if (labelsJson && labelsJson.length !== outputs)
      throw new RunFolderProblem(
        `${RUN_FILES.labels} has ${plural(labelsJson.length, 'label')} but the model has ${plural(outputs, 'output')}`,
      );
    if (meta.labels.length !== outputs)
      throw new RunFolderProblem(`${metaRel} has ${plural(meta.labels.length, 'label')} but the model has ${plural(outputs, 'output')}`);
  }
  if (input && (input[1] !== meta.inputSize || input[2] !== meta.inputSize))
    throw new RunFolderProblem(`${metaRel} has inputSize ${meta.inputSize} but the model takes ${input[1]}×${input[2]} pixels`);
  if (labelsJson && labelsJson.some((label, i) => label !== meta.labels[i]))
    throw new RunFolderProblem(`${RUN_FILES.labels} names other classes than ${metaRel}`);
}

/**
 * Opens the classifier of `runDir` after checking the folder: model.json and its weight files
 * (regular files inside the folder, of the sizes the manifest needs), metadata.json and labels.json
 * (strings, as many as the model's outputs) and the input size. Throws `RunFolderProblem` naming
 * the file and the problem; nothing of an image is read before this returns.
 */
export async function openRunClassifier(tf: Tf, runDir: string): Promise<RunClassifier> {
  const modelRel = `${RUN_FILES.modelDir}/model.json`;
  const metaRel = `${RUN_FILES.modelDir}/${RUN_FILES.metadata}`;
  const json = await readJsonFile(runDir, modelRel);
  if (json === undefined) {
    throw new RunFolderProblem(
      `${runDir} holds no trained model (no ${RUN_FILES.modelDir}/model.json): pick a run that finished or saved a checkpoint.`,
    );
  }
  const modelJson = checkModelJson(modelRel, json);
  const metaValue = (await readJsonFile(runDir, metaRel)) as Partial<ModelMetadata> | undefined;
  if (metaValue?.format !== 'image-trainer/classifier@1')
    throw new RunFolderProblem(`${metaRel} ${metaValue === undefined ? 'is missing' : 'does not describe an Image Trainer classifier'}`);
  const meta = { ...metaValue, labels: checkLabels(metaRel, metaValue.labels) } as ModelMetadata;
  if (meta.views !== undefined && !(Array.isArray(meta.views) && meta.views.length > 0 && meta.views.every(isViewName)))
    throw new RunFolderProblem(`${metaRel} has views that are not a list of known views (${VIEW_NAMES.join(', ')})`);
  if (!Number.isInteger(meta.inputSize) || meta.inputSize < 1) throw new RunFolderProblem(`${metaRel} has no valid inputSize`);
  const labelsValue = await readJsonFile(runDir, RUN_FILES.labels);
  const labelsJson = labelsValue === undefined ? undefined : checkLabels(RUN_FILES.labels, labelsValue);
  const weights = await readWeights(runDir, modelJson);
  let model: tfType.LayersModel;
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: weights.specs, weightData: weights.data }),
    );
  } catch (err) {
    throw new RunFolderProblem(`${modelRel} does not load: ${(err as Error).message}`);
  }
  try {
    checkAgainstModel(model, meta, labelsJson);
  } catch (err) {
    model.dispose();
    throw err;
  }
  try {
    return { runDir, meta, model, novelty: await readNovelty(runDir, model) };
  } catch (err) {
    model.dispose();
    throw err;
  }
}

function floatsOf(rel: string, base64: unknown, length: number): Float32Array {
  const bytes = typeof base64 === 'string' ? Buffer.from(base64, 'base64') : Buffer.alloc(0);
  if (bytes.byteLength !== length * 4) throw new RunFolderProblem(`${rel} holds ${bytes.byteLength / 4} values where ${length} are needed`);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** `model/novelty.json`, checked against the model (its feature size and class count); undefined for runs saved before it existed. */
async function readNovelty(runDir: string, model: tfType.LayersModel): Promise<RunClassifier['novelty']> {
  const rel = `${RUN_FILES.modelDir}/${RUN_FILES.novelty}`;
  const value = (await readJsonFile(runDir, rel)) as Partial<NoveltyFile> | undefined;
  if (value === undefined) return undefined;
  const head = model.layers.at(-1);
  const featureSize = (head as tfType.LayersModel | undefined)?.inputs?.[0]?.shape.at(-1);
  const classes = model.outputs[0]?.shape.at(-1);
  if (value.format !== 'image-trainer/novelty@1' || typeof value.threshold !== 'number')
    throw new RunFolderProblem(`${rel} does not describe an Image Trainer unknown-image detector`);
  if (head?.name !== 'head' || typeof featureSize !== 'number' || typeof classes !== 'number')
    throw new RunFolderProblem(`${rel} is for a model whose head reads pooled features; this model has no such head`);
  if (value.featureSize !== featureSize || value.classes !== classes)
    throw new RunFolderProblem(`${rel} is for ${value.featureSize} features and ${value.classes} classes, not this model's`);
  const f = featureSize;
  return {
    featureSize: f,
    classes,
    threshold: value.threshold,
    whitening: floatsOf(rel, value.whitening, f * f),
    means: floatsOf(rel, value.means, classes * f),
  };
}

/**
 * Probabilities of a batch averaged over the run's views, and the novelty score of each image when
 * the run has a detector (from the mean of its views' head inputs): then the layers are applied one
 * by one (pixels → preprocess → base → head) to keep the head's input.
 */
async function classifyBatch(
  tf: Tf,
  run: RunClassifier,
  pixels: Uint8Array,
  n: number,
): Promise<{ probs: Float32Array; novelty?: Float64Array }> {
  const size = run.meta.inputSize;
  const { model, novelty } = run;
  const views = run.meta.views ?? ['identity'];
  const plane = size * size * 3;
  const input = new Uint8Array(views.length * n * plane);
  views.forEach((view, v) => applyView(pixels, n, size, view, input.subarray(v * n * plane, (v + 1) * n * plane)));
  const [features, out] = tf.tidy(() => {
    let x: tfType.Tensor = tf.tensor4d(input, [views.length * n, size, size, 3], 'float32');
    if (!novelty) return [undefined, model.predict(x) as tfType.Tensor] as const;
    for (const layer of model.layers.slice(1, -1)) x = layer.apply(x) as tfType.Tensor;
    return [x, model.layers[model.layers.length - 1].apply(x) as tfType.Tensor] as const;
  });
  try {
    const all = (await out.data()) as Float32Array;
    const k = all.length / (views.length * n);
    const probs = averageViewProbs(
      views.map((_, v) => all.subarray(v * n * k, (v + 1) * n * k)),
      k,
    );
    if (!features || !novelty) return { probs };
    const feats = (await features.data()) as Float32Array;
    const f = feats.length / (views.length * n);
    const mean = meanOfViews(
      views.map((_, v) => ({ x: feats.subarray(v * n * f, (v + 1) * n * f), y: new Int32Array(n), n, featureSize: f })),
    ).x;
    return { probs, novelty: noveltyScores(novelty, mean, n) };
  } finally {
    tf.dispose(features ? [features, out] : [out]);
  }
}

/**
 * Runs the classifier of a run (its folder, checked by openRunClassifier, or one already open) on
 * the files, batch by batch; yields a prediction or a failure for each, and disposes the model.
 */
export async function* predictImages(
  tf: Tf,
  run: string | RunClassifier,
  files: string[],
  maxPixels = 100_000_000,
): AsyncGenerator<ImagePrediction | PredictFailure> {
  const classifier = typeof run === 'string' ? await openRunClassifier(tf, run) : run;
  const { meta, model, novelty: detector } = classifier;
  const size = meta.inputSize;
  try {
    for await (const batch of decodeBatches(
      files.map((abs) => ({ abs })),
      { size, batchSize: 16, maxPixels },
    )) {
      const failedPaths = new Map(batch.failed.map((f) => [f.item.abs, f.error.message]));
      const n = batch.items.length;
      const { probs, novelty } = n > 0 ? await classifyBatch(tf, classifier, batch.pixels, n) : { probs: new Float32Array(0) };
      const k = meta.labels.length;
      let i = 0;
      for (const item of [...batch.items, ...batch.failed.map((f) => f.item)]) {
        const failure = failedPaths.get(item.abs);
        if (failure !== undefined) {
          yield { path: item.abs, error: failure };
          continue;
        }
        const row = Array.from(probs.subarray(i * k, (i + 1) * k));
        const score = novelty?.[i];
        i++;
        const top = row
          .map((confidence, c) => ({ label: meta.labels[c], confidence }))
          .sort((a, b) => b.confidence - a.confidence)
          .slice(0, 3);
        const unknown = score === undefined || !detector ? {} : { novelty: score, unknown: score > detector.threshold };
        yield { path: item.abs, label: top[0].label, confidence: top[0].confidence, top, ...unknown };
      }
    }
  } finally {
    model.dispose();
  }
}
