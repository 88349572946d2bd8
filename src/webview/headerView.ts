// The panel header: run state, dataset (classes, counts, skipped files), backend, base model,
// stage, "Epoch x of N", a progress bar with images/s and ETA, Cancel, and a base-model dropdown
// with Retrain.
import type { PanelState } from '../shared/protocol/panel';
import type { Progress, SkipReason } from '../shared/types';
import { capSkipped, unlistedSkipsLine } from '../shared/skipReasons';
import {
  formatCount,
  formatDuration,
  formatPercent,
  plural,
  runStateLabel,
  skippedSummary,
  skipReasonLabel,
  stageLabel,
  stageUnit,
} from './displayFormat';
import { h, replaceChildren, setAttribute } from './domBuilder';
import { formatStageTimes } from '../shared/stages';
import { failureLine } from '../shared/failureLines';

/** Planned epochs: head epochs plus fine-tuning epochs when fine-tuning is on. */
export function plannedEpochs(state: PanelState): number | undefined {
  if (state.progress?.epochs) return state.progress.epochs;
  const o = state.options;
  if (!o) return undefined;
  return o.epochs + (o.fineTuneLayers > 0 ? o.fineTuneEpochs : 0);
}

/** "Epoch 3 of 20" (or "Epoch 3" when the plan is unknown). */
export function epochText(state: PanelState): string {
  const last = state.epochs.length > 0 ? state.epochs[state.epochs.length - 1]!.epoch : 0;
  const done =
    state.state === 'running' || state.state === 'starting'
      ? Math.max(state.progress?.epoch ?? 0, last)
      : (state.summary?.epochsRun ?? last);
  const planned = plannedEpochs(state);
  return planned ? `Epoch ${done} of ${planned}` : `Epoch ${done}`;
}

/** Stage in words, for the state the run is in. */
export function stageText(state: PanelState): string {
  switch (state.state) {
    case 'finished':
      return 'Done';
    case 'cancelled':
      return 'Cancelled';
    case 'failed':
      return state.progress ? `Stopped while ${stageLabel(state.progress.stage).toLowerCase()}` : 'Stopped';
    case 'starting':
      return state.progress ? stageLabel(state.progress.stage) : 'Starting the training process';
    case 'running':
      return state.progress ? stageLabel(state.progress.stage) : 'Preparing';
  }
}

/** "120 of 480 images · 85 images/s · ETA 0:42". */
export function progressText(progress: Progress | undefined): string {
  if (!progress) return '';
  const parts = [`${formatCount(progress.done)} of ${formatCount(progress.total)} ${stageUnit(progress.stage)}`];
  if (progress.imagesPerSec !== undefined && Number.isFinite(progress.imagesPerSec))
    parts.push(`${progress.imagesPerSec.toFixed(progress.imagesPerSec < 10 ? 1 : 0)} images/s`);
  if (progress.etaSec !== undefined && Number.isFinite(progress.etaSec)) parts.push(`ETA ${formatDuration(progress.etaSec)}`);
  return parts.join(' · ');
}

function isActive(state: PanelState): boolean {
  return state.state === 'running' || state.state === 'starting';
}

/** The `header` element and its live parts. */
export class HeaderView {
  readonly element: HTMLElement;
  private readonly title = h('h1', { id: 'run-title' });
  private readonly runState = h('span', { id: 'run-state', role: 'status', class: 'badge' });
  private readonly cancel = h('vscode-button', { id: 'cancel', secondary: true }, 'Cancel');
  private readonly message = h('p', { id: 'run-message', hidden: true });
  private readonly facts = h('dl', { class: 'facts' });
  private readonly details = h('div', { class: 'details' });
  private readonly stage = h('span', { id: 'stage' });
  private readonly epoch = h('span', { id: 'epoch' });
  private readonly bar = h('vscode-progress-bar', { 'aria-hidden': 'true', max: 100 }) as HTMLElement & { value?: number; max?: number };
  private readonly progress = h(
    'div',
    {
      id: 'progress',
      role: 'progressbar',
      'aria-valuemin': 0,
      'aria-valuemax': 100,
      'aria-valuenow': 0,
      'aria-label': 'Progress of the current stage',
    },
    this.bar,
  );
  private readonly progressDetail = h('span', { id: 'progress-text', class: 'muted' });
  private readonly modelSelect = h('select', { id: 'model-select', class: 'model-select' }) as HTMLSelectElement;
  private readonly retrain = h(
    'vscode-button',
    { id: 'retrain', secondary: true, title: 'Train a new classifier on this dataset with the chosen base model' },
    'Retrain',
  );
  private readonly modelPicker = h(
    'div',
    { class: 'model-picker', hidden: true },
    h('label', { for: 'model-select', class: 'muted' }, 'Base model'),
    this.modelSelect,
    this.retrain,
  );
  private cancelRequested = false;
  private modelOptionsKey = '';
  /** True once the user picked a model: later states of the same run do not reset the choice. */
  private modelChosen = false;
  private runId: string | undefined;

  constructor(onCancel: () => void, onRetrain: (model: string | undefined) => void) {
    this.cancel.addEventListener('click', () => {
      if (this.cancel.hasAttribute('disabled')) return;
      this.cancelRequested = true;
      this.cancel.setAttribute('disabled', '');
      this.cancel.textContent = 'Cancelling…';
      onCancel();
    });
    this.modelSelect.addEventListener('change', () => {
      this.modelChosen = true;
    });
    this.retrain.addEventListener('click', () => {
      if (this.retrain.hasAttribute('disabled')) return;
      onRetrain(this.selectedModel());
    });
    this.element = h(
      'header',
      { class: 'run-header' },
      h('div', { class: 'title-row' }, this.title, this.runState, h('span', { class: 'spacer' }), this.modelPicker, this.cancel),
      this.message,
      this.facts,
      this.details,
      h(
        'div',
        { class: 'progress-row' },
        h('div', { class: 'progress-labels' }, this.stage, this.epoch, this.progressDetail),
        this.progress,
      ),
    );
  }

  /** Renders everything from a full state. */
  render(state: PanelState): void {
    if (state.runId !== this.runId) this.modelChosen = false;
    this.runId = state.runId;
    this.title.textContent = state.runName || state.datasetName;
    this.renderFacts(state);
    this.renderDetails(state);
    this.renderModelPicker(state);
    this.renderLive(state);
  }

  /** The base model id chosen in the dropdown; undefined means "as in the settings". */
  selectedModel(): string | undefined {
    return this.modelSelect.value || undefined;
  }

  /** Updates what changes with every progress message or epoch. */
  renderLive(state: PanelState): void {
    this.runState.dataset.state = state.state;
    this.runState.textContent = runStateLabel(state.state);
    setAttribute(this.message, 'hidden', !state.message);
    // A failure reads as in the notification and the terminal: "Dataset problem: …".
    this.message.textContent =
      state.state === 'failed' && state.errorKind && state.message ? failureLine(state.errorKind, state.message) : (state.message ?? '');
    this.message.className = state.state === 'failed' ? 'error' : 'muted';
    this.stage.textContent = stageText(state);
    this.epoch.textContent = epochText(state);
    const active = isActive(state);
    setAttribute(this.cancel, 'hidden', !active);
    // One run per dataset at a time: Retrain waits until this one has ended.
    setAttribute(this.retrain, 'disabled', active);
    if (active && !this.cancelRequested) {
      this.cancel.removeAttribute('disabled');
      this.cancel.textContent = 'Cancel';
    }
    const p = state.progress;
    let percent = 0;
    if (state.state === 'finished') percent = 100;
    else if (p && p.total > 0) percent = Math.min(100, Math.max(0, (p.done / p.total) * 100));
    const rounded = Math.round(percent);
    this.progress.setAttribute('aria-valuenow', String(rounded));
    this.progress.setAttribute('aria-valuetext', p && active ? `${stageLabel(p.stage)}: ${progressText(p)}` : `${rounded}%`);
    this.progress.dataset.stage = p?.stage ?? '';
    this.bar.value = percent;
    this.bar.setAttribute('value', String(percent));
    this.progressDetail.textContent = active
      ? progressText(p)
      : state.summary
        ? `${formatDuration(state.summary.wallMs / 1000)} in all`
        : '';
  }

  private renderModelPicker(state: PanelState): void {
    const models = state.models ?? [];
    setAttribute(this.modelPicker, 'hidden', models.length === 0);
    const listed = state.currentModel !== undefined && models.some((m) => m.id === state.currentModel);
    // A run on a model that is not listed (a user's own): its entry retrains with the setting.
    const entries = listed ? models : [{ id: '', name: state.model ? `${state.model.name} (from settings)` : 'As in settings' }, ...models];
    const key = JSON.stringify(entries);
    if (key !== this.modelOptionsKey) {
      const previous = this.modelSelect.value;
      this.modelOptionsKey = key;
      replaceChildren(this.modelSelect, ...entries.map((m) => h('option', { value: m.id }, m.name)));
      if (this.modelChosen && entries.some((m) => m.id === previous)) this.modelSelect.value = previous;
      else this.modelChosen = false;
    }
    if (!this.modelChosen) this.modelSelect.value = listed ? state.currentModel! : '';
  }

  private renderFacts(state: PanelState): void {
    const fact = (term: string, id: string, ...value: (Node | string)[]): HTMLElement =>
      h('div', {}, h('dt', {}, term), h('dd', { id }, ...value));
    const items: HTMLElement[] = [];
    const d = state.dataset;
    const datasetLine = [state.datasetName];
    if (d) {
      const train = d.classes.reduce((a, c) => a + c.train, 0);
      const val = d.classes.reduce((a, c) => a + c.val, 0);
      const test = d.classes.reduce((a, c) => a + c.test, 0);
      datasetLine.push(
        plural(d.classes.length, 'class', 'classes'),
        `${formatCount(train)} train / ${formatCount(val)} validation${test ? ` / ${formatCount(test)} test` : ''} images`,
      );
    }
    items.push(fact('Dataset', 'dataset', datasetLine.join(' · ')));
    if (state.backend) {
      items.push(fact('Backend', 'backend', h('span', { class: 'backend-name' }, state.backend.backend), ' — ', state.backend.summary));
    }
    if (state.model) {
      items.push(
        fact(
          'Base model',
          'model',
          `${state.model.name} (${state.model.inputSize}×${state.model.inputSize} input, ${formatCount(state.model.featureSize)} features)`,
        ),
      );
    }
    const recipe = state.evaluation?.recipe;
    if (recipe) {
      const scores = recipe.candidates.map((c) => `${c.recipe} ${formatPercent(c.accuracy)}`).join(', ');
      const how = recipe.candidates.length
        ? ` (${recipe.folds}-fold cross-validation on ${formatCount(recipe.images)} training images: ${scores})`
        : '';
      items.push(fact('Recipe', 'recipe', h('strong', {}, recipe.chosen), ` — ${recipe.reason}${how}`));
    }
    if (state.summary) {
      const s = state.summary;
      items.push(
        fact(
          'Result',
          'result',
          `validation accuracy ${formatPercent(s.valAccuracy)} at epoch ${s.bestEpoch} of ${s.epochsRun}; ${formatCount(s.cache.hits)} cached / ${formatCount(s.cache.misses)} new feature vectors`,
        ),
      );
      const wall = s.wallMs < 60_000 ? `${(s.wallMs / 1000).toFixed(1)} s` : formatDuration(s.wallMs / 1000);
      if (s.stageMs) items.push(fact('Time', 'time', `${wall} in all — ${formatStageTimes(s.stageMs)}`));
    }
    replaceChildren(this.facts, ...items);
  }

  private renderDetails(state: PanelState): void {
    const parts: HTMLElement[] = [];
    const d = state.dataset;
    if (d) {
      parts.push(
        h(
          'ul',
          { id: 'classes', class: 'classes', 'aria-label': 'Classes and image counts (train / validation)' },
          ...d.classes.map((c) =>
            h(
              'li',
              { 'data-class': c.name },
              h('span', { class: 'class-name' }, c.name),
              ' ',
              h('span', { class: 'muted' }, `${formatCount(c.train)} / ${formatCount(c.val)}${c.test ? ` / ${formatCount(c.test)}` : ''}`),
            ),
          ),
        ),
      );
      const problems: HTMLElement[] = [];
      if (d.skipped.length > 0) {
        // A report from before the cap, or with files added after the scan, may list more: the panel caps it too.
        const { skipped, unlisted } = capSkipped(d.skipped);
        for (const [reason, n] of Object.entries(d.skippedUnlisted ?? {}) as [SkipReason, number][])
          unlisted[reason] = (unlisted[reason] ?? 0) + n;
        const total = d.skipped.length + Object.values(d.skippedUnlisted ?? {}).reduce((sum, n) => sum + n, 0);
        problems.push(
          h(
            'vscode-collapsible',
            { id: 'skipped', heading: skippedSummary(skipped, unlisted), 'data-count': total },
            h(
              'ul',
              { class: 'file-list' },
              ...skipped.map((s) =>
                h(
                  'li',
                  { 'data-path': s.path, 'data-reason': s.reason },
                  h('code', {}, s.path),
                  ` — ${skipReasonLabel(s.reason)}${s.detail ? `: ${s.detail}` : ''}`,
                ),
              ),
              ...(Object.entries(unlisted) as [SkipReason, number][]).map(([reason, n]) =>
                h('li', { class: 'muted', 'data-unlisted': reason }, unlistedSkipsLine(reason, n)),
              ),
            ),
          ),
        );
      }
      if (d.duplicates.length > 0) {
        problems.push(
          h(
            'vscode-collapsible',
            { id: 'duplicates', heading: `${plural(d.duplicates.length, 'identical file')} in more than one class` },
            h(
              'ul',
              { class: 'file-list' },
              ...d.duplicates.map((g) => h('li', {}, g.paths.map((p) => p).join(' = '), ` (${g.classes.join(', ')})`)),
            ),
          ),
        );
      }
      const warnings = [...d.warnings, ...d.emptyClasses.map((c) => `Class "${c}" has no images.`)];
      if (warnings.length > 0) parts.push(h('ul', { id: 'warnings', class: 'warnings' }, ...warnings.map((w) => h('li', {}, w))));
      parts.push(...problems);
    }
    if (state.backend && state.backend.attempts.length > 0) {
      parts.push(
        h(
          'vscode-collapsible',
          { id: 'backend-details', heading: 'Why this backend' },
          h(
            'ul',
            { class: 'file-list' },
            ...state.backend.attempts.map((a) =>
              h('li', { 'data-status': a.status }, h('strong', {}, a.backend), ` — ${a.status}${a.detail ? `: ${a.detail}` : ''}`),
            ),
            ...(state.backend.featureRuntime
              ? [h('li', { 'data-runtime': 'features' }, h('strong', {}, 'features'), ` — ${state.backend.featureRuntime}`)]
              : []),
            ...(state.backend.headRuntime
              ? [h('li', { 'data-runtime': 'head' }, h('strong', {}, 'head'), ` — ${state.backend.headRuntime}`)]
              : []),
          ),
        ),
      );
    }
    replaceChildren(this.details, ...parts);
  }
}
