// Stage: which views the head trains on and averages. `--recipe NAME` forces one; `auto` embeds
// every view of a seeded, class-stratified sample of the TRAINING images (never a validation image),
// cached like all features, and cross-validates the candidates on it. Deciding on a sample keeps the
// cost bounded: only a recipe that wins has all its views embedded for every image (by the features
// stage, which then finds the sample's vectors in the cache).
import type { RecipeChoice } from '../../../shared/types';
import { VIEW_NAMES, type ViewName } from '../../../shared/views';
import { embedWithCache, featureSetOf, releaseVectors } from '../../features/embedding';
import type { FeatureSet } from '../../fit/head';
import { choiceReason, chooseRecipe, fixedRecipe, RECIPE_CANDIDATES, scoreRecipes, stratifiedSample } from '../../fit/recipeSearch';
import type { DatasetItem } from '../../dataset/datasetScanner';
import { readRecipeSearch, recipeSearchKey, writeRecipeSearch, type RecipeSearchResult } from '../recipeCache';
import { runCacheFolder } from '../runCacheFolder';
import type { RunContext, RunStage } from '../runContext';
import { datasetPack, embedOptions, viewCaches } from './featuresStage';

/** Training images whose views the search embeds and cross-validates on (at most). */
export const RECIPE_SAMPLE = 500;
export const RECIPE_FOLDS = 4;
/** Epochs of each fold's head: enough for the candidates' order, a fraction of a full training. */
export const RECIPE_EPOCHS = 8;
/** Accuracy a recipe with more views must gain over a cheaper one to be chosen. */
export const RECIPE_MARGIN = 0.005;

/** Chooses the recipe by cross-validation on a sample of the training images; a run whose recipe is fixed skips it (the features stage records that one). */
export const recipeStage: RunStage = {
  name: 'recipe',
  skip: (ctx) => fixedRecipe(ctx.options) !== undefined,
  async run(ctx) {
    ctx.set('recipe', await searchRecipe(ctx));
  },
};

async function searchRecipe(ctx: RunContext): Promise<RecipeChoice> {
  const { train } = ctx.need('scan');
  const model = ctx.need('model');
  const sample = stratifiedSample(train, RECIPE_SAMPLE, ctx.options.seed);
  const perClass = new Map<number, number>();
  for (const item of sample) perClass.set(item.classIndex, (perClass.get(item.classIndex) ?? 0) + 1);
  if (perClass.size < 2 || Math.min(...perClass.values()) < RECIPE_FOLDS) {
    const reason = `plain: too few training images to compare recipes (${sample.length} in ${perClass.size} classes)`;
    return { requested: 'auto', chosen: 'plain', views: 1, candidates: [], images: sample.length, folds: 0, reason };
  }
  const folder = await runCacheFolder(ctx);
  const search = { folds: RECIPE_FOLDS, epochs: Math.min(RECIPE_EPOCHS, ctx.options.epochs), candidates: RECIPE_CANDIDATES };
  const key = recipeSearchKey({
    featureKey: model.extractor.cacheKey,
    sample,
    options: ctx.options,
    runtime: model.headRuntime.kind,
    search,
  });
  const cached = await readRecipeSearch(folder, key);
  const result = cached ?? (await crossValidateSample(ctx, sample, search.epochs));
  if (!cached) await writeRecipeSearch(folder, key, result);
  const chosen = chooseRecipe(result.candidates, RECIPE_MARGIN);
  const reason = choiceReason(chosen, result.candidates, RECIPE_MARGIN);
  const scores = result.candidates.map((s) => `${s.recipe} ${(100 * s.accuracy).toFixed(1)}%`).join(', ');
  ctx.log(
    'info',
    `Recipe: ${reason} (${RECIPE_FOLDS}-fold cross-validation on ${result.images} training images, ${scores}${cached ? '; result read from the cache' : ''})`,
  );
  return {
    requested: 'auto',
    chosen: chosen.recipe,
    views: chosen.views,
    candidates: result.candidates,
    images: result.images,
    folds: RECIPE_FOLDS,
    reason,
  };
}

/** Embeds every view of the sample (through the cache) and scores each candidate on it. */
async function crossValidateSample(ctx: RunContext, sample: DatasetItem[], epochs: number): Promise<RecipeSearchResult> {
  const { tf } = ctx.need('backend');
  const { classes } = ctx.need('scan');
  const model = ctx.need('model');
  const caches = await viewCaches(ctx, VIEW_NAMES);
  const embedded = await embedWithCache(sample, model.extractor, caches, datasetPack(ctx, '-recipe'), embedOptions(ctx, 'features'));
  const views = new Map<ViewName, FeatureSet>(
    VIEW_NAMES.map((name, v) => [name, featureSetOf(embedded, undefined, model.extractor.featureSize, v)]),
  );
  releaseVectors(embedded);
  const spec = { folds: RECIPE_FOLDS, seed: ctx.options.seed, epochs, signal: ctx.signal };
  const candidates = await scoreRecipes(tf, views, classes.length, ctx.options, spec, model.headRuntime, RECIPE_CANDIDATES);
  ctx.log(
    'info',
    `Recipe search: ${embedded.extracted} of ${sample.length} sample images decoded and embedded (${VIEW_NAMES.length} views each)`,
  );
  return { candidates, images: embedded.items.length };
}
