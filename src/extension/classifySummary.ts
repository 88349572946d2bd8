// What Classify Image says about one prediction: the top 3 classes, and "unknown" when the image is
// unlike every class the model knows. No `vscode` import: unit-tested.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { RUN_FILES } from '../shared/runFolder';
import type { PredictionLine } from './trainingCli';

/** One line like `scab 91.2% · healthy 6.0% · black_rot 2.1%`. */
export function formatTop(prediction: PredictionLine): string {
  const top = prediction.top.length > 0 ? prediction.top : [{ label: prediction.label, confidence: prediction.confidence }];
  return top
    .slice(0, 3)
    .map((t) => `${t.label} ${(t.confidence * 100).toFixed(1)}%`)
    .join(' · ');
}

/** `unknown — unlike every class (novelty 87.3, threshold 49.5)` for a flagged prediction, else undefined. */
export function unknownText(prediction: PredictionLine, threshold: number | undefined): string | undefined {
  if (prediction.unknown !== true) return undefined;
  const figures = [
    ...(prediction.novelty !== undefined ? [`novelty ${prediction.novelty.toFixed(1)}`] : []),
    ...(threshold !== undefined ? [`threshold ${threshold.toFixed(1)}`] : []),
  ];
  return `unknown — unlike every class${figures.length > 0 ? ` (${figures.join(', ')})` : ''}`;
}

/** The message Classify Image shows: the image, "unknown" when flagged, the top 3 (the closest classes then) and the model. */
export function classifySummary(imageName: string, prediction: PredictionLine, runName: string, threshold?: number): string {
  const unknown = unknownText(prediction, threshold);
  return unknown
    ? `${imageName}: ${unknown}; closest: ${formatTop(prediction)} (model ${runName})`
    : `${imageName}: ${formatTop(prediction)} (model ${runName})`;
}

/** The unknown threshold a run's model was saved with (`model/metadata.json`), when it has one. */
export async function unknownThresholdOf(runDir: string): Promise<number | undefined> {
  try {
    const meta = JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.modelDir, RUN_FILES.metadata), 'utf8')) as unknown;
    const t = typeof meta === 'object' && meta !== null ? (meta as { unknownThreshold?: unknown }).unknownThreshold : undefined;
    return typeof t === 'number' && Number.isFinite(t) ? t : undefined;
  } catch {
    return undefined;
  }
}
