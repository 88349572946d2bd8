// Stage 2: what the dataset holds, and which image goes to training or validation.
import * as path from 'node:path';
import { RUN_FILES } from '../../../shared/runFolder';
import { scanDataset } from '../../dataset/datasetScanner';
import { writeImageList } from '../imageList';
import { writeJsonAtomic } from '../../util/atomicWrite';
import { runCacheFolder } from '../runCacheFolder';
import type { RunStage } from '../runContext';

/** Checks the cache folder (a warning, never a failure, when it cannot be used), scans and splits the dataset (reusing the scan index), and writes the dataset report and the labels. */
export const scanStage: RunStage = {
  name: 'scan',
  async run(ctx) {
    const { options } = ctx;
    ctx.progress.offer({ stage: 'scan', done: 0, total: 1 });
    const cache = await runCacheFolder(ctx);
    const scan = await scanDataset(ctx.datasetRoot, {
      valSplit: options.valSplit,
      seed: options.seed,
      maxPixels: options.maxPixels,
      onProgress: (done, total) => ctx.progress.offer({ stage: 'scan', done, total }),
      index: cache.dir === undefined ? undefined : { folder: path.join(cache.dir, 'scan'), issues: cache },
      signal: ctx.signal,
      followExternalLinks: options.followExternalLinks,
    });
    await writeJsonAtomic(ctx.writer.file(RUN_FILES.datasetReport), scan.report);
    await writeJsonAtomic(ctx.writer.file(RUN_FILES.labels), scan.classes);
    await writeImageList(ctx.writer.file(RUN_FILES.images), scan.classes, scan.items);
    ctx.set('scan', {
      report: scan.report,
      classes: scan.classes,
      train: scan.items.filter((i) => i.split === 'train'),
      val: scan.items.filter((i) => i.split === 'val'),
    });
  },
};
