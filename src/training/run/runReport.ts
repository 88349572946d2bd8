// The readable `report.md` of a run: what was trained, on what, how well, and what went wrong.
import type { RunConfig } from '../../shared/runFolder';
import type { DatasetReport, EpochMetrics, Evaluation, RunSummary, SkipReason } from '../../shared/types';
import { capSkipped, skippedCounts, unlistedSkipsLine } from '../../shared/skipReasons';
import { formatStageTimes } from '../../shared/stages';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

/** Renders report.md from the run's config, dataset report, history and evaluation. */
export function renderRunReport(input: {
  runName: string;
  config: RunConfig;
  dataset: DatasetReport;
  history: EpochMetrics[];
  evaluation?: Evaluation;
  summary: Omit<RunSummary, 'runDir'>;
  state: string;
  message?: string;
}): string {
  const { config, dataset, history, evaluation, summary } = input;
  const lines: string[] = [];
  lines.push(`# Image Trainer run ${input.runName}`, '');
  lines.push(`- State: **${input.state}**${input.message ? ` — ${input.message}` : ''}`);
  lines.push(`- Dataset: \`${config.datasetRoot}\` (${dataset.layout} layout)`);
  lines.push(`- Base model: ${config.model.name} (${config.model.featureSize} features, ${config.model.inputSize} px)`);
  lines.push(`- Backend: ${config.backend.summary}`);
  if (evaluation) lines.push(`- Validation accuracy: **${pct(evaluation.accuracy)}** (best epoch ${evaluation.bestEpoch})`);
  if (evaluation?.recipe) lines.push(`- Recipe: **${evaluation.recipe.chosen}** — ${evaluation.recipe.reason}`);
  lines.push(
    `- Epochs run: ${summary.epochsRun}; wall time ${(summary.wallMs / 1000).toFixed(1)} s; features ${summary.featuresPerSec.toFixed(1)} images/s; cache ${summary.cache.hits} hits, ${summary.cache.misses} misses`,
  );
  if (summary.stageMs) lines.push(`- Time: ${formatStageTimes(summary.stageMs)}`);
  lines.push('', '## Data', '', '| class | train | val | test |', '|---|---:|---:|---:|');
  for (const c of dataset.classes) lines.push(`| ${c.name} | ${c.train} | ${c.val} | ${c.test} |`);
  if (dataset.nearDuplicateGroupsKept) {
    lines.push(
      '',
      `The split kept ${dataset.nearDuplicateGroupsKept} group${dataset.nearDuplicateGroupsKept === 1 ? '' : 's'} of near-duplicate images on one side each.`,
    );
  }
  if (dataset.emptyClasses.length) lines.push('', `Empty classes left out: ${dataset.emptyClasses.join(', ')}`);
  if (dataset.warnings.length) lines.push('', ...dataset.warnings.map((w) => `- ⚠ ${w}`));
  lines.push(...skippedSection(dataset));
  if (dataset.duplicates.length) {
    lines.push('', `### ${dataset.duplicates.length} identical files in different classes (label noise)`, '');
    for (const d of dataset.duplicates) lines.push(`- ${d.paths.map((p) => `\`${p}\``).join(', ')}`);
  }
  if (history.length) {
    lines.push('', '## Training', '', '| epoch | stage | loss | acc | val loss | val acc | lr |', '|---:|---|---:|---:|---:|---:|---:|');
    for (const m of history) {
      lines.push(
        `| ${m.epoch} | ${m.stage} | ${m.loss.toFixed(4)} | ${pct(m.acc)} | ${m.valLoss.toFixed(4)} | ${pct(m.valAcc)} | ${m.lr.toExponential(1)} |`,
      );
    }
  }
  if (evaluation) {
    const names = evaluation.classes;
    lines.push('', '## Confusion matrix (rows: true class, columns: predicted)', '');
    lines.push(`| | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
    evaluation.matrix.forEach((row, i) => lines.push(`| **${names[i]}** | ${row.join(' | ')} |`));
    lines.push('', '| class | precision | recall | F1 | support |', '|---|---:|---:|---:|---:|');
    for (const c of evaluation.perClass) {
      lines.push(`| ${c.name} | ${c.precision.toFixed(3)} | ${c.recall.toFixed(3)} | ${c.f1.toFixed(3)} | ${c.support} |`);
    }
    lines.push(
      `| macro avg | ${evaluation.macro.precision.toFixed(3)} | ${evaluation.macro.recall.toFixed(3)} | ${evaluation.macro.f1.toFixed(3)} | |`,
      `| weighted avg | ${evaluation.weighted.precision.toFixed(3)} | ${evaluation.weighted.recall.toFixed(3)} | ${evaluation.weighted.f1.toFixed(3)} | |`,
    );
    if (evaluation.mostConfused.length) {
      lines.push('', '## Most confused', '');
      for (const p of evaluation.mostConfused) lines.push(`- ${names[p.actual]} → ${names[p.predicted]}: ${p.count}`);
    }
    lines.push(...recipeSection(evaluation));
    lines.push(...trustSection(evaluation));
  }
  lines.push('', '## Reproduce', '', '```json', JSON.stringify(config.options, null, 2), '```', '');
  return lines.join('\n');
}

/** The recipe (views and test-time augmentation) and, for `auto`, every candidate's cross-validated score. */
export function recipeSection(evaluation: Evaluation): string[] {
  const r = evaluation.recipe;
  if (!r) return [];
  const lines = ['', '## Recipe', ''];
  lines.push(
    `- **${r.chosen}** (${r.views} view${r.views === 1 ? '' : 's'}${r.views > 1 ? ', probabilities averaged over them at prediction time' : ''}): ${r.reason}.`,
  );
  if (r.candidates.length) {
    lines.push(
      `- Chosen by ${r.folds}-fold cross-validation on ${r.images} training images (validation images never used for the choice):`,
      '',
      '| recipe | views | cross-validated accuracy |',
      '|---|---:|---:|',
    );
    for (const c of r.candidates)
      lines.push(`| ${c.recipe === r.chosen ? `**${c.recipe}**` : c.recipe} | ${c.views} | ${pct(c.accuracy)} |`);
  }
  if (r.refit) {
    lines.push(
      '',
      `- Refit: the kept model was trained on all ${r.refit.images} labelled images (training + validation) for ${r.refit.epochs} epochs; the validation figures above were measured before the refit.`,
    );
  }
  return lines;
}

/** Calibration and unknown detection, as far as the run got to them. */
export function trustSection(evaluation: Evaluation): string[] {
  const lines: string[] = [];
  const c = evaluation.calibration;
  if (c) {
    lines.push('', '## Calibration', '');
    lines.push(
      c.fallback
        ? `- Temperature 1: not fitted, because ${c.fallback}.`
        : c.temperature === 1
          ? '- Temperature 1: scaling the confidences did not lower the validation log-loss, so they are left as they are.'
          : `- Temperature ${c.temperature.toFixed(3)}: the model divides its logits by it (confidences ${c.temperature > 1 ? 'softened' : 'sharpened'}).`,
      `- Expected calibration error (${c.bins} bins) on ${c.heldOut} held-out validation images: ${c.eceBefore.toFixed(4)} before, ${c.eceAfter.toFixed(4)} after scaling.`,
    );
  }
  const n = evaluation.novelty;
  if (n) {
    lines.push('', '## Unknown images', '');
    lines.push(
      `- An image whose novelty score (Mahalanobis distance to the nearest class mean in feature space, Ledoit–Wolf shrinkage ${n.shrinkage.toFixed(3)}) is above **${n.threshold.toFixed(2)}** is "unknown".`,
      `- The threshold is the ${n.percentile}th percentile of the validation images' scores: ${n.valFlagged} of ${n.valImages} validation images (${pct(n.valImages ? n.valFlagged / n.valImages : 0)}) are above it.`,
    );
  }
  return lines;
}

/** The skipped files, at most `SKIPPED_LIST_CAP` per reason, each reason's rest counted on one line. */
function skippedSection(dataset: DatasetReport): string[] {
  const { skipped, unlisted: cappedHere } = capSkipped(dataset.skipped);
  const unlisted = { ...dataset.skippedUnlisted };
  for (const [reason, n] of Object.entries(cappedHere) as [SkipReason, number][]) unlisted[reason] = (unlisted[reason] ?? 0) + n;
  const total = skippedCounts(skipped, unlisted).reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return [];
  const lines = ['', `### ${total.toLocaleString('en-US')} skipped files`, ''];
  for (const s of skipped) lines.push(`- \`${s.path}\`: ${s.reason} — ${s.detail}`);
  for (const [reason, n] of Object.entries(unlisted) as [SkipReason, number][]) {
    if (n > 0) lines.push(`- ${unlistedSkipsLine(reason, n)}`);
  }
  return lines;
}
