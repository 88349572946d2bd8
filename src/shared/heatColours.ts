// The one colour scale of a Grad-CAM heatmap, used by the engine's blended PNG (`explain --out`) and
// by the panel's thumbnail overlays, so a heatmap looks the same wherever it is drawn.

/** A value in [0, 1] as RGBA (0–255): transparent blue through green and yellow to opaque red. */
export function heatColour(v: number): [number, number, number, number] {
  const r = Math.min(1, Math.max(0, 2 * v - 0.5));
  const g = Math.min(1, Math.max(0, v < 0.5 ? 2 * v : 2 - 2 * v));
  const b = Math.min(1, Math.max(0, 1 - 2 * v));
  return [Math.round(255 * r), Math.round(255 * g), Math.round(255 * b), Math.round(255 * 0.6 * Math.sqrt(Math.max(0, v)))];
}

/** `values` (row-major, in [0, 1]) as RGBA bytes, four per value, ready for an ImageData or sharp's raw input. */
export function heatmapRgba(values: ArrayLike<number>): Uint8ClampedArray {
  const rgba = new Uint8ClampedArray(values.length * 4);
  for (let i = 0; i < values.length; i++) rgba.set(heatColour(values[i]!), i * 4);
  return rgba;
}
