// Weak images: pixels that teach the model little. Judged on the decoder's thumbnail (the pixels the
// base model sees) from the statistics gathered while decoding (dataset/pixelStats.ts), and on the
// original's size from the scan. Blur is judged against the dataset itself as well as absolutely:
// a whole dataset of soft 128 px photos is not "blurred", the one photo far softer than the rest is.
import type { WeakImage, WeakImageProblem } from '../../shared/doctor';
import type { PixelStats } from '../dataset/pixelStats';
import { median } from './outliers';

/** Thresholds on mean luma (0–255), its standard deviation, and the Laplacian's variance. */
export const WEAK_LIMITS = {
  dark: 30,
  bright: 225,
  lowContrast: 15,
  /**
   * Blurred below this share of the dataset's median variance of the Laplacian. Relative only: the
   * variance falls with the fourth power of the upscaling, so flowers' 128 px photos decoded at 224
   * have a median of 4.5 and hymenoptera's large photos 1,300 (at their 1st percentiles, 0.40 and
   * 0.13 of the median).
   */
  blurredRelative: 0.06,
  /** Upscaled: an original whose shorter side is below this share of the model's input… */
  upscaledInput: 0.5,
  /** …and below this share of the dataset's median shorter side. */
  upscaledMedian: 0.5,
} as const;

export interface WeakInput {
  path: string;
  stats: PixelStats;
  /** The original's width and height. */
  width: number;
  height: number;
}

/** How far past its limit a problem is, 0–1, to order the list worst first. */
function severity(problem: WeakImageProblem, value: number, limit: number): number {
  if (problem === 'bright') return (value - limit) / (255 - limit);
  return (limit - value) / Math.max(limit, 1e-9);
}

/** Every problem of every image, worst first. */
export function weakImages(images: readonly WeakInput[], inputSize: number): WeakImage[] {
  const blurLimit = WEAK_LIMITS.blurredRelative * median(images.map((i) => i.stats.sharpness));
  const medianSide = median(images.map((i) => Math.min(i.width, i.height)));
  const sideLimit = Math.min(WEAK_LIMITS.upscaledInput * inputSize, WEAK_LIMITS.upscaledMedian * medianSide);
  const found: (WeakImage & { severity: number })[] = [];
  const add = (path: string, problem: WeakImageProblem, value: number, limit: number): void => {
    found.push({ path, problem, value: Math.round(value * 100) / 100, severity: severity(problem, value, limit) });
  };
  for (const { path, stats, width, height } of images) {
    if (stats.brightness < WEAK_LIMITS.dark) add(path, 'dark', stats.brightness, WEAK_LIMITS.dark);
    if (stats.brightness > WEAK_LIMITS.bright) add(path, 'bright', stats.brightness, WEAK_LIMITS.bright);
    if (stats.contrast < WEAK_LIMITS.lowContrast) add(path, 'low-contrast', stats.contrast, WEAK_LIMITS.lowContrast);
    if (stats.sharpness < blurLimit) add(path, 'blurred', stats.sharpness, blurLimit);
    const side = Math.min(width, height);
    if (side > 0 && side < sideLimit) add(path, 'upscaled', side, sideLimit);
  }
  return found.sort((a, b) => b.severity - a.severity || (a.path < b.path ? -1 : 1)).map(({ severity: _s, ...w }) => w);
}
