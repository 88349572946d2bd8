// The doctor's own stage, after backend → scan → base model → features: every image's feature
// vector (from the cache on a warm run) and pixel statistics, then one pass over the similarities
// (neighbours and near-duplicate pairs), cross-validated head probabilities with folds that keep
// near-duplicates together, and the findings.
import { SUPPORTED_FORMATS } from '../../shared/datasetRules';
import type { DoctorReport, NearDuplicateGroup } from '../../shared/doctor';
import { forEachConcurrent } from '../dataset/boundedConcurrency';
import type { DatasetItem } from '../dataset/datasetScanner';
import { decodeImageFile } from '../dataset/imageDecoder';
import type { PixelStats } from '../dataset/pixelStats';
import { outOfSampleProbs } from '../fit/crossValidation';
import { runPixelStats } from '../run/runCacheFolder';
import { similarityPass, type AllRows } from '../run/stages/splitStage';
import type { RunContext, RunStage } from '../run/runContext';
import { centredUnitRows, normalizeRows, type Neighbourhood } from './featureSimilarity';
import { confidentLabelIssues, knnProbs, meanProbs } from './labelIssues';
import { groupPairs, smallestSimilarity } from './nearDuplicates';
import { outlierRows, outlierScores } from './outliers';
import { findShortcuts } from './shortcuts';
import { weakImages } from './weakImages';

/**
 * Epochs of each fold's head. Fewer than a training run's 20: a head trained longer memorises more
 * of the very labels it is judging. Moved files in the top k (docs/doctor.md): flowers 5% 43–48% at
 * 20 epochs, 51–52% at 8, 52.7% at 4; 10%: 56.0% at 8, 55.0% at 4; plantvillage-apple the same at 8
 * and 4 (94.5%, 92.7%). Each halving halves the time.
 */
export const DOCTOR_EPOCHS = 4;

/** Pixel statistics of every item: from the cache beside the features, else decoded now (and cached), with a log line. */
export async function pixelStatsOf(ctx: RunContext, items: readonly DatasetItem[]): Promise<PixelStats[]> {
  const size = ctx.need('model').extractor.inputSize;
  const cache = await runPixelStats(ctx);
  const missing = items.filter((i) => !cache.get(i.sha256));
  if (missing.length > 0) {
    ctx.log('info', `Pixel statistics: ${missing.length} of ${items.length} images not in the cache, decoding them`);
    await forEachConcurrent(
      missing,
      4,
      async (item) => {
        const image = await decodeImageFile(item.abs, size, ctx.options.maxPixels).catch(() => undefined);
        if (image) cache.set(item.sha256, image.stats);
      },
      ctx.signal,
    );
    await cache.save();
  }
  return items.map((i) => cache.get(i.sha256) ?? { brightness: 128, contrast: 64, sharpness: 1e9, thumb: '' });
}

/** The near-duplicate groups as the report lists them, most similar first. */
function duplicateGroups(rows: AllRows, nb: Neighbourhood, classes: string[]): { groupOf: Int32Array; groups: NearDuplicateGroup[] } {
  const { groupOf, groups } = groupPairs(rows.set.n, nb.pairs);
  const f = rows.set.featureSize;
  const unit = centredUnitRows(rows.set.x, rows.set.n, f);
  const listed = groups.map((members) => {
    const items = members.map((r) => rows.items[r]);
    return {
      paths: items.map((i) => i.rel),
      classes: items.map((i) => classes[i.classIndex]),
      similarity: Math.round(smallestSimilarity(unit, f, members) * 10000) / 10000,
      crossesSplit: new Set(items.map((i) => i.split)).size > 1,
    };
  });
  return { groupOf, groups: listed.sort((a, b) => b.similarity - a.similarity || (a.paths[0] < b.paths[0] ? -1 : 1)) };
}

/** The doctor's first stage, before the split: every image's pixel statistics in the cache (decoding those it lacks), so that the split's near-duplicates are judged on their thumbnails too. */
export const pixelStatsStage: RunStage = {
  name: 'doctor',
  async run(ctx) {
    await pixelStatsOf(ctx, ctx.need('features').embedded.items);
  },
};

/** Builds the doctor's stage; the report it makes is handed to `done`. */
export function doctorStage(folds: number, done: (report: DoctorReport) => void): RunStage {
  return {
    name: 'doctor',
    async run(ctx) {
      const { tf } = ctx.need('backend');
      const { classes } = ctx.need('scan');
      const model = ctx.need('model');
      // The split stage's pass when it ran (its rows' sides are the final split), else a fresh one.
      const pass = similarityPass(ctx);
      const rows = pass.rows;
      const { set, items } = rows;
      const stats = await pixelStatsOf(ctx, items);
      const nb = await pass.nb;
      const dups = duplicateGroups(rows, nb, classes);
      ctx.log('info', `Doctor: ${dups.groups.length} near-duplicate group${dups.groups.length === 1 ? '' : 's'}`);
      const started = performance.now();
      const oos = await outOfSampleProbs(
        tf,
        set,
        classes.length,
        { ...ctx.options, epochs: Math.min(ctx.options.epochs, DOCTOR_EPOCHS) },
        {
          folds,
          seed: ctx.options.seed,
          groups: dups.groupOf,
          signal: ctx.signal,
          onFold: (d, total) => ctx.progress.offer({ stage: 'head', done: d, total }),
        },
        model.headRuntime,
      );
      ctx.log(
        'info',
        `Doctor: ${folds}-fold out-of-sample accuracy ${(100 * oos.accuracy).toFixed(1)}% in ${((performance.now() - started) / 1000).toFixed(2)} s`,
      );
      const probs = meanProbs(oos.probs, knnProbs(set.y, nb.index, nb.similarity, nb.k, classes.length));
      const scores = outlierScores(normalizeRows(set.x, set.n, set.featureSize), set.featureSize, nb);
      const round = (x: number) => Math.round(x * 10000) / 10000;
      done({
        dataset: ctx.datasetRoot,
        images: set.n,
        classes,
        labelIssues: confidentLabelIssues(probs, set.y, classes.length).map((issue) => ({
          path: items[issue.row].rel,
          label: classes[set.y[issue.row]],
          suggested: classes[issue.suggested],
          score: round(issue.score),
        })),
        nearDuplicates: dups.groups,
        outliers: outlierRows(scores).map((r) => ({ path: items[r].rel, label: classes[set.y[r]], score: round(scores[r]) })),
        weakImages: weakImages(
          items.map((item, i) => ({ path: item.rel, stats: stats[i], width: item.width, height: item.height })),
          model.extractor.inputSize,
        ),
        shortcuts: findShortcuts(shortcutProperties(items, stats), set.y, oos.folds, classes.length),
      });
    },
  };
}

/** The trivial properties a classifier could cheat on. */
function shortcutProperties(items: readonly DatasetItem[], stats: readonly PixelStats[]): { name: string; values: Float64Array }[] {
  return [
    { name: 'width', values: Float64Array.from(items, (i) => i.width) },
    { name: 'height', values: Float64Array.from(items, (i) => i.height) },
    { name: 'aspect ratio', values: Float64Array.from(items, (i) => i.width / Math.max(1, i.height)) },
    { name: 'file size', values: Float64Array.from(items, (i) => i.bytes) },
    { name: 'file format', values: Float64Array.from(items, (i) => SUPPORTED_FORMATS.indexOf(i.format)) },
    { name: 'brightness', values: Float64Array.from(stats, (s) => s.brightness) },
    { name: 'contrast', values: Float64Array.from(stats, (s) => s.contrast) },
  ];
}
