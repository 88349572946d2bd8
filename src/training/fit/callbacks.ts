// Callbacks of the epoch loop that know nothing of runs or folders.
import type { TrainingCallback } from './trainingLoop';

/**
 * Stops training after the epoch during which `limitMs` of wall-clock time since `startedAt` has
 * passed; the loop then restores the best weights, which the checkpoint already holds. At least
 * one epoch always runs, so a run that reaches training always leaves a model.
 */
export function timeLimitCallback(
  limitMs: number,
  startedAt: number,
  onStop: (elapsedMs: number) => void,
  now: () => number = Date.now,
): TrainingCallback {
  return {
    onEpochEnd(_m, loop) {
      const elapsed = now() - startedAt;
      if (elapsed < limitMs) return;
      loop.stop('time-limit');
      onStop(elapsed);
    },
  };
}
