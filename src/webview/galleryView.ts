// The images of one confusion-matrix cell as thumbnails, worst first, rendered a page at a time
// (more as the user scrolls) with lazily loaded images, so a cell of hundreds stays smooth. A toggle
// lays each thumbnail's Grad-CAM heatmap over it (asked of the host a page at a time), and images
// unlike every class ("unknown") carry a marker.
import type { Evaluation, Prediction } from '../shared/types';
import { formatPercent, plural } from './displayFormat';
import type { PanelHeatmap } from '../shared/protocol/panel';
import { h, replaceChildren } from './domBuilder';
import { cellImages, imageUrl, probabilityOf } from './galleryOrder';
import { applyHeatmap, HeatmapStore } from './heatmapOverlay';

export const GALLERY_PAGE_SIZE = 60;

export interface GalleryActions {
  /** `heatmap`: open the image with its heatmap blended over it (the toggle is on). */
  open(path: string, heatmap: boolean): void;
  reveal(path: string): void;
  move(path: string, toClass: string): void;
  /** Asks the host for the heatmaps of these images (at most a page). */
  explain(paths: string[]): void;
  /** The heatmap toggle changed (the panel persists it). */
  heatmapsChanged(on: boolean): void;
}

export interface MovedImage {
  toClass: string;
  newPath?: string;
}

function fileName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The `#gallery` section. */
export class GalleryView {
  readonly element: HTMLElement;
  private readonly title: HTMLElement;
  private readonly grid: HTMLElement;
  private readonly more: HTMLButtonElement;
  private images: Prediction[] = [];
  private rendered = 0;
  private evaluation: Evaluation | undefined;
  private cell: [number, number] | undefined;
  private imageBaseUri = '';
  private moved: ReadonlyMap<string, MovedImage> = new Map();
  private observer: IntersectionObserver | undefined;
  private heatmapsOn = false;
  private readonly heatmaps = new HeatmapStore();
  private readonly heatmapToggle: HTMLElement & { checked?: boolean };

  constructor(private readonly actions: GalleryActions) {
    this.title = h('h2', { id: 'gallery-title' }, 'Images');
    this.heatmapToggle = h(
      'vscode-checkbox',
      { id: 'heatmap-toggle', label: 'Show heatmaps', title: 'Lay over each image where the model looked (Grad-CAM)' },
      'Show heatmaps',
    );
    this.heatmapToggle.addEventListener('change', () => {
      this.setHeatmaps(Boolean(this.heatmapToggle.checked));
      this.actions.heatmapsChanged(this.heatmapsOn);
    });
    this.grid = h('div', { id: 'gallery', role: 'list', 'aria-labelledby': 'gallery-title', 'data-heatmaps': 'off' });
    this.more = h('button', { id: 'gallery-more', type: 'button', class: 'secondary-button', hidden: true }) as HTMLButtonElement;
    this.more.addEventListener('click', () => this.renderPage());
    this.element = h(
      'section',
      { id: 'gallery-section', 'aria-labelledby': 'gallery-title' },
      h('div', { class: 'section-head' }, this.title, this.heatmapToggle),
      h('p', { id: 'gallery-help', class: 'muted' }, 'Select a cell of the confusion matrix to see its validation images.'),
      this.grid,
      this.more,
    );
    this.grid.addEventListener('click', (event) => this.onClick(event));
    if (typeof IntersectionObserver !== 'undefined') {
      this.observer = new IntersectionObserver(
        (entries) => {
          if (entries.some((e) => e.isIntersecting) && this.rendered < this.images.length) this.renderPage();
        },
        { rootMargin: '800px 0px' },
      );
      this.observer.observe(this.more);
    }
  }

  /** How many thumbnails are in the DOM and how many the cell holds. */
  get counts(): { rendered: number; total: number } {
    return { rendered: this.rendered, total: this.images.length };
  }

  /** The cell shown, if any. */
  get shownCell(): [number, number] | undefined {
    return this.cell;
  }

  /** Shows the images of cell (actual, predicted). */
  show(evaluation: Evaluation, actual: number, predicted: number, imageBaseUri: string, moved: ReadonlyMap<string, MovedImage>): void {
    this.evaluation = evaluation;
    this.cell = [actual, predicted];
    this.imageBaseUri = imageBaseUri;
    this.moved = moved;
    this.images = cellImages(evaluation, actual, predicted);
    this.rendered = 0;
    const a = evaluation.classes[actual];
    const p = evaluation.classes[predicted];
    const count = plural(this.images.length, 'image');
    this.title.textContent =
      actual === predicted
        ? `Correct ${a}: ${count}, least confident first`
        : `True ${a}, predicted ${p}: ${count}, most confident mistakes first`;
    this.grid.dataset.actual = String(actual);
    this.grid.dataset.predicted = String(predicted);
    replaceChildren(this.grid);
    this.element.querySelector('#gallery-help')?.toggleAttribute('hidden', true);
    if (this.images.length === 0) this.grid.appendChild(h('p', { class: 'muted' }, 'No validation images in this cell.'));
    this.renderPage();
  }

  /** Empties the gallery (e.g. a new state without this cell). */
  clear(): void {
    this.cell = undefined;
    this.images = [];
    this.rendered = 0;
    this.title.textContent = 'Images';
    delete this.grid.dataset.actual;
    delete this.grid.dataset.predicted;
    replaceChildren(this.grid);
    this.element.querySelector('#gallery-help')?.toggleAttribute('hidden', false);
    this.updateMore();
  }

  /** Whether heatmaps are laid over the thumbnails. */
  get heatmapsShown(): boolean {
    return this.heatmapsOn;
  }

  /** Turns the heatmap overlays on or off; on asks the host for the rendered thumbnails it has none of. */
  setHeatmaps(on: boolean): void {
    const was = this.heatmapsOn;
    this.heatmapsOn = on;
    this.heatmapToggle.checked = on;
    if (on) this.heatmapToggle.setAttribute('checked', '');
    else this.heatmapToggle.removeAttribute('checked');
    this.grid.dataset.heatmaps = on ? 'on' : 'off';
    if (on && !was) this.requestHeatmaps([...this.grid.querySelectorAll<HTMLElement>('.thumb')]);
  }

  /** Forgets the heatmaps (another run is shown, or this one's model changed); the next render asks again. */
  resetHeatmaps(): void {
    this.heatmaps.clear();
    for (const thumb of this.grid.querySelectorAll<HTMLElement>('.thumb')) {
      thumb.querySelector('canvas.heatmap')?.remove();
      applyHeatmap(thumb, undefined);
    }
  }

  /** Lays the heatmaps the host sent over their thumbnails; failed ones say why. */
  receiveHeatmaps(heatmaps: readonly PanelHeatmap[], failed: readonly { path: string; reason: string }[]): void {
    const changed = new Set(this.heatmaps.receive(heatmaps, failed));
    for (const thumb of this.grid.querySelectorAll<HTMLElement>('.thumb')) {
      const key = this.currentPath(thumb);
      if (changed.has(key)) applyHeatmap(thumb, this.heatmaps.get(key));
    }
  }

  /** Marks a thumbnail as moved to another class folder. */
  markMoved(path: string, moved: MovedImage): void {
    for (const thumb of this.grid.querySelectorAll<HTMLElement>('.thumb')) {
      if (thumb.dataset.path === path) this.applyMoved(thumb, moved);
    }
  }

  dispose(): void {
    this.observer?.disconnect();
  }

  private renderPage(): void {
    if (!this.evaluation || !this.cell) return;
    const end = Math.min(this.images.length, this.rendered + GALLERY_PAGE_SIZE);
    const fragment = document.createDocumentFragment();
    const added: HTMLElement[] = [];
    for (let i = this.rendered; i < end; i++) added.push(this.thumb(this.images[i]!, i));
    fragment.append(...added);
    this.grid.appendChild(fragment);
    this.rendered = end;
    this.updateMore();
    if (this.heatmapsOn) this.requestHeatmaps(added);
  }

  private currentPath(thumb: HTMLElement): string {
    return thumb.dataset.newPath ?? thumb.dataset.path ?? '';
  }

  /** Shows the heatmaps known for `thumbs` and asks the host, in one message, for the ones it has not sent. */
  private requestHeatmaps(thumbs: readonly HTMLElement[]): void {
    const wanted = this.heatmaps.claim(thumbs.map((t) => this.currentPath(t)).filter((p) => p !== ''));
    for (const thumb of thumbs) applyHeatmap(thumb, this.heatmaps.get(this.currentPath(thumb)));
    if (wanted.length > 0) this.actions.explain(wanted);
  }

  private updateMore(): void {
    const remaining = this.images.length - this.rendered;
    this.more.hidden = remaining <= 0;
    this.more.textContent = remaining > 0 ? `Show ${Math.min(remaining, GALLERY_PAGE_SIZE)} more (${remaining} not shown yet)` : '';
  }

  private thumb(prediction: Prediction, index: number): HTMLElement {
    const evaluation = this.evaluation!;
    const [actual, predicted] = this.cell!;
    const classes = evaluation.classes;
    const name = fileName(prediction.path);
    const confidence =
      actual === predicted
        ? `${classes[actual]} ${formatPercent(probabilityOf(prediction, actual), 0)}`
        : `${classes[predicted]} ${formatPercent(probabilityOf(prediction, predicted), 0)} · ${classes[actual]} ${formatPercent(probabilityOf(prediction, actual), 0)}`;
    const targets = classes.map((c, i) => ({ c, i })).filter(({ i }) => i !== actual);
    const preferred = predicted !== actual ? predicted : targets[0]?.i;
    const select = h(
      'select',
      { class: 'move-target', 'aria-label': `Class folder to move ${name} to` },
      ...targets.map(({ c, i }) => h('option', { value: c, selected: i === preferred }, c)),
    );
    const thumb = h(
      'div',
      { class: 'thumb', role: 'listitem', 'data-path': prediction.path, 'data-index': index },
      h(
        'button',
        { type: 'button', class: 'open', title: `Open ${prediction.path} beside the panel (with its heatmap when heatmaps are shown)` },
        h('img', {
          src: imageUrl(this.imageBaseUri, prediction.path),
          alt: prediction.path,
          loading: 'lazy',
          decoding: 'async',
          width: 128,
          height: 128,
        }),
      ),
      h(
        'div',
        { class: 'caption' },
        h('span', { class: 'name', title: prediction.path }, name),
        h('span', { class: 'confidence' }, confidence),
        prediction.unknown
          ? h(
              'span',
              {
                class: 'unknown-badge',
                title: `Unlike every class the model knows: novelty ${prediction.novelty?.toFixed(1) ?? '?'}${evaluation.novelty ? ` above the threshold ${evaluation.novelty.threshold.toFixed(1)}` : ''}`,
              },
              'unknown',
            )
          : null,
      ),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'reveal', title: 'Reveal in Explorer' }, 'Reveal'),
        select,
        h('button', { type: 'button', class: 'move', title: 'Move to class folder…', disabled: targets.length === 0 }, 'Move…'),
      ),
    );
    if (prediction.unknown) thumb.dataset.unknown = 'true';
    const moved = this.moved.get(prediction.path);
    if (moved) this.applyMoved(thumb, moved);
    return thumb;
  }

  private applyMoved(thumb: HTMLElement, moved: MovedImage): void {
    thumb.dataset.moved = 'true';
    if (moved.newPath) {
      thumb.dataset.newPath = moved.newPath;
      const img = thumb.querySelector('img');
      if (img) img.src = imageUrl(this.imageBaseUri, moved.newPath);
    }
    for (const control of thumb.querySelectorAll<HTMLButtonElement | HTMLSelectElement>('.move, .move-target')) control.disabled = true;
    let note = thumb.querySelector('.moved-note');
    if (!note) {
      note = h('span', { class: 'moved-note' });
      thumb.querySelector('.caption')?.appendChild(note);
    }
    note.textContent = `Moved to ${moved.toClass}`;
  }

  private onClick(event: Event): void {
    const target = event.target as Element;
    const thumb = target.closest('.thumb');
    if (!(thumb instanceof HTMLElement) || !thumb.dataset.path) return;
    const path = thumb.dataset.path;
    const current = thumb.dataset.newPath ?? path;
    if (target.closest('.reveal')) {
      this.actions.reveal(current);
    } else if (target.closest('.move')) {
      const select = thumb.querySelector<HTMLSelectElement>('.move-target');
      if (select && select.value && thumb.dataset.moved !== 'true') this.actions.move(path, select.value);
    } else if (target.closest('.open')) {
      this.actions.open(current, this.heatmapsOn);
    }
  }
}
