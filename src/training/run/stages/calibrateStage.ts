// Stage: temperature scaling, so that a confidence of 80% is right about 80% of the time.
import { calibrate } from '../../fit/calibration';
import { evaluate } from '../../fit/evaluation';
import type { RunContext, RunStage } from '../runContext';
import { keptProbs, publishEvaluation, resaveKeptModel } from './keptModel';

/**
 * Divides the output layer's kernel and bias by T: softmax of the scaled layer is softmax(z / T),
 * so the saved TF.js model, its ONNX export and `predict` all give calibrated probabilities with no
 * extra layer, and metadata.json records T.
 */
export function scaleOutputLayer(ctx: RunContext, t: number): void {
  const { tf } = ctx.need('backend');
  const { head } = ctx.need('head');
  const layer = head.getLayer('head_output');
  const scaled = tf.tidy(() => layer.getWeights().map((w) => w.div(t)));
  layer.setWeights(scaled);
  tf.dispose(scaled);
}

/** Fits the temperature on the validation predictions, applies it to the model and records the ECE before and after in evaluation.json and metadata.json. */
export const calibrateStage: RunStage = {
  name: 'calibrate',
  async run(ctx) {
    const { classes } = ctx.need('scan');
    const { metadata } = ctx.need('head');
    const { val, valPaths } = ctx.need('features');
    if (val.n === 0) return;
    // Fitted on the probabilities averaged over the views: with log-space averaging the one
    // temperature in the last layer scales the averaged output exactly (fit/viewAveraging.ts).
    const calibration = calibrate(await keptProbs(ctx, 'val'), val.y, classes.length);
    if (calibration.temperature !== 1) scaleOutputLayer(ctx, calibration.temperature);
    metadata.temperature = calibration.temperature;
    const probs = await keptProbs(ctx, 'val');
    const evaluation = { ...ctx.need('evaluation'), ...evaluate(classes, val.y, probs, valPaths, ctx.bestEpoch), calibration };
    if (calibration.fallback) ctx.log('warn', `Calibration: temperature kept at 1 because ${calibration.fallback}`);
    ctx.log(
      'info',
      `Calibration: temperature ${calibration.temperature.toFixed(3)}; ECE on ${calibration.heldOut} held-out images ${calibration.eceBefore.toFixed(4)} → ${calibration.eceAfter.toFixed(4)}`,
    );
    await resaveKeptModel(ctx);
    await publishEvaluation(ctx, evaluation, false);
  },
};
