// Pixel statistics of a decoded image, gathered from the very pixels the base model sees (the
// decoder's size × size RGB thumbnail), so the dataset doctor judges brightness, contrast and blur
// without decoding anything a second time, and near-duplicates are confirmed on a tiny thumbnail.

/** What the doctor reads of an image's pixels; luma is 0.299 R + 0.587 G + 0.114 B in 0–255. */
export interface PixelStats {
  /** Mean luma. */
  brightness: number;
  /** Standard deviation of luma (RMS contrast). */
  contrast: number;
  /** Variance of the 4-neighbour Laplacian of luma over the interior pixels: low when blurred. */
  sharpness: number;
  /** THUMB_SIDE × THUMB_SIDE block means of luma, row-major, rounded to bytes (base64): the layout of the picture. */
  thumb: string;
}

/** Side of the luma thumbnail. */
export const THUMB_SIDE = 16;

/** The statistics of one `size` × `size` × 3 RGB image. */
export function pixelStats(pixels: Uint8Array, size: number): PixelStats {
  const n = size * size;
  const luma = new Float32Array(n);
  let sum = 0;
  let sum2 = 0;
  for (let p = 0; p < n; p++) {
    const y = 0.299 * pixels[3 * p] + 0.587 * pixels[3 * p + 1] + 0.114 * pixels[3 * p + 2];
    luma[p] = y;
    sum += y;
    sum2 += y * y;
  }
  const mean = sum / n;
  let lap = 0;
  let lap2 = 0;
  let count = 0;
  for (let r = 1; r < size - 1; r++) {
    for (let c = 1; c < size - 1; c++) {
      const p = r * size + c;
      const v = luma[p - size] + luma[p + size] + luma[p - 1] + luma[p + 1] - 4 * luma[p];
      lap += v;
      lap2 += v * v;
      count++;
    }
  }
  const lapMean = count ? lap / count : 0;
  const thumb = new Float64Array(THUMB_SIDE * THUMB_SIDE);
  const cells = new Float64Array(THUMB_SIDE * THUMB_SIDE);
  for (let r = 0; r < size; r++) {
    const tr = Math.floor((r * THUMB_SIDE) / size);
    for (let c = 0; c < size; c++) {
      const t = tr * THUMB_SIDE + Math.floor((c * THUMB_SIDE) / size);
      thumb[t] += luma[r * size + c];
      cells[t]++;
    }
  }
  return {
    thumb: Buffer.from(Uint8Array.from(thumb, (v, t) => Math.round(v / Math.max(1, cells[t])))).toString('base64'),
    brightness: mean,
    contrast: Math.sqrt(Math.max(0, sum2 / n - mean * mean)),
    sharpness: count ? Math.max(0, lap2 / count - lapMean * lapMean) : 0,
  };
}

/** The thumbnail of `stats` as a zero-mean unit vector (zero when flat), so that a dot product is the correlation of two layouts. */
export function thumbVector(stats: Pick<PixelStats, 'thumb'>): Float32Array {
  const bytes = Buffer.from(stats.thumb, 'base64');
  const v = Float32Array.from(bytes);
  const mean = v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
  let norm = 0;
  for (let i = 0; i < v.length; i++) {
    v[i] -= mean;
    norm += v[i] * v[i];
  }
  norm = Math.sqrt(norm);
  for (let i = 0; i < v.length; i++) v[i] = norm > 0 ? v[i] / norm : 0;
  return v;
}
