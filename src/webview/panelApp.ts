// The panel as a whole: renders each state the host sends, applies live updates incrementally,
// persists itself with `setState` (so it comes back when hidden and shown again) and turns user
// actions into `PanelCommand`s.
import type { PanelCommand, PanelNotification, PanelState } from '../shared/protocol/panel';
import { isPanelNotification } from '../shared/protocol/panel';
import type { EpochMetrics, Progress } from '../shared/types';
import { ClassMetricsView } from './classMetricsView';
import { CurvesView } from './curvesView';
import { plural } from './displayFormat';
import { h } from './domBuilder';
import { GalleryView, type MovedImage } from './galleryView';
import { HeaderView } from './headerView';
import { MatrixView } from './matrixView';
import { ReliabilityView } from './reliabilityView';
import { watchTheme } from './themeColors';
import type { VsCodeApi } from './vscodeApi';

/** What the panel keeps with `setState`: the last state and the user's view of it. */
export interface PersistedPanel {
  version: 1;
  panel: PanelState;
  ui: { normalise: boolean; cell?: [number, number]; heatmaps?: boolean };
}

/** True for something `getState()` returned that this version of the panel wrote. */
export function isPersistedPanel(value: unknown): value is PersistedPanel {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<PersistedPanel>;
  return (
    v.version === 1 &&
    typeof v.panel === 'object' &&
    v.panel !== null &&
    Array.isArray(v.panel.epochs) &&
    typeof v.ui === 'object' &&
    v.ui !== null
  );
}

const PROGRESS_PERSIST_DELAY_MS = 1000;

/** The panel application bound to a root element and the VS Code API. */
export class PanelApp {
  private state: PanelState | undefined;
  private ui: PersistedPanel['ui'] = { normalise: false };
  private readonly header: HeaderView;
  private readonly curves: CurvesView;
  private readonly matrix: MatrixView;
  private readonly metrics: ClassMetricsView;
  private readonly gallery: GalleryView;
  private readonly reliability: ReliabilityView;
  private readonly hintSlot: HTMLElement;
  private readonly evaluationSection: HTMLElement;
  private readonly empty: HTMLElement;
  private persistTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly disposers: (() => void)[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly api: VsCodeApi,
  ) {
    this.header = new HeaderView(
      () => this.post({ type: 'cancel' }),
      (model) => this.retrain(model),
    );
    this.curves = new CurvesView();
    this.matrix = new MatrixView(
      (a, p) => this.selectCell(a, p),
      (normalise) => {
        this.ui.normalise = normalise;
        this.persist();
      },
    );
    this.metrics = new ClassMetricsView((a, p) => this.selectCell(a, p, true));
    this.gallery = new GalleryView({
      open: (path, heatmap) => this.post(heatmap ? { type: 'openImage', path, heatmap } : { type: 'openImage', path }),
      reveal: (path) => this.post({ type: 'revealImage', path }),
      move: (path, toClass) => this.post({ type: 'moveImage', path, toClass }),
      explain: (paths) => this.post({ type: 'explainImages', paths }),
      heatmapsChanged: (on) => {
        this.ui.heatmaps = on;
        this.persist();
      },
    });
    this.reliability = new ReliabilityView();
    this.hintSlot = h('div', { class: 'hint-slot' });
    this.evaluationSection = h(
      'div',
      { class: 'evaluation', hidden: true },
      this.matrix.element,
      this.metrics.element,
      this.reliability.element,
    );
    this.empty = h('p', { id: 'waiting', class: 'muted' }, 'Waiting for the run…');
    root.replaceChildren(this.empty, this.header.element, this.hintSlot, this.curves.element, this.evaluationSection, this.gallery.element);
  }

  /** Restores the persisted state (if any), listens for the host and says `ready`. */
  start(target: Pick<Window, 'addEventListener' | 'removeEventListener'> = window): void {
    const saved = this.api.getState();
    if (isPersistedPanel(saved)) {
      this.ui = { ...saved.ui };
      this.renderState(saved.panel);
    }
    const onMessage = (event: MessageEvent): void => this.receive(event.data);
    target.addEventListener('message', onMessage as EventListener);
    this.disposers.push(() => target.removeEventListener('message', onMessage as EventListener));
    this.disposers.push(
      watchTheme(() => {
        this.curves.rebuild();
        this.reliability.rebuild();
      }),
    );
    this.post({ type: 'ready' });
  }

  /** Handles one message from the host; anything that is not a `PanelNotification` is ignored. */
  receive(message: unknown): void {
    if (!isPanelNotification(message)) return;
    const notification: PanelNotification = message;
    switch (notification.type) {
      case 'state':
        this.renderState(notification.state);
        this.persist();
        break;
      case 'progress':
        this.applyProgress(notification.progress);
        break;
      case 'epoch':
        this.applyEpoch(notification.metrics);
        break;
      case 'imageMoved':
        this.applyMoved(notification.path, { toClass: notification.toClass, newPath: notification.newPath });
        break;
      case 'heatmaps':
        this.gallery.receiveHeatmaps(notification.heatmaps, notification.failed);
        break;
    }
  }

  /** The state shown now. */
  get current(): PanelState | undefined {
    return this.state;
  }

  /** The sub-views, for tests that look inside. */
  get views(): { curves: CurvesView; matrix: MatrixView; gallery: GalleryView; reliability: ReliabilityView } {
    return { curves: this.curves, matrix: this.matrix, gallery: this.gallery, reliability: this.reliability };
  }

  dispose(): void {
    if (this.persistTimer) clearTimeout(this.persistTimer);
    for (const dispose of this.disposers.splice(0)) dispose();
    this.curves.dispose();
    this.gallery.dispose();
  }

  private post(command: PanelCommand): void {
    this.api.postMessage(command);
  }

  private renderState(state: PanelState): void {
    const heatmapsOf = (e: PanelState['evaluation']) => (e ? `${e.bestEpoch}:${e.predictions.length}:${e.calibration?.temperature}` : '');
    // Another run, or this run's model changed (a new evaluation): the heatmaps shown are no longer its.
    if (!this.state || this.state.runId !== state.runId || heatmapsOf(this.state.evaluation) !== heatmapsOf(state.evaluation))
      this.gallery.resetHeatmaps();
    if (this.state && this.state.runId !== state.runId) this.ui = { normalise: this.ui.normalise, heatmaps: this.ui.heatmaps };
    this.gallery.setHeatmaps(this.ui.heatmaps === true);
    this.state = { ...state, epochs: [...state.epochs], moved: [...state.moved] };
    this.empty.hidden = true;
    this.root.dataset.runState = state.state;
    this.header.render(this.state);
    this.curves.render(this.state.epochs, this.bestEpoch());
    const evaluation = this.state.evaluation;
    const n = evaluation?.classes.length ?? 0;
    const cell = this.ui.cell && this.ui.cell[0] < n && this.ui.cell[1] < n ? this.ui.cell : undefined;
    if (!cell) delete this.ui.cell;
    this.evaluationSection.hidden = !evaluation;
    this.matrix.render(evaluation, this.ui.normalise, cell);
    this.metrics.render(evaluation);
    this.reliability.render(evaluation);
    if (evaluation && cell) this.gallery.show(evaluation, cell[0], cell[1], this.state.imageBaseUri, this.movedMap());
    else this.gallery.clear();
    this.gallery.element.hidden = !evaluation;
    this.renderRetrainHint();
  }

  private applyProgress(progress: Progress): void {
    if (!this.state) return;
    this.state.progress = progress;
    if (this.state.state === 'starting') this.state.state = 'running';
    this.header.renderLive(this.state);
    this.persistSoon();
  }

  private applyEpoch(metrics: EpochMetrics): void {
    if (!this.state) return;
    const index = this.state.epochs.findIndex((e) => e.epoch === metrics.epoch);
    if (index >= 0) this.state.epochs[index] = metrics;
    else this.state.epochs.push(metrics);
    this.curves.addEpoch(metrics);
    this.header.renderLive(this.state);
    this.persist();
  }

  private applyMoved(path: string, moved: MovedImage): void {
    if (!this.state) return;
    this.state.moved = this.state.moved.filter((m) => m.path !== path);
    this.state.moved.push({ path, toClass: moved.toClass, ...(moved.newPath ? { newPath: moved.newPath } : {}) });
    this.gallery.markMoved(path, moved);
    this.renderRetrainHint();
    this.persist();
  }

  private selectCell(actual: number, predicted: number, scroll = false): void {
    const evaluation = this.state?.evaluation;
    if (!this.state || !evaluation) return;
    this.ui.cell = [actual, predicted];
    this.matrix.select(actual, predicted);
    this.gallery.show(evaluation, actual, predicted, this.state.imageBaseUri, this.movedMap());
    if (scroll && typeof this.gallery.element.scrollIntoView === 'function') this.gallery.element.scrollIntoView({ block: 'start' });
    this.persist();
  }

  private renderRetrainHint(): void {
    const moved = this.state?.moved.length ?? 0;
    this.hintSlot.replaceChildren();
    if (moved === 0) return;
    const button = h('vscode-button', { id: 'retrain-hint-button' }, 'Retrain');
    button.addEventListener('click', () => this.retrain(this.header.selectedModel()));
    this.hintSlot.appendChild(
      h(
        'div',
        { id: 'retrain-hint', role: 'note', class: 'hint' },
        h(
          'span',
          {},
          `${plural(moved, 'image')} moved to another class folder since this run. Retrain to learn from the corrected labels.`,
        ),
        button,
      ),
    );
  }

  /** Asks for a new run; `model` (from the header's dropdown) overrides the setting. */
  private retrain(model: string | undefined): void {
    this.post(model ? { type: 'retrain', model } : { type: 'retrain' });
  }

  private movedMap(): Map<string, MovedImage> {
    return new Map((this.state?.moved ?? []).map((m) => [m.path, { toClass: m.toClass, newPath: m.newPath }]));
  }

  private bestEpoch(): number | undefined {
    return this.state?.evaluation?.bestEpoch ?? this.state?.summary?.bestEpoch;
  }

  private persist(): void {
    if (this.persistTimer) {
      clearTimeout(this.persistTimer);
      this.persistTimer = undefined;
    }
    if (!this.state) return;
    const persisted: PersistedPanel = { version: 1, panel: this.state, ui: this.ui };
    this.api.setState(persisted);
  }

  private persistSoon(): void {
    if (this.persistTimer) return;
    this.persistTimer = setTimeout(() => this.persist(), PROGRESS_PERSIST_DELAY_MS);
  }
}

/** Creates the panel in `root`, restores it and sends `ready`. */
export function startPanel(root: HTMLElement, api: VsCodeApi): PanelApp {
  const app = new PanelApp(root, api);
  app.start();
  return app;
}
