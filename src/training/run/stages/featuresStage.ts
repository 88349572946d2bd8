// Stage 4: one feature vector per image (from the cache where it can), and for fine-tuning the
// activations at the cut point as well (cached too when onnxruntime computes them).
import { RUN_FILES } from '../../../shared/runFolder';
import { capSkipped } from '../../../shared/skipReasons';
import type { DatasetReport, SkipReason } from '../../../shared/types';
import { datasetFolderKey, type DatasetItem } from '../../dataset/datasetScanner';
import { RECIPE_VIEWS, viewCacheKey, type ConcreteRecipe, type ViewName } from '../../../shared/views';
import {
  embedThroughCut,
  embedWithCache,
  featureSetOf,
  releaseVectors,
  type EmbeddedImages,
  type EmbedOptions,
  type ViewCache,
} from '../../features/embedding';
import { FeatureCache } from '../../features/featureCache';
import { autoFineTune, chooseCutLayer, splitAtLayer, type CutModel } from '../../fit/fineTune';
import { fixedRecipe } from '../../fit/recipeSearch';
import { writeJsonAtomic } from '../../util/atomicWrite';
import { TrainerError } from '../../util/errors';
import { runCacheFolder, runPixelStats } from '../runCacheFolder';
import type { RunContext, RunStage } from '../runContext';
import { cutExtractorFor, embedActivationsAtCut } from './cutActivationsStep';

/** Embeds every training and validation image and builds the head's feature matrices; decoding failures become skips in the dataset report. */
export const featuresStage: RunStage = {
  name: 'features',
  async run(ctx) {
    const { tf } = ctx.need('backend');
    const scan = ctx.need('scan');
    const model = ctx.need('model');
    if (scan.train.length === 0 || scan.val.length === 0) {
      throw new TrainerError(
        'dataset',
        `Need images for both training and validation; got ${scan.train.length} training and ${scan.val.length} validation images. Add images or change the validation fraction (${ctx.options.valSplit}).`,
      );
    }
    const recipe = ctx.get('recipe') ?? fixedRecipe(ctx.options) ?? ctx.need('recipe');
    ctx.set('recipe', recipe);
    const cut = chooseCut(ctx, recipe.chosen);
    // Fine-tuning's activations have their own views (its stage's business); the head then trains on one.
    const views = cut ? RECIPE_VIEWS.plain : RECIPE_VIEWS[recipe.chosen];
    const items = [...scan.train, ...scan.val];
    let embedded: EmbeddedImages;
    let cache: { hits: number; misses: number };
    const cutOnOnnx = cut ? await cutExtractorFor(ctx, cut) : undefined;
    if (cut && !cutOnOnnx) {
      // Without onnxruntime, every image goes through the tfjs cut (activations are needed), bypassing the cache.
      embedded = await embedThroughCut(tf, model.base, cut, items, embedOptions(ctx, 'features'));
      cache = { hits: 0, misses: embedded.items.length + embedded.failed.length };
    } else {
      const caches = await viewCaches(ctx, views);
      // Pixel statistics of what gets decoded anyway, for the split and the dataset doctor.
      const pixelStats = await runPixelStats(ctx);
      embedded = await embedWithCache(items, model.extractor, caches, datasetPack(ctx), { ...embedOptions(ctx, 'features'), pixelStats });
      await pixelStats.save();
      cache = { hits: sum(caches.map((c) => c.cache.hits)), misses: sum(caches.map((c) => c.cache.misses)) };
      if (cutOnOnnx) await embedActivationsAtCut(ctx, cutOnOnnx, embedded, embedOptions(ctx, 'features'));
    }
    ctx.featuresPerSec = embedded.perSec;
    await reportDecodeFailures(ctx, embedded);
    reportChangedFiles(ctx, embedded);
    const distinct = new Set(embedded.items.map((i) => i.sha256)).size;
    ctx.log(
      'info',
      `Features: ${embedded.items.length} images (${distinct} distinct)${views.length > 1 ? ` × ${views.length} views` : ''}, ${cache.hits} cache hits, ${cache.misses} misses, ${embedded.extracted} embedded, ${embedded.perSec.toFixed(1)} images/s`,
    );
    const featureSize = model.base.featureSize;
    const trainViews = views.map((_, v) => featureSetOf(embedded, 'train', featureSize, v));
    const valViews = views.map((_, v) => featureSetOf(embedded, 'val', featureSize, v));
    const [train, val] = [trainViews[0], valViews[0]];
    const valPaths = embedded.items.filter((i) => i.split === 'val').map((i) => i.rel);
    releaseVectors(embedded);
    if (new Set(train.y).size < 2) throw new TrainerError('dataset', 'Fewer than 2 classes have usable training images after decoding.');
    // Nothing needs the feature session any more (fine-tuning runs the tfjs layers): release it and
    // its thread pool before the head trains.
    model.onnx?.dispose();
    ctx.set('features', { embedded, train, val, valPaths, cut, cache, views: [...views], trainViews, valViews });
  },
};

/** The feature cache of each view (the identity's is the one plain runs always used); without a usable cache folder, vectors live in memory only. */
export async function viewCaches(ctx: RunContext, views: readonly ViewName[]): Promise<ViewCache[]> {
  const model = ctx.need('model');
  const folder = await runCacheFolder(ctx);
  // A folder nobody can create stands for no cache at all.
  const dir = folder.dir ?? ctx.request.cacheDir;
  return views.map((view) => ({
    view,
    cache: new FeatureCache(dir, viewCacheKey(model.extractor.cacheKey, view), model.extractor.featureSize, folder),
  }));
}

/** The dataset's pack in each view's cache (`suffix` names a second pack, e.g. the recipe search's sample). */
export function datasetPack(ctx: RunContext, suffix = ''): { name: string; label: string } {
  return { name: `${datasetFolderKey(ctx.datasetRoot)}${suffix}`, label: ctx.datasetRoot };
}

/** How the embedding reports its progress and hears of a cancel. */
export function embedOptions(ctx: RunContext, stage: 'features'): EmbedOptions {
  return {
    maxPixels: ctx.options.maxPixels,
    signal: ctx.signal,
    onProgress: (p) => ctx.progress.offer({ stage, ...p }),
  };
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

/** Splits the base where about `fineTuneLayers` layers get unfrozen (or, under `--recipe auto`, where `autoFineTune` says), or says why fine-tuning is skipped. */
function chooseCut(ctx: RunContext, recipe: ConcreteRecipe): CutModel | undefined {
  const { tf } = ctx.need('backend');
  const { base, entry, onnx } = ctx.need('model');
  const scan = ctx.need('scan');
  const auto = autoFineTune(ctx.options, { train: scan.train.length, val: scan.val.length }, onnx !== undefined, recipe);
  const layers = ctx.options.fineTuneLayers > 0 ? ctx.options.fineTuneLayers : auto.layers;
  if (layers === 0) {
    if (ctx.options.recipe === 'auto') ctx.log('info', `Fine-tuning off: ${auto.why}`);
    return undefined;
  }
  const cutName = chooseCutLayer(base.layersModel, entry.fineTuneCutPoints, layers);
  if (!cutName) {
    ctx.log('warn', `Fine-tuning skipped: ${entry.name} has no known cut point.`);
    return undefined;
  }
  const cut = splitAtLayer(tf, base.layersModel, cutName);
  const asked = ctx.options.fineTuneLayers > 0 ? `asked for about ${layers} layers` : `--recipe auto: ${auto.why}`;
  ctx.log('info', `Fine-tuning cut at ${cutName}: ${cut.trainableLayerCount} layers with weights unfrozen (${asked}).`);
  return cut;
}

/** Adds images that failed to decode to the dataset report (recounting the classes) and says so. */
async function reportDecodeFailures(ctx: RunContext, embedded: EmbeddedImages): Promise<void> {
  if (embedded.failed.length === 0) return;
  const { report, classes } = ctx.need('scan');
  // The report lists at most SKIPPED_LIST_CAP paths per reason, as the scan's own skips.
  const capped = capSkipped([...report.skipped, ...embedded.failed]);
  report.skipped = capped.skipped;
  const unlisted = { ...report.skippedUnlisted };
  for (const [reason, n] of Object.entries(capped.unlisted) as [SkipReason, number][]) unlisted[reason] = (unlisted[reason] ?? 0) + n;
  if (Object.keys(unlisted).length > 0) report.skippedUnlisted = unlisted;
  recount(report, classes, embedded.items);
  await writeJsonAtomic(ctx.writer.file(RUN_FILES.datasetReport), report);
  const shown = embedded.failed.slice(0, 20).map((f) => f.path);
  const more = embedded.failed.length > shown.length ? ` and ${embedded.failed.length - shown.length} more` : '';
  ctx.log('warn', `${embedded.failed.length} images could not be decoded and were skipped: ${shown.join(', ')}${more}`);
}

/** Says which images changed between the scan and their decode: trained on as they are now, on the side the scan gave them. */
function reportChangedFiles(ctx: RunContext, embedded: EmbeddedImages): void {
  const changed = embedded.changed;
  if (changed.length === 0) return;
  ctx.log(
    'warn',
    `${changed.length} image${changed.length === 1 ? '' : 's'} changed between the scan and feature extraction (${changed
      .slice(0, 5)
      .map((i) => i.rel)
      .join(
        ', ',
      )}${changed.length > 5 ? ', …' : ''}): trained on ${changed.length === 1 ? 'its' : 'their'} current content, kept on the side of the split the scan chose; features cached under the new content's hash`,
  );
}

/** Updates the per-class counts after images failed to decode. */
function recount(report: DatasetReport, classes: string[], used: DatasetItem[]): void {
  report.classes = classes.map((name, ci) => ({
    name,
    train: used.filter((i) => i.classIndex === ci && i.split === 'train').length,
    val: used.filter((i) => i.classIndex === ci && i.split === 'val').length,
    test: used.filter((i) => i.classIndex === ci && i.split === 'test').length,
  }));
}
