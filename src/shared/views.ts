// Views: deterministic transforms of a decoded image whose features are cached like the image's own
// and which the model averages at prediction time (test-time augmentation). The eight views of the
// dihedral group are exact permutations of the pixels of a square input, so they cost no decode and
// commute with the resize and centre crop: a view of the decoded input is the decoded view of the
// file. Shared by the engine (embedding, predict, exports) and the panel (the recipe's words).
import type { RecipeName } from './types';

/**
 * A view as three flags applied in this order: reverse the rows (`v`, a vertical flip), reverse the
 * columns (`h`, a horizontal flip), then swap rows and columns (`t`, a transpose). With `S` the
 * side, `out(r, c) = t ? in(v ? S-1-c : c, h ? S-1-r : r) : in(v ? S-1-r : r, h ? S-1-c : c)`.
 * The ONNX export builds the same three steps (Slice with step -1, Transpose).
 */
export interface ViewSpec {
  v: boolean;
  h: boolean;
  t: boolean;
}

export type ViewName = 'identity' | 'flip-h' | 'flip-v' | 'rot180' | 'transpose' | 'rot90' | 'rot270' | 'anti-transpose';

/** The eight dihedral views, identity first (its features are the plain recipe's). */
export const VIEW_SPECS: Readonly<Record<ViewName, ViewSpec>> = {
  identity: { v: false, h: false, t: false },
  'flip-h': { v: false, h: true, t: false },
  'flip-v': { v: true, h: false, t: false },
  rot180: { v: true, h: true, t: false },
  transpose: { v: false, h: false, t: true },
  // The right column becomes the top row: a quarter turn counter-clockwise.
  rot90: { v: false, h: true, t: true },
  // The left column, read upwards, becomes the top row: a quarter turn clockwise.
  rot270: { v: true, h: false, t: true },
  'anti-transpose': { v: true, h: true, t: true },
};

export const VIEW_NAMES = Object.keys(VIEW_SPECS) as ViewName[];

/** A recipe that can run (not `auto`, which chooses one of these). */
export type ConcreteRecipe = Exclude<RecipeName, 'auto'>;

/** The views each recipe trains on and averages at prediction time, identity first. */
export const RECIPE_VIEWS: Readonly<Record<ConcreteRecipe, readonly ViewName[]>> = {
  plain: ['identity'],
  flip: ['identity', 'flip-h'],
  dihedral: VIEW_NAMES,
};

/** A recipe in words, for the report and the panel: "8 views + TTA". */
export function recipeWords(recipe: ConcreteRecipe): string {
  const n = RECIPE_VIEWS[recipe].length;
  return n === 1 ? 'plain' : `${n} views + TTA`;
}

/** Whether `value` is a view name (metadata.json is read back from disk). */
export function isViewName(value: unknown): value is ViewName {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(VIEW_SPECS, value);
}

/** Per (size, view): for each destination pixel, the byte offset of its source pixel in the image. */
const sourceMaps = new Map<string, Int32Array>();

function sourceMap(size: number, name: ViewName): Int32Array {
  const key = `${size}/${name}`;
  let map = sourceMaps.get(key);
  if (map) return map;
  const { v, h, t } = VIEW_SPECS[name];
  const last = size - 1;
  map = new Int32Array(size * size);
  for (let r = 0; r < size; r++) {
    for (let c = 0; c < size; c++) {
      const i = t ? (v ? last - c : c) : v ? last - r : r;
      const j = t ? (h ? last - r : r) : h ? last - c : c;
      map[r * size + c] = (i * size + j) * 3;
    }
  }
  sourceMaps.set(key, map);
  return map;
}

/**
 * Writes view `name` of `n` square RGB images (`size`×`size`×3 bytes each, row-major) from `src`
 * into `out` (a new array when absent). Identity copies. A gather through a precomputed map of
 * source offsets: about 5× faster than computing each source pixel (it runs for every view of
 * every image a cold run embeds).
 */
export function applyView(src: Uint8Array, n: number, size: number, name: ViewName, out = new Uint8Array(src.length)): Uint8Array {
  const plane = size * size * 3;
  if (name === 'identity') {
    out.set(src.subarray(0, n * plane));
    return out;
  }
  const map = sourceMap(size, name);
  for (let k = 0; k < n; k++) {
    const base = k * plane;
    for (let p = 0, to = base; p < map.length; p++, to += 3) {
      const from = base + map[p];
      out[to] = src[from];
      out[to + 1] = src[from + 1];
      out[to + 2] = src[from + 2];
    }
  }
  return out;
}

/** The feature-cache key of a view's vectors: the identity keeps the base's own key, so plain runs share entries with older runs. */
export function viewCacheKey(baseKey: string, name: ViewName): string {
  return name === 'identity' ? baseKey : `${baseKey};view=${name}`;
}
