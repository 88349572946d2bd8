// A user's own TF.js LayersModel as a base model: a folder with model.json + weight files and a
// small descriptor (`image-trainer-model.json`) saying what the registry says for built-in models.

import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { isManifest, manifestWeightBytes, type ManifestGroup } from './modelDownload';
import { MINUS_ONE_TO_ONE } from './modelRegistry';
import type { ModelEntry, Preprocessing } from './modelRegistry';
import { TrainerError } from '../util/errors';

export const CUSTOM_MODEL_DESCRIPTOR_FILE = 'image-trainer-model.json';

/** What the user writes in `image-trainer-model.json` beside their model.json. */
export interface CustomModelDescriptor {
  name: string;
  /** Square input side in pixels. */
  inputSize: number;
  /** `mobilenet`: [-1, 1]; `0-1`: x / 255; or `x * scale + offset` on [0, 255]. */
  preprocessing: Preprocessing | 'mobilenet' | '0-1';
  /** Layer whose output is the feature vector (pooled to a vector when 4-D). */
  featureLayer: string;
  /** Layers at which fine-tuning may cut, deepest first; none means the model is used frozen only. */
  fineTuneCutPoints?: string[];
}

/** A descriptor or model folder that cannot be used; `problems` lists every reason, one per line. */
export class CustomModelError extends TrainerError {
  override readonly name = 'CustomModelError';
  constructor(
    readonly folder: string,
    readonly problems: string[],
  ) {
    super('model', `The model in ${folder} cannot be used: ${problems.join(' ')}`);
  }
}

/** The subset of tfjs this module needs (so a caller can pass the tf it trains with). */
export interface TfForModelShape {
  models: { modelFromJSON(json: object): Promise<LayersModelShape> };
}
interface LayersModelShape {
  inputs: { shape: (number | null)[] }[];
  getLayer(name: string): { outputShape: unknown };
  dispose(): void;
}

/** Reads and validates a custom model folder into a registry entry (`family: 'custom'`, `source.kind: 'folder'`). */
export async function readCustomModel(folder: string, opts: { tf?: TfForModelShape } = {}): Promise<ModelEntry> {
  const dir = path.resolve(folder);
  const modelJsonPath = path.join(dir, 'model.json');
  const problems: string[] = [];
  // Each step collects every problem it finds, and the next step runs only on what passed, so
  // the user sees all that is wrong at one level instead of one problem per try.
  const fail = () => new CustomModelError(dir, problems);

  const modelJson = await readJson(modelJsonPath, 'model.json', problems);
  const descriptorJson = await readJson(path.join(dir, CUSTOM_MODEL_DESCRIPTOR_FILE), CUSTOM_MODEL_DESCRIPTOR_FILE, problems);
  if (problems.length > 0) throw fail();

  const descriptor = validateDescriptor(descriptorJson, problems);
  const { topology, manifest } = checkModelJson(modelJson, problems);
  if (problems.length > 0 || !descriptor || !topology || !manifest) throw fail();

  checkLayerNames(descriptor, topLevelLayerNames(topology), problems);
  const weights = await readWeightFiles(dir, modelJsonPath, manifest, problems);
  if (problems.length > 0) throw fail();

  const tf = opts.tf ?? ((await import('@tensorflow/tfjs')) as unknown as TfForModelShape);
  const featureSize = await checkTopology(tf, topology, descriptor, problems);
  if (problems.length > 0 || featureSize === undefined) throw fail();

  return {
    // The content hash is in the id so the feature cache is invalidated when the weights change.
    id: `custom_${slug(descriptor.name)}_${weights.digest.slice(0, 12)}`,
    name: descriptor.name,
    family: 'custom',
    source: { kind: 'folder', path: dir },
    inputSize: descriptor.inputSize,
    preprocessing: toPreprocessing(descriptor.preprocessing),
    featureLayer: descriptor.featureLayer,
    featureSize,
    fineTuneCutPoints: descriptor.fineTuneCutPoints ?? [],
    files: weights.files,
  };
}

/** The topology and weights manifest of a LayersModel's model.json; a GraphModel or a part missing is a problem. */
function checkModelJson(modelJson: unknown, problems: string[]): { topology?: Record<string, unknown>; manifest?: ManifestGroup[] } {
  const topology = (modelJson as { modelTopology?: unknown }).modelTopology as Record<string, unknown> | undefined;
  const format = (modelJson as { format?: unknown }).format;
  const manifest = (modelJson as { weightsManifest?: unknown }).weightsManifest;
  if (format === 'graph-model' || (topology && 'node' in topology)) {
    problems.push('model.json is a TF.js GraphModel (a converted SavedModel); only a LayersModel (Keras) can be used as a base model.');
  } else if (!topology || typeof topology !== 'object') {
    problems.push('model.json has no modelTopology.');
  }
  if (!isManifest(manifest)) problems.push('model.json has no valid weightsManifest.');
  return { topology, manifest: isManifest(manifest) ? manifest : undefined };
}

/** The descriptor's feature layer and cut points must be layers of the model; a miss names the closest ones. */
function checkLayerNames(descriptor: CustomModelDescriptor, layerNames: string[], problems: string[]): void {
  if (!layerNames.includes(descriptor.featureLayer)) {
    problems.push(
      `The feature layer "${descriptor.featureLayer}" is not in the model${closeNamesHint(descriptor.featureLayer, layerNames)}.`,
    );
  }
  for (const cut of descriptor.fineTuneCutPoints ?? []) {
    if (!layerNames.includes(cut))
      problems.push(`The fine-tuning cut point "${cut}" is not in the model${closeNamesHint(cut, layerNames)}.`);
  }
}

/**
 * Reads every weight file: each must be inside the folder, present, and together as large as the
 * weight specs say. Returns their sizes and sha256, and a digest of model.json and all of them.
 */
async function readWeightFiles(
  dir: string,
  modelJsonPath: string,
  manifest: ManifestGroup[],
  problems: string[],
): Promise<{ files: { path: string; bytes: number; sha256: string }[]; digest: string }> {
  const files: { path: string; bytes: number; sha256: string }[] = [];
  const hash = createHash('sha256');
  hash.update(await fsp.readFile(modelJsonPath));
  let total = 0;
  for (const file of manifest.flatMap((g) => g.paths)) {
    const full = path.resolve(dir, file);
    if (!full.startsWith(dir + path.sep)) {
      problems.push(`model.json names a weight file outside its folder (${file}).`);
      continue;
    }
    try {
      const data = await fsp.readFile(full);
      const sha256 = createHash('sha256').update(data).digest('hex');
      hash.update(sha256);
      files.push({ path: file, bytes: data.byteLength, sha256 });
      total += data.byteLength;
    } catch {
      problems.push(`The weight file ${file} named in model.json is missing.`);
    }
  }
  const expected = manifestWeightBytes(manifest);
  if (problems.length === 0 && expected !== undefined && expected !== total) {
    problems.push(`The weight files hold ${total} bytes but model.json describes ${expected}: they do not belong to this model.json.`);
  }
  return { files, digest: hash.digest('hex') };
}

/**
 * Builds the topology alone (no weights), which tells the input shape and the feature layer's
 * size: checks the input takes `inputSize` RGB images and returns the feature size.
 */
async function checkTopology(
  tf: TfForModelShape,
  topology: Record<string, unknown>,
  descriptor: CustomModelDescriptor,
  problems: string[],
): Promise<number | undefined> {
  let model: LayersModelShape | undefined;
  try {
    model = await tf.models.modelFromJSON({ modelTopology: topology });
    const inputShape = model.inputs[0]?.shape ?? [];
    const [, h, w, c] = inputShape;
    if (inputShape.length !== 4)
      problems.push(`The model takes input of shape [${inputShape.join(', ')}], not an image batch [batch, height, width, 3].`);
    else {
      if (c !== 3) problems.push(`The model takes ${c} channels; images are given as 3 (RGB).`);
      if ((h !== null && h !== descriptor.inputSize) || (w !== null && w !== descriptor.inputSize)) {
        problems.push(`The descriptor says inputSize ${descriptor.inputSize}, but the model takes ${h}×${w} images.`);
      }
    }
    const outputShape = model.getLayer(descriptor.featureLayer).outputShape;
    const shape = Array.isArray(outputShape) && Array.isArray(outputShape[0]) ? outputShape[0] : outputShape;
    const last = Array.isArray(shape) ? shape[shape.length - 1] : undefined;
    if (typeof last === 'number' && last > 0) return last;
    problems.push(`The feature layer "${descriptor.featureLayer}" has no fixed output size (${JSON.stringify(outputShape)}).`);
  } catch (err) {
    problems.push(`model.json's topology could not be built with TensorFlow.js: ${err instanceof Error ? err.message : String(err)}`);
  } finally {
    model?.dispose();
  }
  return undefined;
}

/** The preprocessing a descriptor names, as scale and offset on [0, 255]. */
export function toPreprocessing(p: CustomModelDescriptor['preprocessing']): Preprocessing {
  if (p === 'mobilenet') return { ...MINUS_ONE_TO_ONE };
  if (p === '0-1') return { scale: 1 / 255, offset: 0 };
  return { scale: p.scale, offset: p.offset };
}

function validateDescriptor(json: unknown, problems: string[]): CustomModelDescriptor | undefined {
  const before = problems.length;
  const where = CUSTOM_MODEL_DESCRIPTOR_FILE;
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    problems.push(`${where} must be a JSON object with name, inputSize, preprocessing and featureLayer.`);
    return undefined;
  }
  const d = json as Record<string, unknown>;
  if (typeof d.name !== 'string' || d.name.trim() === '') problems.push(`${where}: "name" must be a non-empty string.`);
  if (typeof d.inputSize !== 'number' || !Number.isInteger(d.inputSize) || d.inputSize < 16 || d.inputSize > 2048) {
    problems.push(`${where}: "inputSize" must be a whole number of pixels between 16 and 2048 (got ${JSON.stringify(d.inputSize)}).`);
  }
  const p = d.preprocessing;
  const validObject =
    p !== null &&
    typeof p === 'object' &&
    Number.isFinite((p as Preprocessing).scale) &&
    Number.isFinite((p as Preprocessing).offset) &&
    (p as Preprocessing).scale !== 0;
  if (p !== 'mobilenet' && p !== '0-1' && !validObject) {
    problems.push(
      `${where}: "preprocessing" must be "mobilenet" ([-1, 1]), "0-1", or {"scale": number, "offset": number} (got ${JSON.stringify(p)}).`,
    );
  }
  if (typeof d.featureLayer !== 'string' || d.featureLayer === '')
    problems.push(`${where}: "featureLayer" must name a layer of the model.`);
  if (
    d.fineTuneCutPoints !== undefined &&
    (!Array.isArray(d.fineTuneCutPoints) || !d.fineTuneCutPoints.every((c) => typeof c === 'string'))
  ) {
    problems.push(`${where}: "fineTuneCutPoints" must be a list of layer names.`);
  }
  return problems.length === before ? (d as unknown as CustomModelDescriptor) : undefined;
}

async function readJson(file: string, label: string, problems: string[]): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    problems.push(
      label === 'model.json'
        ? 'There is no model.json in the folder (a TF.js LayersModel: model.json plus weight files).'
        : `There is no ${label} in the folder: it says the model's name, inputSize, preprocessing and featureLayer.`,
    );
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    problems.push(`${label} is not valid JSON (${err instanceof Error ? err.message : String(err)}).`);
    return undefined;
  }
}

/** Names of the model's own layers (Functional or Sequential, old and new Keras JSON). */
function topLevelLayerNames(topology: Record<string, unknown>): string[] {
  const root = (topology.model_config as Record<string, unknown> | undefined) ?? topology;
  const config = root.config as unknown;
  const layers = Array.isArray(config) ? config : ((config as { layers?: unknown } | undefined)?.layers ?? []);
  if (!Array.isArray(layers)) return [];
  return layers
    .map((l: { name?: unknown; config?: { name?: unknown } }) => l?.name ?? l?.config?.name)
    .filter((n): n is string => typeof n === 'string');
}

/** ", close names: a, b, c" — the nearest layer names by edit distance, or a few names to show the style. */
function closeNamesHint(wanted: string, names: string[]): string {
  if (names.length === 0) return ' (the topology lists no layers)';
  const w = wanted.toLowerCase();
  const scored = names
    .map((n) => ({ n, d: n.toLowerCase().includes(w) || w.includes(n.toLowerCase()) ? 0 : editDistance(w, n.toLowerCase()) }))
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n));
  const close = scored.filter((s) => s.d <= Math.max(3, Math.floor(w.length / 3))).slice(0, 5);
  if (close.length > 0) return `; close names: ${close.map((s) => s.n).join(', ')}`;
  return `; its last layers are: ${names.slice(-5).join(', ')}`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_+|_+$/g, '')
      .slice(0, 40) || 'model'
  );
}
