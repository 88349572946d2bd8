// The stages of a run in words, for the CLI, the notification and the panel alike.
import type { Stage, StageTimes } from './types';

/** Each stage as a short phrase ("Extracting features"). */
export const STAGE_LABELS: Readonly<Record<Stage, string>> = {
  download: 'Downloading the base model',
  scan: 'Scanning the dataset',
  features: 'Extracting features',
  head: 'Training the classifier',
  'fine-tune': 'Fine-tuning',
  evaluate: 'Evaluating',
  save: 'Saving the model',
};

const TIME_LABELS: Readonly<Record<keyof StageTimes, string>> = {
  startup: 'start-up',
  backend: 'backend',
  scan: 'scan',
  model: 'base model',
  recipe: 'recipe',
  features: 'features',
  split: 'split',
  head: 'head',
  fineTune: 'fine-tuning',
  evaluate: 'evaluation',
  calibrate: 'calibration',
  refit: 'refit',
  unknown: 'unknown detection',
  map: 'feature map',
  doctor: 'doctor',
  save: 'saving',
  modelCard: 'model card',
};

/** "start-up 0.31 s · scan 0.12 s · …": where a run's time went, in run order. */
export function formatStageTimes(t: StageTimes): string {
  return (Object.keys(TIME_LABELS) as (keyof StageTimes)[])
    .filter((k) => typeof t[k] === 'number')
    .map((k) => `${TIME_LABELS[k]} ${((t[k] as number) / 1000).toFixed(2)} s`)
    .join(' · ');
}
