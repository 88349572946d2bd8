// MODEL_CARD.md: what a model is for, what it learnt from, how well it does and where it fails, for
// whoever ships it. Written from the run folder's own files (config, dataset report, evaluation,
// metadata), so a card always describes the model next to it and can be rewritten from them.
import type { ModelMetadata, RunConfig } from '../../shared/runFolder';
import type { DatasetReport, Evaluation } from '../../shared/types';
import { trustSection } from './runReport';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** The licence of the registry's base models; a user's own model's licence is theirs to state. */
function baseModelLicence(id: string): string {
  return /^mobilenet_v[12]_/.test(id)
    ? 'Apache License 2.0 (MobileNet ImageNet weights of Keras Applications, as published by Teachable Machine)'
    : 'not known to Image Trainer: check the terms of the model you supplied';
}

function dataSection(dataset: DatasetReport): string[] {
  const lines = [
    '',
    '## Data',
    '',
    `Dataset \`${dataset.name}\` (${dataset.layout} layout).`,
    '',
    '| class | train | val | test |',
    '|---|---:|---:|---:|',
  ];
  for (const c of dataset.classes) lines.push(`| ${c.name} | ${c.train} | ${c.val} | ${c.test} |`);
  const total = (k: 'train' | 'val' | 'test') => dataset.classes.reduce((s, c) => s + c[k], 0);
  lines.push(`| **total** | ${total('train')} | ${total('val')} | ${total('test')} |`, '');
  const skipped = dataset.skipped.length + Object.values(dataset.skippedUnlisted ?? {}).reduce((s, n) => s + (n ?? 0), 0);
  lines.push(`- Skipped files: ${skipped}${skipped ? ` (${[...new Set(dataset.skipped.map((s) => s.reason))].join(', ')})` : ''}.`);
  lines.push(`- Identical files in different classes: ${dataset.duplicates.length} group${dataset.duplicates.length === 1 ? '' : 's'}.`);
  if (dataset.emptyClasses.length) lines.push(`- Empty classes left out: ${dataset.emptyClasses.join(', ')}.`);
  for (const w of dataset.warnings) lines.push(`- ⚠ ${w}`);
  return lines;
}

function metricsSection(ev: Evaluation): string[] {
  const lines = ['', '## Metrics (validation set)', '', `Accuracy **${pct(ev.accuracy)}**, macro F1 ${ev.macro.f1.toFixed(3)}.`, ''];
  lines.push('| class | precision | recall | F1 | support |', '|---|---:|---:|---:|---:|');
  for (const c of ev.perClass)
    lines.push(`| ${c.name} | ${c.precision.toFixed(3)} | ${c.recall.toFixed(3)} | ${c.f1.toFixed(3)} | ${c.support} |`);
  lines.push('', '## Known confusions', '');
  if (ev.mostConfused.length === 0) lines.push('None on the validation set.');
  for (const p of ev.mostConfused)
    lines.push(`- ${ev.classes[p.actual]} taken for ${ev.classes[p.predicted]}: ${p.count} image${p.count === 1 ? '' : 's'}`);
  return lines;
}

function limitations(dataset: DatasetReport, ev: Evaluation | undefined): string[] {
  const smallest = Math.min(...dataset.classes.map((c) => c.train));
  const lines = [
    '',
    '## Limitations',
    '',
    `- It knows only these ${dataset.classes.length} classes and always answers one of them; use the unknown flag (or the novelty output of the ONNX model) to catch images unlike all of them.`,
    '- The metrics come from validation images of the same collection as the training images; photos taken elsewhere (other cameras, light, backgrounds) may do worse.',
    `- The smallest class has ${smallest} training images.`,
  ];
  if (ev?.novelty) lines.push(`- By design about ${100 - ev.novelty.percentile}% of images like the training data are flagged unknown.`);
  return lines;
}

/** Renders MODEL_CARD.md from the run's config, dataset report, evaluation and model metadata. */
export function renderModelCard(input: {
  runName: string;
  config: RunConfig;
  dataset: DatasetReport;
  evaluation?: Evaluation;
  metadata: ModelMetadata;
}): string {
  const { config, dataset, evaluation, metadata } = input;
  const o = config.options;
  const lines = [`# Model card: ${dataset.name} classifier (run ${input.runName})`, '', '## Intended use', ''];
  lines.push(
    `Sorts an image into one of ${metadata.labels.length} classes: ${metadata.labels.map((l) => `**${l}**`).join(', ')}. The classes are the folder names of the training data; nothing else is claimed.`,
  );
  lines.push(...dataSection(dataset));
  lines.push(
    '',
    '## Base model',
    '',
    `- ${config.model.name} (\`${metadata.baseModel}\`), ${config.model.featureSize} features, ${config.model.inputSize} px input.`,
  );
  lines.push(`- Licence: ${baseModelLicence(metadata.baseModel)}.`);
  lines.push('', '## Training', '');
  lines.push(
    `- Head: dense ${o.hiddenUnits} units, dropout ${o.dropout}, up to ${o.epochs} epochs, batch ${o.batchSize}, learning rate ${o.learningRate}, patience ${o.patience}, seed ${o.seed}${o.classWeights ? ', class weights' : ''}.`,
  );
  lines.push(
    `- Fine-tuning: ${o.fineTuneLayers > 0 ? `top ${o.fineTuneLayers} layers, up to ${o.fineTuneEpochs} epochs, learning rate ${o.fineTuneLearningRate}` : 'off'}.`,
  );
  lines.push(`- Backend: ${config.backend.summary}. Trained ${config.createdAt}.`);
  if (evaluation) lines.push(...metricsSection(evaluation), ...trustSection(evaluation));
  lines.push(...limitations(dataset, evaluation), '');
  return lines.join('\n');
}
