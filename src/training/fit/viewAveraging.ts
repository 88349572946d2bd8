// Test-time augmentation: one image's views give one answer. The views' log-probabilities are
// averaged and renormalised (softmax of the mean log-probability; the geometric mean of the
// probabilities). Averaging in log space rather than averaging the probabilities keeps temperature
// scaling exact: the head's last layer divides every view's logits by T, and the mean of those is
// the mean logit divided by T, so the one temperature the calibration stage fits on the averaged
// output is what `predict`, the TF.js model with its metadata and the ONNX graph all apply.
// Unknown detection reads the mean of the views' feature vectors, the same in all three.
import type * as tfType from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';
import { MIN_PROB } from './calibration';
import { predictProbs, type FeatureSet } from './head';

/** softmax(mean over views of log max(p, MIN_PROB)), row by row: `perView[v]` holds n × k probabilities of view v. */
export function averageViewProbs(perView: readonly Float32Array[], k: number): Float32Array {
  if (perView.length === 1) return perView[0];
  const out = new Float32Array(perView[0].length);
  const row = new Float64Array(k);
  for (let r = 0; r * k < out.length; r++) {
    row.fill(0);
    for (const probs of perView) for (let c = 0; c < k; c++) row[c] += Math.log(Math.max(probs[r * k + c], MIN_PROB)) / perView.length;
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, row[c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += row[c] = Math.exp(row[c] - max);
    for (let c = 0; c < k; c++) out[r * k + c] = row[c] / sum;
  }
  return out;
}

/** The head's averaged probabilities over the views of the same images (`views[v]` row i: view v of image i). */
export async function viewProbs(tf: Tf, head: tfType.LayersModel, views: readonly FeatureSet[]): Promise<Float32Array> {
  const k = head.outputs[0].shape[1] as number;
  const perView: Float32Array[] = [];
  for (const set of views) perView.push(await predictProbs(tf, head, set));
  return averageViewProbs(perView, k);
}

/** The views' rows one after the other (view 0's n rows, then view 1's …): what the head trains on. */
export function stackViews(views: readonly FeatureSet[]): FeatureSet {
  if (views.length === 1) return views[0];
  const { n, featureSize } = views[0];
  const x = new Float32Array(views.length * n * featureSize);
  const y = new Int32Array(views.length * n);
  views.forEach((set, v) => {
    x.set(set.x, v * n * featureSize);
    y.set(set.y, v * n);
  });
  return { x, y, n: views.length * n, featureSize };
}

/** Each image's mean feature vector over its views: what unknown detection reads. */
export function meanOfViews(views: readonly FeatureSet[]): FeatureSet {
  if (views.length === 1) return views[0];
  const { n, featureSize, y } = views[0];
  const x = new Float32Array(n * featureSize);
  for (const set of views) for (let i = 0; i < x.length; i++) x[i] += set.x[i];
  for (let i = 0; i < x.length; i++) x[i] /= views.length;
  return { x, y, n, featureSize };
}
