// The features stage's fine-tuning part: the activations at the cut, from the activation cache
// or computed on onnxruntime (features/cutActivations.ts), with their own progress and log line.
import { datasetFolderKey } from '../../dataset/datasetScanner';
import { embedCutActivations, loadCutExtractor, type CutExtractor } from '../../features/cutActivations';
import type { EmbedOptions, EmbeddedImages } from '../../features/embedding';
import { fineTuneViews } from '../../fit/activationViews';
import type { CutModel } from '../../fit/fineTune';
import { runCacheFolder } from '../runCacheFolder';
import type { RunContext } from '../runContext';

/** The bottom of `cut` on onnxruntime, or undefined (said in the log) when only the tfjs route can compute the activations. */
export async function cutExtractorFor(ctx: RunContext, cut: CutModel): Promise<CutExtractor | undefined> {
  const model = ctx.need('model');
  if (!model.onnx) return undefined;
  try {
    const extractor = await loadCutExtractor(model.base.layersModel, model.entry, cut, { views: fineTuneViews().views });
    if (typeof extractor !== 'string') return extractor;
    ctx.log('info', `Cut activations on tfjs: ${extractor}`);
  } catch (error) {
    ctx.log('info', `Cut activations on tfjs: the cut cannot run on onnxruntime (${(error as Error).message})`);
  }
  return undefined;
}

/** Adds the cut activations of every embedded image to `embedded` (cached by content hash, model, cut and preprocessing) and logs what it cost. */
export async function embedActivationsAtCut(
  ctx: RunContext,
  extractor: CutExtractor,
  embedded: EmbeddedImages,
  opts: EmbedOptions,
): Promise<void> {
  const folder = await runCacheFolder(ctx);
  try {
    const stats = await embedCutActivations(
      embedded,
      extractor,
      {
        dir: folder.dir ?? ctx.request.cacheDir,
        issues: folder,
        pack: { name: datasetFolderKey(ctx.datasetRoot), label: `${ctx.datasetRoot} (activations at ${extractor.cutSource})` },
      },
      opts,
    );
    const rate = stats.computed > 0 ? `, ${stats.perSec.toFixed(1)} images/s on onnxruntime` : '';
    ctx.log(
      'info',
      `Cut activations at ${extractor.cutSource} (${extractor.views.length} view${extractor.views.length === 1 ? '' : 's'} × ${extractor.rowShape.join('×')} float32, ${((extractor.featureSize * 4) / 1024).toFixed(1)} KB an image, ${(stats.bytes / 2 ** 20).toFixed(1)} MiB in all): ${stats.hits} cache hits, ${stats.misses} misses, ${stats.computed} computed${rate}`,
    );
  } finally {
    extractor.dispose();
  }
}
