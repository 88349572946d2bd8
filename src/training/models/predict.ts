// Classifying images with a trained run: the CLI `predict` and the extension's Classify Image.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import { RUN_FILES } from '../../shared/runFolder';
import type { Tf } from '../util/tf';
import { loadLayersModelFromDir } from './baseModel';
import { readMetadata } from './classifierModel';
import { decodeBatches } from '../dataset/imageDecoder';

export interface ImagePrediction {
  path: string;
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
}

export interface PredictFailure {
  path: string;
  error: string;
}

/** Files under `target` (a file, or a folder walked recursively, hidden entries skipped), sorted. */
export async function listImageFiles(target: string): Promise<string[]> {
  const stat = await fs.promises.stat(target);
  if (stat.isFile()) return [path.resolve(target)];
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = await fs.promises.readdir(dir, { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  await walk(path.resolve(target));
  return out.sort();
}

/** Runs the classifier of `runDir` on the files, batch by batch; yields a prediction or a failure for each. */
export async function* predictImages(
  tf: Tf,
  runDir: string,
  files: string[],
  maxPixels = 100_000_000,
): AsyncGenerator<ImagePrediction | PredictFailure> {
  const modelDir = path.join(runDir, RUN_FILES.modelDir);
  if (!fs.existsSync(path.join(modelDir, 'model.json'))) {
    throw new Error(
      `${runDir} holds no trained model (no ${RUN_FILES.modelDir}/model.json): pick a run that finished or saved a checkpoint.`,
    );
  }
  const meta = await readMetadata(modelDir);
  const model = await loadLayersModelFromDir(tf, modelDir);
  const size = meta.inputSize;
  try {
    for await (const batch of decodeBatches(
      files.map((abs) => ({ abs })),
      { size, batchSize: 16, maxPixels },
    )) {
      const failedPaths = new Map(batch.failed.map((f) => [f.item.abs, f.error.message]));
      let probs: Float32Array = new Float32Array(0);
      const n = batch.items.length;
      if (n > 0) {
        const out = tf.tidy(() => model.predict(tf.tensor4d(batch.pixels, [n, size, size, 3], 'float32')) as tfType.Tensor);
        probs = (await out.data()) as Float32Array;
        out.dispose();
      }
      const k = meta.labels.length;
      let i = 0;
      for (const item of [...batch.items, ...batch.failed.map((f) => f.item)]) {
        const failure = failedPaths.get(item.abs);
        if (failure !== undefined) {
          yield { path: item.abs, error: failure };
          continue;
        }
        const row = Array.from(probs.subarray(i * k, (i + 1) * k));
        i++;
        const top = row
          .map((confidence, c) => ({ label: meta.labels[c], confidence }))
          .sort((a, b) => b.confidence - a.confidence)
          .slice(0, 3);
        yield { path: item.abs, label: top[0].label, confidence: top[0].confidence, top };
      }
    }
  } finally {
    model.dispose();
  }
}
