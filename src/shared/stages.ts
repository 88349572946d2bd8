// The stages of a run in words, for the CLI, the notification and the panel alike.
import type { Stage } from './types';

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
