// Views for fine-tuning: the eight symmetries of a square map (flips, 90° rotations, transposes) of
// an NHWC map — an image's pixels, or activations at the cut.
//
// Flipping the activations at the cut is not the activations of the flipped photo: learned
// filters are not symmetric (channel c of a flipped photo is not channel c flipped), and TF's
// 'same' padding at stride 2 pads after and not before. Measured on the sample's photos at
// block_13_project_BN, the relative L2 distance is 60% (left–right) to 90% (quarter turn), against
// 93–105% between unrelated views (test/unit/training/features/cutActivations.test.ts). So
// fine-tuning caches the activations of each view of the photo itself, computed once per image
// (features/cutActivations.ts), and each epoch draws one of them per training row.

/** View index bits: 1 flips left–right, 2 flips top–bottom, 4 transposes (with the flips, the rotations). */
export const VIEW_FLIP_W = 1;
export const VIEW_FLIP_H = 2;
export const VIEW_TRANSPOSE = 4;

/** Sets of views: the identity alone, with the left–right flip, or all eight symmetries of a square. */
export const ACTIVATION_VIEW_SETS = {
  none: [0],
  flip: [0, VIEW_FLIP_W],
  dihedral: [0, 1, 2, 3, 4, 5, 6, 7],
} as const satisfies Record<string, readonly number[]>;

/** `dst` = view `view` of the map `src` ([h, w, c], NHWC: activations, or an image's RGB bytes); a transpose needs h === w. */
export function viewActivations<T extends Float32Array | Uint8Array>(src: T, h: number, w: number, c: number, view: number, dst: T): T {
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

/** Which views of each image fine-tuning caches the cut activations of: IMAGE_TRAINER_FINE_TUNE_VIEWS (none, flip, dihedral) for comparisons, else the left–right flip (right for upright photos too). */
export function fineTuneViews(): { name: keyof typeof ACTIVATION_VIEW_SETS; views: readonly number[] } {
  const asked = process.env.IMAGE_TRAINER_FINE_TUNE_VIEWS;
  const name = asked && asked in ACTIVATION_VIEW_SETS ? (asked as keyof typeof ACTIVATION_VIEW_SETS) : 'flip';
  return { name, views: ACTIVATION_VIEW_SETS[name] };
}

/** Row i of `dst` = view `choose(i)` of row i of `src`, whose rows hold `views` maps of `per` values each. */
export function pickViews(
  src: Float32Array,
  count: number,
  views: number,
  per: number,
  choose: (row: number) => number,
  dst: Float32Array,
): Float32Array {
  for (let i = 0; i < count; i++) {
    const from = (i * views + choose(i)) * per;
    dst.set(src.subarray(from, from + per), i * per);
  }
  return dst;
}
