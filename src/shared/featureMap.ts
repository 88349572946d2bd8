// The feature map of a run (`feature-map.json`): every image's feature vector projected to 2-D
// (PCA, then UMAP), computed in the training process and drawn by the panel on a canvas.
import { isArrayOf, isNumber, isObject, isString } from './protocol/guards';

/** How a map was computed; the same settings, seed and vectors give the same layout. */
export interface FeatureMapMethod {
  /** Principal components kept before UMAP. */
  pca: number;
  nNeighbors: number;
  minDist: number;
  nEpochs: number;
  seed: number;
}

export interface FeatureMapFile {
  format: 'image-trainer/feature-map@1';
  method: FeatureMapMethod;
  classes: string[];
  /** Per point: path relative to the dataset root, class index, side (0 training, 1 validation), position in [0, 1]². */
  paths: string[];
  labels: number[];
  sides: number[];
  x: number[];
  y: number[];
  /** Milliseconds the projection took (0 when it came from the cache). */
  ms: { pca: number; umap: number };
  /** True when the layout was read from the cache. */
  cached: boolean;
}

/** True for a feature map a reader can draw: equal-length columns, classes in range, positions finite. */
export function isFeatureMapFile(v: unknown): v is FeatureMapFile {
  if (!isObject(v) || v.format !== 'image-trainer/feature-map@1' || !isObject(v.method) || !isArrayOf(v.classes, isString)) return false;
  const n = Array.isArray(v.paths) ? v.paths.length : -1;
  const classes = v.classes.length;
  return (
    isArrayOf(v.paths, isString) &&
    [v.labels, v.sides, v.x, v.y].every((c) => Array.isArray(c) && c.length === n && c.every(isNumber)) &&
    (v.labels as number[]).every((l) => Number.isInteger(l) && l >= 0 && l < classes) &&
    isObject(v.ms)
  );
}
