// The feature map: every training and validation image's feature vector projected to 2-D (PCA,
// then UMAP, seeded with the run's seed), cached beside the features and written to the run
// folder for the panel. A map is a view, not a result: when it cannot be made, the run goes on.
import { RUN_FILES } from '../../../shared/runFolder';
import type { FeatureMapFile } from '../../../shared/featureMap';
import { mapCacheKey, readCachedLayout, writeCachedLayout } from '../../map/mapCache';
import { DEFAULT_MAP_METHOD, projectFeatures } from '../../map/projection';
import { writeFileAtomic } from '../../util/atomicWrite';
import { RunCancelled } from '../../util/errors';
import { runCacheFolder } from '../runCacheFolder';
import type { RunContext, RunStage } from '../runContext';

/** Projects the run's feature vectors (from the cache when it can) and writes feature-map.json; skipped once the run is cancelled. */
export const featureMapStage: RunStage = {
  name: 'map',
  // A cancelled run keeps its model and ends at once: the map can be made by the next run.
  skip: (ctx) => ctx.signal.aborted,
  async run(ctx) {
    try {
      // CPU time as well as wall time: on a busy machine only the first says what the map costs.
      const cpu = process.cpuUsage();
      const map = await featureMap(ctx);
      const used = process.cpuUsage(cpu);
      // Compact: a point costs ~60 bytes, and a 20,000-image map is read whole by the panel.
      await writeFileAtomic(ctx.writer.file(RUN_FILES.featureMap), JSON.stringify(map));
      const cpuMs = Math.round((used.user + used.system) / 1000);
      const how = map.cached ? 'from the cache' : `PCA ${map.ms.pca} ms, UMAP ${map.ms.umap} ms; ${cpuMs} ms of CPU`;
      ctx.log('info', `Feature map: ${map.paths.length} images (${how})`);
    } catch (err) {
      if (err instanceof RunCancelled || ctx.signal.aborted) return;
      ctx.log('warn', `No feature map: ${err instanceof Error ? err.message : String(err)}`);
    }
  },
};

/** The map of this run's images: training rows, then validation rows, as the feature sets hold them. */
async function featureMap(ctx: RunContext): Promise<FeatureMapFile> {
  const { classes } = ctx.need('scan');
  const { extractor } = ctx.need('model');
  const { embedded, train, val } = ctx.need('features');
  const items = [...embedded.items.filter((i) => i.split === 'train'), ...embedded.items.filter((i) => i.split === 'val')];
  if (train.n + val.n !== items.length) throw new Error(`${train.n + val.n} feature rows for ${items.length} images`);
  const d = train.featureSize;
  const x = new Float32Array((train.n + val.n) * d);
  x.set(train.x, 0);
  x.set(val.x, train.n * d);
  const method = { ...DEFAULT_MAP_METHOD, seed: ctx.options.seed };
  const folder = await runCacheFolder(ctx);
  const key = mapCacheKey(
    extractor.cacheKey,
    method,
    items.map((i) => i.sha256),
  );
  const cached = folder.dir ? await readCachedLayout(folder.dir, key, items.length, folder) : undefined;
  let layout = cached ? { ...cached, ms: { pca: 0, umap: 0 } } : undefined;
  if (!layout) {
    layout = await projectFeatures(x, items.length, d, method, ctx.signal);
    if (folder.dir) await writeCachedLayout(folder.dir, key, layout, folder);
  }
  return {
    format: 'image-trainer/feature-map@1',
    method,
    classes,
    paths: items.map((i) => i.rel),
    labels: items.map((i) => i.classIndex),
    sides: items.map((i) => (i.split === 'val' ? 1 : 0)),
    x: layout.x,
    y: layout.y,
    ms: layout.ms,
    cached: Boolean(cached),
  };
}
