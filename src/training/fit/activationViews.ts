// Views of cached activations: the eight symmetries of a square map (flips, 90° rotations,
// transposes) applied to an NHWC activation row at the fine-tuning cut, so each epoch sees a view
// of every image without decoding it or running the frozen bottom again.
//
// A flip or a rotation of the image is (up to the borders) the same flip or rotation of the
// activations, because convolutions, pointwise layers and stride commute with them — except where
// TF's 'same' padding of a stride-2 layer on an even size pads one pixel after and none before: the
// flipped image then sees its padding on the other side. So these views are approximate, and the
// difference is measured (test/unit/training/features/cutActivations.test.ts).

/** View index bits: 1 flips left–right, 2 flips top–bottom, 4 transposes (with the flips, the rotations). */
export const VIEW_FLIP_W = 1;
export const VIEW_FLIP_H = 2;
export const VIEW_TRANSPOSE = 4;

/** The views fine-tuning draws from: the identity and the left–right flip, or all eight symmetries of a square. */
export const ACTIVATION_VIEW_SETS = {
  none: [0],
  flip: [0, VIEW_FLIP_W],
  dihedral: [0, 1, 2, 3, 4, 5, 6, 7],
} as const satisfies Record<string, readonly number[]>;

/** `dst` = view `view` of the activation row `src` ([h, w, c], NHWC); a transpose needs h === w. */
export function viewActivations(src: Float32Array, h: number, w: number, c: number, view: number, dst: Float32Array): Float32Array {
  if (view === 0) {
    dst.set(src.subarray(0, h * w * c));
    return dst;
  }
  const transpose = (view & VIEW_TRANSPOSE) !== 0;
  if (transpose && h !== w) throw new Error(`viewActivations: cannot transpose a ${h}×${w} map`);
  const flipH = (view & VIEW_FLIP_H) !== 0;
  const flipW = (view & VIEW_FLIP_W) !== 0;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      let a = transpose ? j : i;
      let b = transpose ? i : j;
      if (flipH) a = h - 1 - a;
      if (flipW) b = w - 1 - b;
      const from = (a * w + b) * c;
      dst.set(src.subarray(from, from + c), (i * w + j) * c);
    }
  }
  return dst;
}

/** Applies view `views[k]` to row k of `rows` in place (`rowShape` [h, w, c]), using `scratch` of one row. */
export function viewRows(rows: Float32Array, rowShape: readonly number[], views: readonly number[], scratch: Float32Array): void {
  const [h, w, c] = rowShape;
  const per = h * w * c;
  views.forEach((view, k) => {
    if (view === 0) return;
    const row = rows.subarray(k * per, (k + 1) * per);
    viewActivations(row, h, w, c, view, scratch);
    row.set(scratch.subarray(0, per));
  });
}
