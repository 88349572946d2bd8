// One procedure for "predict, the saved TF.js model and the ONNX export agree": the CLI's predict on
// some images, the ONNX export run on onnxruntime, and the TF.js model run the way metadata.json
// says (on each listed view, built here with tfjs ops, log-probabilities averaged and renormalised).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type * as tfType from '@tensorflow/tfjs';
import type { ModelMetadata } from '../../src/shared/runFolder';
import { VIEW_SPECS, type ViewName } from '../../src/shared/views';
import { decodeImage } from '../../src/training/dataset/imageDecoder';
import { loadLayersModelFromDir } from '../../src/training/models/baseModel';
import { tempDir } from './tempDirs';
import { bundle, readJson } from './trainingBundle';

const exec = promisify(execFile);

export interface PredictLine {
  path: string;
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  novelty: number;
  unknown: boolean;
}

/** `image-trainer predict <runDir> <target> --json`, one object per image. */
export async function predictJson(runDir: string, target: string): Promise<PredictLine[]> {
  const { stdout } = await exec(process.execPath, [bundle, 'predict', runDir, target, '--json'], { timeout: 300_000, maxBuffer: 1 << 26 });
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as PredictLine);
}

/** The TF.js model's probabilities for one image as metadata.json describes them: each view, softmax of the mean log-probability. */
function tfjsProbs(tf: typeof tfType, model: tfType.LayersModel, pixels: Float32Array, views: readonly ViewName[]): number[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(pixels, [1, 224, 224, 3]);
    const logs = views.map((name) => {
      const { v, h, t } = VIEW_SPECS[name];
      let view: tfType.Tensor = x;
      const axes = [...(v ? [1] : []), ...(h ? [2] : [])];
      if (axes.length) view = tf.reverse(view, axes);
      if (t) view = tf.transpose(view, [0, 2, 1, 3]);
      return tf.log(tf.maximum(model.predict(view) as tfType.Tensor, 1e-30));
    });
    return Array.from(tf.softmax(tf.addN(logs).div(logs.length)).dataSync());
  });
}

/**
 * Runs predict, the ONNX export and the TF.js model on every image of `images`; asserts the same
 * label from all three and the same novelty score and unknown flag from predict and ONNX; returns
 * the largest probability difference between any two of them and how many images there were.
 */
export async function exportAgreement(runDir: string, images: string): Promise<{ maxDiff: number; images: number; views: number }> {
  const predicted = await predictJson(runDir, images);
  const onnxFile = path.join(tempDir('it-agree-onnx-'), 'model.onnx');
  await exec(process.execPath, [bundle, 'export-onnx', runDir, '--out', onnxFile], { timeout: 300_000 });
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(onnxFile, { intraOpNumThreads: 2 });
  assert.deepEqual(session.outputNames, ['probabilities', 'novelty']);
  const tf = await import('@tensorflow/tfjs');
  const model = await loadLayersModelFromDir(tf, path.join(runDir, 'model'));
  const meta = readJson<ModelMetadata>(path.join(runDir, 'model', 'metadata.json'));
  const views = meta.views ?? ['identity'];
  let maxDiff = 0;
  try {
    for (const line of predicted) {
      const pixels = Float32Array.from(await decodeImage(line.path, 224, 1e8));
      const viaTfjs = tfjsProbs(tf, model, pixels, views);
      const result = await session.run({ pixels: new ort.Tensor('float32', pixels, [1, 224, 224, 3]) });
      const viaOnnx = Array.from(result.probabilities.data as Float32Array);
      const onnxNovelty = (result.novelty.data as Float32Array)[0];
      const byLabel = new Map(line.top.map((t) => [t.label, t.confidence]));
      meta.labels.forEach((label, c) => {
        maxDiff = Math.max(maxDiff, Math.abs(viaTfjs[c] - viaOnnx[c]));
        const p = byLabel.get(label);
        if (p !== undefined) maxDiff = Math.max(maxDiff, Math.abs(p - viaTfjs[c]), Math.abs(p - viaOnnx[c]));
      });
      for (const probs of [viaTfjs, viaOnnx]) assert.equal(meta.labels[probs.indexOf(Math.max(...probs))], line.label);
      assert.ok(Math.abs(onnxNovelty - line.novelty) <= 1e-3 * line.novelty, `novelty ${onnxNovelty} vs ${line.novelty}`);
      assert.equal(onnxNovelty > meta.unknownThreshold!, line.unknown);
    }
  } finally {
    model.dispose();
  }
  return { maxDiff, images: predicted.length, views: views.length };
}
