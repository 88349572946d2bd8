// Grad-CAM heatmaps of what a trained classifier looked at. The base is frozen (or fine-tuned and
// saved with the classifier) and the head sits on global average pooling, so one forward pass of
// the base to its un-pooled last feature map is all the network work: the gradient of the class
// score with respect to the map is the gradient with respect to the pooled vector spread evenly
// over the map's cells (d score / d map[i,j,k] = (1/HW) · d score / d pooled[k]), and it only
// needs the head. No gradient ever goes through a convolution, so this runs on every backend,
// WebAssembly included. Computed on demand for one image; nothing is cached.
import type * as tfType from '@tensorflow/tfjs';
import { heatmapRgba } from '../../shared/heatColours';
import type { ModelMetadata } from '../../shared/runFolder';
import { decodeImage } from '../dataset/imageDecoder';
import { sharp } from '../dataset/lazySharp';
import { buildFoldedGraph, type FoldedGraph } from '../models/foldedGraph';
import type { RunClassifier } from '../models/predict';
import { TrainerError } from '../util/errors';
import type { Tf } from '../util/tf';

/** A heatmap over a whole image: `width * height` values in [0, 1], row-major. */
export interface Heatmap {
  width: number;
  height: number;
  values: Float32Array;
}

/** What `explain` reports for one image: the prediction, the class explained and its heatmap. */
export interface Explanation {
  path: string;
  label: string;
  confidence: number;
  class: string;
  heatmap: Heatmap;
}

/** A run's classifier split where Grad-CAM needs it: pixels → last feature map, and the head. */
export interface GradCamModel {
  meta: ModelMetadata;
  /** Preprocessed pixels `[1, size, size, 3]` → the last feature map `[1, h, w, channels]`; the caller owns the result. */
  featureMap(x: tfType.Tensor4D): tfType.Tensor4D;
  /** `fused` when the base runs as the folded graph (several times faster on WebAssembly), else `layers` and why. */
  route: string;
  /** The classifier's head: pooled features → class probabilities. */
  head: tfType.layers.Layer;
  dispose(): void;
}

/** The class activation map of one image on the model's feature grid, and the prediction. */
export interface ClassActivation {
  probabilities: Float32Array;
  classIndex: number;
  /** `gridHeight * gridWidth` values in [0, 1] (all 0 when nothing speaks for the class). */
  grid: Float32Array;
  gridWidth: number;
  gridHeight: number;
}

// The longer side of a heatmap in values: enough to see where the model looked (the feature grid
// itself is 7×7 for a 224-pixel input) without a JSON line of millions of numbers for a photo.
export const MAX_HEATMAP_SIDE = 256;

function isModel(layer: tfType.layers.Layer): layer is tfType.LayersModel {
  return Array.isArray((layer as Partial<tfType.LayersModel>).layers);
}

/**
 * Splits a run's classifier (input → preprocessing → base → head) for Grad-CAM: the base up to the
 * input of its global average pooling, found from the base's output. Throws a `model` error for a
 * base whose features are not a global average of a feature map.
 */
export function gradCamModelOf(tf: Tf, classifier: RunClassifier): GradCamModel {
  const layers = classifier.model.layers;
  const head = layers.at(-1);
  const base = layers.at(-2);
  if (!head || !base || !isModel(base)) {
    throw new TrainerError('model', 'The classifier is not a base model followed by a head; it cannot be explained with Grad-CAM');
  }
  const features = base.outputs[0];
  let map: tfType.SymbolicTensor = features;
  if (features.rank !== 4) {
    const pooling = features.sourceLayer;
    const input = pooling.input;
    if (pooling.getClassName() !== 'GlobalAveragePooling2D' || Array.isArray(input) || input.rank !== 4) {
      throw new TrainerError(
        'model',
        `The base model's features come from ${pooling.getClassName()} '${pooling.name}', not from global average pooling of a feature map; Grad-CAM needs the map`,
      );
    }
    map = input;
  }
  const layersMap = map === features ? base : tf.model({ inputs: base.inputs, outputs: map });
  const viaLayers = (x: tfType.Tensor4D) => layersMap.predict(x) as tfType.Tensor4D;
  const fused = fusedFeatureMap(tf, base, map.sourceLayer.name, viaLayers, classifier.meta.inputSize);
  return {
    meta: classifier.meta,
    featureMap: 'graph' in fused ? (x) => fused.graph.run(x) as tfType.Tensor as tfType.Tensor4D : viaLayers,
    route: 'graph' in fused ? 'fused' : `layers (${fused.why})`,
    head,
    dispose: () => {
      if ('graph' in fused) fused.graph.dispose();
      // The sub-model shares the classifier's layers: disposing the classifier frees them all.
      classifier.model.dispose();
    },
  };
}

/**
 * The base's folded graph up to the map layer, unpooled, when it builds and agrees with the
 * layers model on a seeded random image (as the feature extractor checks its own); else why not.
 */
function fusedFeatureMap(
  tf: Tf,
  base: tfType.LayersModel,
  mapLayer: string,
  viaLayers: (x: tfType.Tensor4D) => tfType.Tensor4D,
  size: number,
): { graph: FoldedGraph } | { why: string } {
  const built = buildFoldedGraph(tf, base, mapLayer, { pool: false });
  if ('unsupported' in built) return { why: built.unsupported };
  let diff: number;
  try {
    diff = tf.tidy(() => {
      const x = tf.randomUniform([1, size, size, 3], -1, 1, 'float32', 13) as tfType.Tensor4D;
      return tf.max(tf.abs(tf.sub(built.run(x), viaLayers(x)))).dataSync()[0];
    });
  } catch (err) {
    built.dispose();
    return { why: `the folded graph failed its self-check (${err instanceof Error ? err.message : String(err)})` };
  }
  // `!(diff <= …)` so that a NaN difference fails too.
  if (!(diff <= 1e-3)) {
    built.dispose();
    return { why: `the folded graph disagrees with the layers model (max difference ${diff.toExponential(2)})` };
  }
  return { graph: built };
}

/** The class scores before softmax: the head's layers in inference mode, the last Dense without its activation. */
function headLogits(tf: Tf, head: tfType.layers.Layer, pooled: tfType.Tensor2D): tfType.Tensor2D {
  const parts = isModel(head) ? head.layers : [head];
  let x: tfType.Tensor = pooled;
  parts.forEach((layer, i) => {
    if (i === parts.length - 1 && layer.getClassName() === 'Dense') {
      // Grad-CAM explains the class score, not the softmax: a saturated probability has no gradient.
      const [kernel, bias] = layer.getWeights();
      x = bias
        ? tf.add(tf.matMul(x as tfType.Tensor2D, kernel as tfType.Tensor2D), bias)
        : tf.matMul(x as tfType.Tensor2D, kernel as tfType.Tensor2D);
    } else {
      x = layer.apply(x, { training: false }) as tfType.Tensor;
    }
  });
  return x as tfType.Tensor2D;
}

/** Grad-CAM of one decoded image (`size*size*3` RGB bytes) for `classIndex`, or for the predicted class. */
export function classActivation(tf: Tf, model: GradCamModel, pixels: Uint8Array, classIndex?: number): ClassActivation {
  const { inputSize: size, input } = model.meta;
  return tf.tidy(() => {
    const x = tf.add(tf.mul(tf.tensor4d(pixels, [1, size, size, 3], 'float32'), input.scale), input.offset) as tfType.Tensor4D;
    const map = model.featureMap(x);
    const [, gridHeight, gridWidth, channels] = map.shape;
    const pooled = tf.mean(map, [1, 2]) as tfType.Tensor2D;
    const logits = headLogits(tf, model.head, pooled);
    const probabilities = tf.softmax(logits).dataSync() as Float32Array;
    const target = classIndex ?? probabilities.indexOf(Math.max(...probabilities));
    const oneHot = tf.oneHot([target], probabilities.length).toFloat();
    const gradient = tf.grad((p: tfType.Tensor) => tf.sum(tf.mul(headLogits(tf, model.head, p as tfType.Tensor2D), oneHot)))(pooled);
    // The channel weights are the spatial means of the map's gradients: the pooled gradient / HW, a
    // constant factor that the normalisation below removes.
    const weighted = tf.relu(tf.matMul(tf.reshape(map, [gridHeight * gridWidth, channels]), tf.reshape(gradient, [channels, 1])));
    const cam = weighted.dataSync() as Float32Array;
    const max = cam.reduce((m, v) => Math.max(m, v), 0);
    const grid = new Float32Array(cam.length);
    if (max > 0) for (let i = 0; i < cam.length; i++) grid[i] = cam[i] / max;
    return { probabilities: Float32Array.from(probabilities), classIndex: target, grid, gridWidth, gridHeight };
  });
}

/** Bilinear sample of `grid` at continuous cell coordinates (cell centres at integer + 0.5), clamped at the edges. */
function sampleGrid(a: ClassActivation, gx: number, gy: number): number {
  const x = Math.min(Math.max(gx - 0.5, 0), a.gridWidth - 1);
  const y = Math.min(Math.max(gy - 0.5, 0), a.gridHeight - 1);
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = Math.min(x0 + 1, a.gridWidth - 1);
  const y1 = Math.min(y0 + 1, a.gridHeight - 1);
  const fx = x - x0;
  const fy = y - y0;
  const at = (cx: number, cy: number) => a.grid[cy * a.gridWidth + cx];
  return (at(x0, y0) * (1 - fx) + at(x1, y0) * fx) * (1 - fy) + (at(x0, y1) * (1 - fx) + at(x1, y1) * fx) * fy;
}

/**
 * The activation map laid over the whole original image of `width`×`height` pixels (as shown,
 * EXIF rotation applied), undoing the decoder's resize with `fit: 'cover'` and its centre crop:
 * what the crop cut off, the model never saw, and is 0. The longer side has at most `maxSide` values.
 */
export function heatmapOverImage(
  a: ClassActivation,
  inputSize: number,
  width: number,
  height: number,
  maxSide = MAX_HEATMAP_SIDE,
): Heatmap {
  const step = Math.max(1, Math.max(width, height) / maxSide);
  const outWidth = Math.max(1, Math.round(width / step));
  const outHeight = Math.max(1, Math.round(height / step));
  // As the decoder: the shorter side scaled to inputSize, the longer one cropped equally at both ends.
  const scale = inputSize / Math.min(width, height);
  const left = (width * scale - inputSize) / 2;
  const top = (height * scale - inputSize) / 2;
  // Each cell of the grid is laid over its own 1/w of the input. The strided convolutions pad at
  // the bottom and right only, which moves the geometric centre of a cell's receptive field half a
  // cell down and right, but what a cell responds to (its effective receptive field, measured with
  // a bar swept across the input of MobileNetV2) is centred within 2 pixels of the plain grid in
  // the middle of the image, and pulled inwards at the borders: the plain grid is the closer fit.
  const values = new Float32Array(outWidth * outHeight);
  for (let v = 0; v < outHeight; v++) {
    const my = (((v + 0.5) * height) / outHeight) * scale - top;
    if (my < 0 || my >= inputSize) continue;
    for (let u = 0; u < outWidth; u++) {
      const mx = (((u + 0.5) * width) / outWidth) * scale - left;
      if (mx < 0 || mx >= inputSize) continue;
      values[v * outWidth + u] = sampleGrid(a, (mx / inputSize) * a.gridWidth, (my / inputSize) * a.gridHeight);
    }
  }
  return { width: outWidth, height: outHeight, values };
}

/** The size of an image file as shown: EXIF orientations 5–8 swap width and height; the first page of an animation. */
export async function displayedSize(file: string): Promise<{ width: number; height: number }> {
  const meta = await sharp()(file).metadata();
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  return (meta.orientation ?? 1) >= 5 ? { width: height, height: width } : { width, height };
}

/** The index of `className` among the model's labels; a `options` error listing them when it is not one. */
export function classIndexOf(meta: ModelMetadata, className: string): number {
  const index = meta.labels.indexOf(className);
  if (index < 0) {
    throw new TrainerError('options', `Unknown class "${className}": the model's classes are ${meta.labels.join(', ')}`);
  }
  return index;
}

/** Explains one image file: its prediction and the heatmap of `className` (default: the predicted class). */
export async function explainImage(
  tf: Tf,
  model: GradCamModel,
  file: string,
  className?: string,
  maxPixels = 100_000_000,
  maxSide = MAX_HEATMAP_SIDE,
): Promise<Explanation> {
  const wanted = className === undefined ? undefined : classIndexOf(model.meta, className);
  const pixels = await decodeImage(file, model.meta.inputSize, maxPixels);
  const { width, height } = await displayedSize(file);
  const a = classActivation(tf, model, pixels, wanted);
  const predicted = a.probabilities.indexOf(Math.max(...a.probabilities));
  return {
    path: file,
    label: model.meta.labels[predicted],
    confidence: a.probabilities[predicted],
    class: model.meta.labels[a.classIndex],
    heatmap: heatmapOverImage(a, model.meta.inputSize, width, height, maxSide),
  };
}

/** Writes `file` (EXIF rotation applied) with `heatmap` blended over it, as a PNG at `out`. */
export async function writeHeatmapOverlay(file: string, heatmap: Heatmap, out: string): Promise<void> {
  const s = sharp();
  const { width, height } = await displayedSize(file);
  const rgba = heatmapRgba(heatmap.values);
  const overlay = await s(rgba, { raw: { width: heatmap.width, height: heatmap.height, channels: 4 } })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .png()
    .toBuffer();
  await s(file)
    .rotate()
    .flatten({ background: { r: 255, g: 255, b: 255 } })
    .composite([{ input: overlay }])
    .png()
    .toFile(out);
}
