// Bounds of training options that the command line, the engine and the settings must agree on.

/**
 * The validation fraction per class. Not 0: a run with no validation images cannot pick its best
 * epoch or evaluate the model it keeps. Not above 0.9: training needs images too.
 */
export const VAL_SPLIT_RANGE = { min: 0.01, max: 0.9 } as const;

/** Why `valSplit` is refused, in words; undefined when it is in range. */
export function valSplitProblem(valSplit: number): string | undefined {
  const { min, max } = VAL_SPLIT_RANGE;
  if (Number.isFinite(valSplit) && valSplit >= min && valSplit <= max) return undefined;
  return `valSplit must be between ${min} and ${max}, got ${valSplit}: a run needs validation images to choose its best epoch and evaluate the model.`;
}
