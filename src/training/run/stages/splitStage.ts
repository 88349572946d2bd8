// Stage 4b: the split, again, with near-duplicates kept together. The scan splits by content hash
// (exact per class, identical files on one side); only the feature vectors show which files are the
// same photo resized, recompressed or cropped, so this stage finds those groups and splits again
// with each group on one side — a copy in training of a validation image would inflate validation
// accuracy. Images whose side changes are rebuilt into the training and validation sets; the
// dataset report records how many groups were kept together.
import { createHash } from 'node:crypto';
import { RUN_FILES } from '../../../shared/runFolder';
import { stratifiedSplit } from '../../dataset/datasetSplit';
import type { DatasetItem } from '../../dataset/datasetScanner';
import { neighbourhood, type Neighbourhood } from '../../doctor/featureSimilarity';
import { CANDIDATE_SIMILARITY, groupPairs, isNearDuplicate, NEAR_DUPLICATE_RULE } from '../../doctor/nearDuplicates';
import { THUMB_SIDE, thumbVector } from '../../dataset/pixelStats';
import { readArrayArtifact, writeArrayArtifact } from '../../util/arrayArtifact';
import { runCacheFolder, runPixelStats } from '../runCacheFolder';
import { subsetRows } from '../../fit/crossValidation';
import type { FeatureSet } from '../../fit/head';
import { writeJsonAtomic } from '../../util/atomicWrite';
import type { RunContext, RunStage } from '../runContext';

/** Every embedded image in the feature stage's order (`embedded.items`), with one feature matrix over them. */
export interface AllRows {
  items: DatasetItem[];
  set: FeatureSet;
}

/** The feature stage's training and validation sets joined back into one, rows in `embedded.items` order. */
export function allRows(ctx: RunContext): AllRows {
  const { embedded, train, val } = ctx.need('features');
  return { items: embedded.items, set: joinSides(embedded.items, train, val) };
}

/** One feature matrix over `items` (rows in their order) from a training and a validation set built by their current sides. */
function joinSides(items: readonly DatasetItem[], train: FeatureSet, val: FeatureSet): FeatureSet {
  const f = train.featureSize;
  const x = new Float32Array(items.length * f);
  let t = 0;
  let v = 0;
  items.forEach((item, r) => {
    const [set, row] = item.split === 'val' ? [val, v++] : [train, t++];
    x.set(set.x.subarray(row * f, (row + 1) * f), r * f);
  });
  return { x, y: Int32Array.from(items, (i) => i.classIndex), n: items.length, featureSize: f };
}

/** Nearest neighbours kept per image by the similarity pass (the doctor's k-NN vote and outlier score read them). */
export const NEIGHBOURS = 20;

const passes = new WeakMap<RunContext, { rows: AllRows; nb: Promise<Neighbourhood> }>();

/**
 * The one pass over the similarities of a run's images (neighbours and near-duplicate pairs), shared
 * by the split and the doctor; rows in `embedded.items` order as they were when it ran.
 */
export function similarityPass(ctx: RunContext): { rows: AllRows; nb: Promise<Neighbourhood> } {
  let pass = passes.get(ctx);
  if (!pass) {
    const rows = allRows(ctx);
    const { set } = rows;
    const nb = thumbnailsOf(ctx, rows.items).then((thumbs) => {
      const layout = (i: number, j: number): number | undefined => {
        const a = thumbs[i];
        const b = thumbs[j];
        return a && b ? a.reduce((sum, v, t) => sum + v * b[t], 0) : undefined;
      };
      const compute = () =>
        neighbourhood(set.x, set.n, set.featureSize, NEIGHBOURS, CANDIDATE_SIMILARITY, {
          signal: ctx.signal,
          confirm: (i, j, similarity) => isNearDuplicate(similarity, layout(i, j)),
        });
      return cachedNeighbourhood(ctx, rows, thumbs, compute);
    });
    pass = { rows, nb };
    passes.set(ctx, pass);
  }
  return pass;
}

/** The hash of a similarity pass: the features' key, the images in order with whether each has a thumbnail (its values follow from its contents), and the rule. */
function neighbourhoodKey(ctx: RunContext, items: readonly DatasetItem[], thumbs: readonly (Float32Array | undefined)[]): string {
  const rule = { k: NEIGHBOURS, ...NEAR_DUPLICATE_RULE, thumbs: THUMB_SIDE };
  const h = createHash('sha256').update(`neighbourhood@1\n${ctx.need('model').extractor.cacheKey}\n${JSON.stringify(rule)}\n`);
  items.forEach((item, r) => h.update(`${item.sha256}${thumbs[r] ? '+' : '-'}\n`));
  return h.digest('hex');
}

/**
 * The similarity pass from the cache folder when an earlier run made it on the same images (on
 * flowers' 4,317 images it takes ~1.3 s, a fifth of a warm rerun), else computed and stored.
 */
async function cachedNeighbourhood(
  ctx: RunContext,
  rows: AllRows,
  thumbs: readonly (Float32Array | undefined)[],
  compute: () => Promise<Neighbourhood>,
): Promise<Neighbourhood> {
  const folder = await runCacheFolder(ctx);
  const key = neighbourhoodKey(ctx, rows.items, thumbs);
  const n = rows.items.length;
  const found = await readArrayArtifact<{ n: number; k: number }>(
    folder,
    'neighbourhood',
    key,
    { what: 'similarity pass', then: 'computed again' },
    ({ header, arrays: [index, similarity, pairIndex, pairSimilarity] }) =>
      header.n === n &&
      index instanceof Int32Array &&
      index.length === n * header.k &&
      similarity?.length === n * header.k &&
      pairIndex instanceof Int32Array &&
      pairSimilarity?.length === pairIndex.length / 2 &&
      pairIndex.every((r) => r >= 0 && r < n),
  );
  if (found) {
    const [index, similarity, pairIndex, pairSimilarity] = found.arrays as [Int32Array, Float32Array, Int32Array, Float32Array];
    const pairs = Array.from(pairSimilarity, (s, p) => ({ i: pairIndex[2 * p], j: pairIndex[2 * p + 1], similarity: s }));
    return { n, k: found.header.k, index, similarity, pairs };
  }
  const nb = await compute();
  const pairIndex = Int32Array.from(nb.pairs.flatMap((p) => [p.i, p.j]));
  const pairSimilarity = Float32Array.from(nb.pairs, (p) => p.similarity);
  await writeArrayArtifact(folder, 'neighbourhood', key, {
    header: { n: nb.n, k: nb.k },
    arrays: [nb.index, nb.similarity, pairIndex, pairSimilarity],
  });
  return nb;
}

/** The layout thumbnails of `items` from the pixel statistics the features stage cached (undefined where there are none: those pairs are judged on features alone). */
async function thumbnailsOf(ctx: RunContext, items: readonly DatasetItem[]): Promise<(Float32Array | undefined)[]> {
  const cache = await runPixelStats(ctx);
  return items.map((item) => {
    const stats = cache.get(item.sha256);
    return stats?.thumb ? thumbVector(stats) : undefined;
  });
}

/** Keeps each near-duplicate group on one side of a computed split. */
export const splitStage: RunStage = {
  name: 'split',
  skip: (ctx) => ctx.need('scan').report.layout !== 'folders' || ctx.options.valSplit <= 0,
  async run(ctx) {
    const pass = similarityPass(ctx);
    const { set, items } = pass.rows;
    const nb = await pass.nb;
    const { groupOf, groups } = groupPairs(set.n, nb.pairs);
    const scan = ctx.need('scan');
    scan.report.nearDuplicateGroupsKept = groups.length;
    if (groups.length === 0) {
      ctx.log('info', 'Split: no near-duplicate images');
      await writeJsonAtomic(ctx.writer.file(RUN_FILES.datasetReport), scan.report);
      return;
    }
    const straddled = groups.filter((g) => new Set(g.map((r) => items[r].split)).size > 1).length;
    const sides = stratifiedSplit(items, ctx.options.valSplit, ctx.options.seed, groupOf);
    const features = ctx.need('features');
    // Every view's rows joined while the sides are still those they were built with.
    const viewRows = features.trainViews.map((t, v) => (v === 0 ? set : joinSides(items, t, features.valViews[v])));
    let moved = 0;
    items.forEach((item, r) => {
      if (item.split === sides[r]) return;
      item.split = sides[r];
      moved++;
    });
    const pick = (side: string) => items.flatMap((item, r) => (item.split === side ? [r] : []));
    const [trainRows, valRows] = [pick('train'), pick('val')];
    const trainViews = viewRows.map((rows) => subsetRows(rows, trainRows));
    const valViews = viewRows.map((rows) => subsetRows(rows, valRows));
    const valPaths = valRows.map((r) => items[r].rel);
    ctx.set('features', { ...features, train: trainViews[0], val: valViews[0], trainViews, valViews, valPaths });
    scan.train = items.filter((i) => i.split === 'train');
    scan.val = items.filter((i) => i.split === 'val');
    for (const [ci, c] of scan.report.classes.entries()) {
      c.train = scan.train.filter((i) => i.classIndex === ci).length;
      c.val = scan.val.filter((i) => i.classIndex === ci).length;
    }
    await writeJsonAtomic(ctx.writer.file(RUN_FILES.datasetReport), scan.report);
    const images = groups.reduce((s, g) => s + g.length, 0);
    ctx.log(
      'info',
      `Split: ${groups.length} near-duplicate group${groups.length === 1 ? '' : 's'} (${images} images) kept on one side; ${straddled} straddled the split by content hash, ${moved} image${moved === 1 ? '' : 's'} moved`,
    );
  },
};
