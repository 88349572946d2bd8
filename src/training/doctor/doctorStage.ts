// The doctor's own stage, after backend → scan → base model → features: every image's feature
// vector (from the cache on a warm run) and pixel statistics, then one pass over the similarities
// (neighbours and near-duplicate pairs), cross-validated head probabilities with folds that keep
// near-duplicates together, and the findings.
import { SUPPORTED_FORMATS } from '../../shared/datasetRules';
import type { DoctorReport, NearDuplicateGroup } from '../../shared/doctor';
import { forEachConcurrent } from '../dataset/boundedConcurrency';
import { datasetFolderKey, type DatasetItem } from '../dataset/datasetScanner';
import { decodeImageFile } from '../dataset/imageDecoder';
import type { PixelStats } from '../dataset/pixelStats';
import { PixelStatsCache } from '../features/pixelStatsCache';
import { outOfSampleProbs } from '../fit/crossValidation';
import type { FeatureSet } from '../fit/head';
import { runCacheFolder } from '../run/runCacheFolder';
import type { RunContext, RunStage } from '../run/runContext';
import { neighbourhood, normalizeRows, type Neighbourhood } from './featureSimilarity';
import { confidentLabelIssues, knnProbs, meanProbs } from './labelIssues';
import { groupPairs, NEAR_DUPLICATE_SIMILARITY, smallestSimilarity } from './nearDuplicates';
import { outlierRows, outlierScores } from './outliers';
import { findShortcuts } from './shortcuts';
import { weakImages } from './weakImages';

/** Neighbours per image for the k-NN vote and the outlier score. */
export const DOCTOR_NEIGHBOURS = 10;

/** Every embedded image, as one feature matrix in the items' order. */
export interface DoctorRows {
  items: DatasetItem[];
  set: FeatureSet;
}

/** The feature stage's training and validation rows joined back into one set (training rows first, as `featureSetOf` built them). */
export function allRows(ctx: RunContext): DoctorRows {
  const { embedded, train, val } = ctx.need('features');
  const items = [...embedded.items.filter((i) => i.split === 'train'), ...embedded.items.filter((i) => i.split === 'val')];
  const x = new Float32Array((train.n + val.n) * train.featureSize);
  x.set(train.x, 0);
  x.set(val.x, train.x.length);
  return { items, set: { x, y: Int32Array.from([...train.y, ...val.y]), n: train.n + val.n, featureSize: train.featureSize } };
}

/** Pixel statistics of every item: from the cache beside the features, else decoded now (and cached), with a log line. */
export async function pixelStatsOf(ctx: RunContext, items: readonly DatasetItem[]): Promise<PixelStats[]> {
  const folder = await runCacheFolder(ctx);
  const size = ctx.need('model').extractor.inputSize;
  const cache = await PixelStatsCache.open(folder.dir, datasetFolderKey(ctx.datasetRoot), size, folder);
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
  return items.map((i) => cache.get(i.sha256) ?? { brightness: 128, contrast: 64, sharpness: 1e9 });
}

/** The near-duplicate groups as the report lists them, most similar first. */
function duplicateGroups(rows: DoctorRows, nb: Neighbourhood, classes: string[]): { groupOf: Int32Array; groups: NearDuplicateGroup[] } {
  const { groupOf, groups } = groupPairs(rows.set.n, nb.pairs);
  const f = rows.set.featureSize;
  const unit = normalizeRows(rows.set.x, rows.set.n, f);
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

/** Builds the doctor's stage; the report it makes is handed to `done`. */
export function doctorStage(folds: number, done: (report: DoctorReport) => void): RunStage {
  return {
    name: 'doctor',
    async run(ctx) {
      const { tf } = ctx.need('backend');
      const { classes } = ctx.need('scan');
      const model = ctx.need('model');
      const rows = allRows(ctx);
      const { set, items } = rows;
      const stats = await pixelStatsOf(ctx, items);
      const nb = await neighbourhood(set.x, set.n, set.featureSize, DOCTOR_NEIGHBOURS, NEAR_DUPLICATE_SIMILARITY, { signal: ctx.signal });
      const dups = duplicateGroups(rows, nb, classes);
      ctx.log('info', `Doctor: ${dups.groups.length} near-duplicate groups (cosine ≥ ${NEAR_DUPLICATE_SIMILARITY})`);
      const started = performance.now();
      const oos = await outOfSampleProbs(
        tf,
        set,
        classes.length,
        ctx.options,
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
      const scores = outlierScores(nb.similarity, set.n, nb.k);
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
