// How well the feature map keeps the classes apart (not a test):
//   npx tsx scripts/mapAgreement.ts <dataset> [--cache DIR] [--seed N] [--k 10]
// Runs the pipeline's own stages up to the features (from the cache when it has them), projects
// them as the feature-map stage does, and prints the k-NN class agreement — the mean share of each
// image's k nearest neighbours that share its class — in the full feature space, after PCA, and
// on the 2-D map, with the projection's time.
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_TRAIN_OPTIONS } from '../src/shared/types';
import { DEFAULT_MAP_METHOD, knnAgreement, pcaScores, projectFeatures } from '../src/training/map/projection';
import type { RunStage } from '../src/training/run/runContext';
import { runTraining } from '../src/training/run/runTraining';
import { backendStage } from '../src/training/run/stages/backendStage';
import { baseModelStage } from '../src/training/run/stages/baseModelStage';
import { featuresStage } from '../src/training/run/stages/featuresStage';
import { scanStage } from '../src/training/run/stages/scanStage';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

const dataset = path.resolve(process.argv[2] ?? 'samples/leaves');
const k = Number(arg('k', '10'));
const seed = Number(arg('seed', '42'));

const measure: RunStage = {
  name: 'map',
  async run(ctx) {
    const { train, val } = ctx.need('features');
    const { embedded } = ctx.need('features');
    const labels = [...embedded.items.filter((i) => i.split === 'train'), ...embedded.items.filter((i) => i.split === 'val')].map(
      (i) => i.classIndex,
    );
    const n = train.n + val.n;
    const d = train.featureSize;
    const x = new Float32Array(n * d);
    x.set(train.x, 0);
    x.set(val.x, train.n * d);
    const method = { ...DEFAULT_MAP_METHOD, seed };
    const t0 = performance.now();
    const map = await projectFeatures(x, n, d, method);
    const ms = performance.now() - t0;
    const pca = pcaScores(x, n, d, method.pca, seed);
    const points = map.x.flatMap((xi, i) => [xi, map.y[i]!]);
    console.log(
      `${path.basename(dataset)}: ${n} images, ${d} features; projection ${(ms / 1000).toFixed(2)} s (PCA ${map.ms.pca} ms, UMAP ${map.ms.umap} ms)`,
    );
    console.log(
      `k-NN class agreement (k = ${k}): feature space ${(100 * knnAgreement(x, d, labels, k)).toFixed(1)}%, PCA-${method.pca} ${(100 * knnAgreement(pca, pca.length / n, labels, k)).toFixed(1)}%, 2-D map ${(100 * knnAgreement(points, 2, labels, k)).toFixed(1)}%`,
    );
  },
};

const work = path.join(os.tmpdir(), `image-trainer-map-agreement-${process.pid}`);
runTraining(
  {
    datasetRoot: dataset,
    runsDir: path.join(work, 'runs'),
    cacheDir: path.resolve(arg('cache', path.join(work, 'cache'))),
    options: { ...DEFAULT_TRAIN_OPTIONS, seed, recipe: 'plain' },
  },
  () => undefined,
  undefined,
  [backendStage, scanStage, baseModelStage, featuresStage, measure],
).catch((err: unknown) => {
  // The run has no head, so it ends without an evaluation: what was measured is printed above.
  if (!(err instanceof Error && /needs "evaluation"|evaluation/.test(err.message))) console.error(err);
});
