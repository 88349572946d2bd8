// Stage 3: the frozen base network, where it runs, and the run's configuration.
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { RUN_FILES, type RunConfig } from '../../../shared/runFolder';
import { sharpVersion } from '../../dataset/lazySharp';
import { loadBaseModel, type BaseModel } from '../../models/baseModel';
import { resolveModelEntry, resolveModelFolder } from '../../models/modelSource';
import type { ModelEntry } from '../../models/modelRegistry';
import { loadOnnxBaseModel, type OnnxBaseModel } from '../../onnx/onnxFeatures';
import { chooseHeadRuntime } from '../../onnx/onnxHead';
import { writeJsonAtomic } from '../../util/atomicWrite';
import type { Tf } from '../../util/tf';
import { runCacheFolder } from '../runCacheFolder';
import type { RunContext, RunStage } from '../runContext';

/** Resolves, downloads if needed, and loads the base model; picks the feature and head runtimes; writes config.json and announces the run. */
export const baseModelStage: RunStage = {
  name: 'model',
  async run(ctx) {
    const backend = ctx.need('backend');
    const { tf, info } = backend;
    const requested = ctx.request.modelEntry ?? (await resolveModelEntry(ctx.options.model));
    const { entry, dir } = await resolveModelFolder(requested, {
      cacheDir: ctx.request.modelCacheDir ?? (await modelDownloadFolder(ctx)),
      extensionRoot: ctx.request.extensionRoot,
      signal: ctx.signal,
      onProgress: (p) => ctx.progress.offer({ stage: 'download', ...p }),
      onFallback: (reason, fallback) => ctx.log('warn', `${reason} Continuing with the embedded ${fallback.name}.`),
    });
    // The frozen base runs where it is fastest: on a CPU, onnxruntime when it loads (the graph is
    // exported from these same weights; the fused tfjs graph is then not built); on a GPU,
    // tfjs-node-gpu. Fine-tuning needs the tfjs layers either way.
    const useOnnx = backend.onnxReady && info.backend !== 'tensorflow-gpu';
    const { base, onnx } = await loadFeatureRuntime(ctx, tf, entry, dir, useOnnx);
    info.featureRuntime = onnx ? onnx.routeNote : `tfjs ${info.backend} (${base.route}${base.routeNote ? `: ${base.routeNote}` : ''})`;
    ctx.log('info', `Features on ${info.featureRuntime}`);
    const headRuntime = await chooseHeadRuntime(info.backend);
    info.headRuntime = headRuntime.note;
    ctx.log('info', `Head on ${headRuntime.note}`);

    const modelInfo = { id: entry.id, name: entry.name, inputSize: base.inputSize, featureSize: base.featureSize };
    const config: RunConfig = {
      datasetRoot: ctx.datasetRoot,
      options: ctx.options,
      backend: info,
      model: modelInfo,
      versions: versions(tf),
      createdAt: new Date(ctx.startedAt).toISOString(),
    };
    await writeJsonAtomic(ctx.writer.file(RUN_FILES.config), config);
    const scan = ctx.need('scan');
    ctx.notify({ type: 'started', runDir: ctx.runDir, backend: info, model: modelInfo, dataset: scan.report, options: ctx.options });
    ctx.set('model', { entry, base, extractor: onnx ?? base, onnx, headRuntime: headRuntime.runtime, config });
  },
};

/** The base on tfjs and, when asked and available, its ONNX graph on onnxruntime for the features; both disposed when the run ends. */
async function loadFeatureRuntime(
  ctx: RunContext,
  tf: Tf,
  entry: ModelEntry,
  modelDir: string | undefined,
  useOnnx: boolean,
): Promise<{ base: BaseModel; onnx?: OnnxBaseModel }> {
  const baseOptions = { extensionRoot: ctx.request.extensionRoot, modelDir };
  let base = await loadBaseModel(tf, entry, { ...baseOptions, route: useOnnx ? 'layers' : 'auto' });
  let onnx: OnnxBaseModel | undefined;
  if (useOnnx) {
    const cache = await runCacheFolder(ctx);
    onnx = await loadOnnxBaseModel(base.layersModel, entry, cache.dir, {
      onUnavailable: (reason) => ctx.log('info', `onnxruntime not used for features: ${reason}`),
      log: (m) => ctx.writer.log(`[info] ${m}`),
      issues: cache,
    });
    // Without onnxruntime the tfjs base computes the features: load it on its fastest route.
    if (!onnx) {
      base.dispose();
      base = await loadBaseModel(tf, entry, baseOptions);
    }
  }
  const loaded = base;
  ctx.defer(() => loaded.dispose());
  if (onnx) {
    const session = onnx;
    ctx.defer(() => session.dispose());
  }
  return { base, onnx };
}

/** Where a hosted model is downloaded: the cache folder, or, when it cannot be used, a temporary folder removed when the run ends. */
async function modelDownloadFolder(ctx: RunContext): Promise<string> {
  const cache = await runCacheFolder(ctx);
  if (cache.dir !== undefined) return cache.dir;
  const temporary = await mkdtemp(path.join(os.tmpdir(), 'image-trainer-models-'));
  ctx.defer(() => rmSync(temporary, { recursive: true, force: true }));
  return temporary;
}

/** Versions of what computed the run, for config.json. */
function versions(tf: Tf): Record<string, string> {
  const v: Record<string, string> = { node: process.version };
  for (const [k, val] of Object.entries(tf.version ?? {})) v[k] = String(val);
  v.sharp = sharpVersion();
  return v;
}
