// The panel's exploring views of a finished run — Compare with…, Runs, Feature map — behind one
// row of buttons. Each button asks the host; the answer arrives as a notification and the matching
// view is shown (one at a time).
import type { PanelCommand, PanelState } from '../shared/protocol/panel';
import type { ExploreNotification } from '../shared/protocol/explore';
import { CompareView } from './compareView';
import { h } from './domBuilder';
import type { GalleryActions, MovedImage } from './galleryView';
import { MapView } from './mapView';
import { RunsView } from './runsView';

type ViewName = 'compare' | 'runs' | 'map';

/** The `#explore` section: its buttons, a problem line, and the three views. */
export class ExploreView {
  readonly element: HTMLElement;
  readonly compare: CompareView;
  readonly runs: RunsView;
  readonly map: MapView;
  private readonly buttons: Record<ViewName, HTMLButtonElement>;
  private readonly problem: HTMLElement;
  private state: PanelState | undefined;

  constructor(
    private readonly post: (command: PanelCommand) => void,
    actions: GalleryActions,
    private readonly moved: () => ReadonlyMap<string, MovedImage>,
  ) {
    this.compare = new CompareView(actions);
    this.runs = new RunsView((a, b) => this.post({ type: 'compare/runs', a, b }));
    this.map = new MapView(
      (path) => actions.open(path, false),
      (paths, toClass) => this.post({ type: 'map/move', paths, toClass }),
    );
    const button = (id: string, label: string, command: PanelCommand) => {
      const b = h('button', { type: 'button', id, class: 'secondary-button', disabled: true }, label) as HTMLButtonElement;
      b.addEventListener('click', () => this.post(command));
      return b;
    };
    this.buttons = {
      compare: button('explore-compare', 'Compare with…', { type: 'compare/pick' }),
      runs: button('explore-runs', 'Runs', { type: 'runs/show' }),
      map: button('explore-map', 'Feature map', { type: 'map/show' }),
    };
    this.problem = h('p', { id: 'explore-problem', class: 'error', role: 'status', hidden: true });
    this.element = h(
      'section',
      { id: 'explore', 'aria-label': 'Explore this run' },
      h('div', { class: 'explore-buttons' }, this.buttons.compare, this.buttons.runs, this.buttons.map),
      this.problem,
      this.compare.element,
      this.runs.element,
      this.map.element,
    );
  }

  /** Enables the buttons for a run that has an evaluation (finished, or cancelled with a model). */
  renderState(state: PanelState): void {
    this.state = state;
    const done = (state.state === 'finished' || state.state === 'cancelled') && state.evaluation !== undefined;
    for (const b of Object.values(this.buttons)) b.disabled = !done;
    this.element.hidden = !done;
  }

  receive(notification: ExploreNotification): void {
    const state = this.state;
    switch (notification.type) {
      case 'comparison':
        this.compare.render(notification.view, state?.imageBaseUri ?? '', this.moved());
        this.show('compare');
        break;
      case 'runs':
        this.runs.render(notification.runs);
        this.show('runs');
        break;
      case 'featureMap':
        this.show('map');
        this.map.render(notification.map, notification.marks, state?.evaluation, state?.imageBaseUri ?? '');
        break;
      case 'exploreProblem':
        this.problem.textContent = notification.message;
        this.problem.hidden = false;
        return;
    }
    this.problem.hidden = true;
  }

  dispose(): void {
    this.compare.dispose();
    this.map.dispose();
  }

  private show(view: ViewName): void {
    this.compare.element.hidden = view !== 'compare';
    this.runs.element.hidden = view !== 'runs';
    this.map.element.hidden = view !== 'map';
    for (const [name, b] of Object.entries(this.buttons)) b.setAttribute('aria-pressed', String(name === view));
    if (typeof this.element.scrollIntoView === 'function') this.element.scrollIntoView({ block: 'start' });
  }
}
