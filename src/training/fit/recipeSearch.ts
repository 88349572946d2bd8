// Choosing a recipe (which views the head trains on and averages) on the training images alone:
// every candidate is scored by the same k-fold cross-validation (same folds, same head seeds, all
// views of an image in one fold), its held-out images predicted with test-time averaging over the
// candidate's views. A recipe with more views costs more to embed and to train, so it must beat the
// cheaper one by a margin, not by noise.
import type { RecipeCandidate, RecipeChoice, RecipeName, TrainOptions } from '../../shared/types';
import { RECIPE_VIEWS, recipeWords, type ConcreteRecipe, type ViewName } from '../../shared/views';
import type { HeadRuntime } from '../onnx/onnxHead';
import { seededRandom, shuffledIndices } from '../util/random';
import type { Tf } from '../util/tf';
import { outOfSampleProbs } from './crossValidation';
import type { FeatureSet } from './head';
import { averageViewProbs, stackViews } from './viewAveraging';

/** The candidates `auto` compares, cheapest first. */
export const RECIPE_CANDIDATES: readonly ConcreteRecipe[] = ['plain', 'flip', 'dihedral'];

export interface RecipeSearchSpec {
  folds: number;
  seed: number;
  /** Epochs of each fold's head (fixed: no validation rows to stop on). */
  epochs: number;
  signal?: AbortSignal;
}

/** A seeded, class-stratified sample of at most `cap` items (each class keeps its share, at least one image). */
export function stratifiedSample<T extends { classIndex: number }>(items: readonly T[], cap: number, seed: number): T[] {
  if (items.length <= cap) return [...items];
  const random = seededRandom(seed >>> 0);
  const byClass = new Map<number, T[]>();
  for (const item of items) {
    const list = byClass.get(item.classIndex);
    if (list) list.push(item);
    else byClass.set(item.classIndex, [item]);
  }
  const out: T[] = [];
  for (const c of [...byClass.keys()].sort((a, b) => a - b)) {
    const list = byClass.get(c)!;
    const take = Math.max(1, Math.round((cap * list.length) / items.length));
    for (const i of Array.from(shuffledIndices(list.length, random)).slice(0, take)) out.push(list[i]);
  }
  return out;
}

/** Cross-validated accuracy of each candidate with test-time averaging; `views` holds every view the candidates use, row i of each being image i. */
export async function scoreRecipes(
  tf: Tf,
  views: ReadonlyMap<ViewName, FeatureSet>,
  numClasses: number,
  options: TrainOptions,
  spec: RecipeSearchSpec,
  runtime: HeadRuntime,
  candidates: readonly ConcreteRecipe[] = RECIPE_CANDIDATES,
): Promise<RecipeCandidate[]> {
  const scores: RecipeCandidate[] = [];
  for (const recipe of candidates) {
    const sets = RECIPE_VIEWS[recipe].map((name) => views.get(name)!);
    const n = sets[0].n;
    const stacked = stackViews(sets);
    const groups = Int32Array.from({ length: stacked.n }, (_, r) => r % n);
    const oos = await outOfSampleProbs(
      tf,
      stacked,
      numClasses,
      { ...options, epochs: spec.epochs },
      { folds: spec.folds, seed: spec.seed, groups, signal: spec.signal },
      runtime,
    );
    const k = numClasses;
    const perView = sets.map((_, v) => oos.probs.subarray(v * n * k, (v + 1) * n * k));
    const probs = averageViewProbs(perView, k);
    let hits = 0;
    for (let i = 0; i < n; i++) {
      let arg = 0;
      for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + arg]) arg = c;
      if (arg === sets[0].y[i]) hits++;
    }
    scores.push({ recipe, views: sets.length, accuracy: n > 0 ? hits / n : 0 });
  }
  return scores;
}

/** The candidate to train with: going from the cheapest, a costlier one replaces the choice only when it beats it by at least `margin`. */
export function chooseRecipe(scores: readonly RecipeCandidate[], margin: number): RecipeCandidate {
  const sorted = [...scores].sort((a, b) => a.views - b.views);
  let chosen = sorted[0];
  for (const s of sorted.slice(1)) if (s.accuracy >= chosen.accuracy + margin) chosen = s;
  return chosen;
}

/** "8 views + TTA chose over plain: 92.6% vs 90.5%" (or why plain stayed). */
export function choiceReason(chosen: RecipeCandidate, scores: readonly RecipeCandidate[], margin: number): string {
  const pct = (a: number) => `${(100 * a).toFixed(1)}%`;
  const plain = scores.find((s) => s.recipe === 'plain');
  if (chosen.recipe !== 'plain' && plain)
    return `${recipeWords(chosen.recipe)} chose over plain: ${pct(chosen.accuracy)} vs ${pct(plain.accuracy)}`;
  const best = scores.filter((s) => s.recipe !== chosen.recipe).sort((a, b) => b.accuracy - a.accuracy)[0];
  if (!best) return `${recipeWords(chosen.recipe)}: ${pct(chosen.accuracy)}`;
  if (best.accuracy <= chosen.accuracy)
    return `plain kept: ${pct(chosen.accuracy)}, no view recipe did better (best ${recipeWords(best.recipe)} ${pct(best.accuracy)})`;
  return `plain kept: ${recipeWords(best.recipe)} ${pct(best.accuracy)} vs ${pct(chosen.accuracy)} is within the ${(100 * margin).toFixed(1)}-point margin`;
}

/** The recipe a run trains with when it is not searched for: the one `--recipe` names, or plain under fine-tuning (its activations are computed per run, not cached per view). */
export function fixedRecipe(options: TrainOptions): RecipeChoice | undefined {
  const requested = options.recipe;
  if (options.fineTuneLayers > 0) return { ...unsearched(requested, 'plain'), reason: 'plain: fine-tuning runs on one view per image' };
  if (requested === 'auto') return undefined;
  return { ...unsearched(requested, requested), reason: `${recipeWords(requested)}: forced by --recipe ${requested}` };
}

function unsearched(requested: RecipeName, chosen: ConcreteRecipe): Omit<RecipeChoice, 'reason'> {
  return { requested, chosen, views: RECIPE_VIEWS[chosen].length, candidates: [], images: 0, folds: 0 };
}
