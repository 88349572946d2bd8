// The feature map: a point per image at its 2-D projection, coloured by class, validation mistakes
// ringed and (when the doctor ran) its findings boxed. Drawn on one canvas so 20,000 points pan and
// zoom smoothly; hover shows the image's thumbnail, a click opens it, a Shift-drag lassoes points
// that can then be moved to a class folder together. The arrow keys walk the points and Enter
// opens one, for keyboards.
import type { FeatureMapFile } from '../shared/featureMap';
import type { MapMarks } from '../shared/protocol/explore';
import type { Evaluation } from '../shared/types';
import { plural } from './displayFormat';
import { h, replaceChildren } from './domBuilder';
import { imageUrl } from './galleryOrder';
import { cssVariable } from './themeColors';

/** Space around the points, in CSS pixels: a point at (0, 0) of the map is drawn at (PAD, PAD) before any pan or zoom. */
export const MAP_PAD = 16;
const HIT_RADIUS = 7;

/** True if (x, y) lies inside the polygon (even–odd rule). */
export function insidePolygon(x: number, y: number, polygon: readonly { x: number; y: number }[]): boolean {
  let inside = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const a = polygon[i]!;
    const b = polygon[j]!;
    if (a.y > y !== b.y > y && x < ((b.x - a.x) * (y - a.y)) / (b.y - a.y) + a.x) inside = !inside;
  }
  return inside;
}

/** Distinct colours for `n` classes: the theme's chart colours first, then evenly spaced hues. */
export function classColors(n: number): string[] {
  const theme = ['blue', 'red', 'green', 'yellow', 'purple', 'orange'].map((c) => cssVariable([`--vscode-charts-${c}`], ''));
  const fallback = ['#3794ff', '#f14c4c', '#89d185', '#cca700', '#b180d7', '#d18616'];
  return Array.from({ length: n }, (_, i) =>
    i < theme.length ? theme[i] || fallback[i]! : `hsl(${Math.round((i * 137.5) % 360)} 65% 55%)`,
  );
}

/** The `#map` section. */
export class MapView {
  readonly element: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly tip: HTMLElement;
  private readonly legend: HTMLElement;
  private readonly caption: HTMLElement;
  private readonly selectionBar: HTMLElement;
  private lasso: { x: number; y: number }[] | undefined;
  private selected = new Set<number>();
  private map: FeatureMapFile | undefined;
  private mistakes = new Map<number, string>();
  private findings = new Map<number, string>();
  private imageBaseUri = '';
  private colors: string[] = [];
  /** View transform: screen = PAD + point × (size − 2 PAD) × zoom + pan. */
  private zoom = 1;
  private pan = { x: 0, y: 0 };
  private hovered = -1;
  private frame = 0;
  private drag: { x: number; y: number; moved: boolean } | undefined;
  /** The canvas size (CSS pixels) the points were last laid out for: hit tests use the picture on screen. */
  private laidOut = { width: 0, height: 0 };
  private readonly resize: ResizeObserver | undefined;
  /** Frames drawn and the time the last one took (ms), for the benchmark. */
  readonly stats = { frames: 0, lastFrameMs: 0 };

  constructor(
    private readonly open: (path: string) => void,
    private readonly move: (paths: string[], toClass: string) => void = () => undefined,
  ) {
    this.selectionBar = h('div', { id: 'map-selection', class: 'map-selection', hidden: true });
    this.canvas = h('canvas', { id: 'map-canvas', tabindex: 0, role: 'img', 'aria-label': 'Feature map' }) as HTMLCanvasElement;
    this.tip = h('div', { id: 'map-tip', class: 'map-tip', hidden: true });
    this.legend = h('ul', { id: 'map-legend', class: 'map-legend' });
    this.caption = h('p', { id: 'map-caption', class: 'muted' });
    this.element = h(
      'section',
      { id: 'map', 'aria-labelledby': 'map-title', hidden: true },
      h('h2', { id: 'map-title' }, 'Feature map'),
      this.caption,
      h('div', { class: 'map-frame' }, this.canvas, this.tip),
      this.selectionBar,
      this.legend,
    );
    this.canvas.addEventListener('mousemove', (e) => this.onMove(e));
    this.canvas.addEventListener('mouseleave', () => this.setHovered(-1));
    this.canvas.addEventListener('mousedown', (e) => {
      if (e.shiftKey) this.lasso = [this.local(e)];
      else this.drag = { x: e.clientX, y: e.clientY, moved: false };
    });
    this.canvas.addEventListener('mouseup', (e) => this.onUp(e));
    this.canvas.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.canvas.addEventListener('dblclick', () => this.resetView());
    this.canvas.addEventListener('keydown', (e) => this.onKey(e));
    // A narrower or wider panel lays the points out again.
    this.resize = typeof ResizeObserver === 'undefined' ? undefined : new ResizeObserver(() => this.requestDraw());
    this.resize?.observe(this.element);
  }

  dispose(): void {
    this.resize?.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }

  /** The map shown, if any. */
  get current(): FeatureMapFile | undefined {
    return this.map;
  }

  render(map: FeatureMapFile, marks: MapMarks, evaluation: Evaluation | undefined, imageBaseUri: string): void {
    this.map = map;
    this.imageBaseUri = imageBaseUri;
    const index = new Map(map.paths.map((p, i) => [p, i]));
    this.mistakes = new Map();
    for (const p of evaluation?.predictions ?? []) {
      const i = index.get(p.path);
      if (i !== undefined && p.predicted !== p.actual) this.mistakes.set(i, `predicted ${evaluation!.classes[p.predicted]}`);
    }
    this.findings = new Map();
    for (const d of marks.doctor ?? []) {
      const i = index.get(d.path);
      if (i !== undefined) this.findings.set(i, [this.findings.get(i), d.finding].filter(Boolean).join(', '));
    }
    this.colors = classColors(map.classes.length);
    const validation = map.sides.filter((s) => s === 1).length;
    this.caption.textContent =
      `${plural(map.paths.length, 'image')} (${validation} validation) by their feature vectors: PCA to ${map.method.pca} dimensions, then UMAP (seed ${map.method.seed}). ` +
      `Ringed: ${plural(this.mistakes.size, 'validation mistake')}${marks.doctor ? `; boxed: ${plural(this.findings.size, 'doctor finding')}` : ''}. Scroll to zoom, drag to pan, double-click to reset, Shift-drag to select.`;
    replaceChildren(
      this.legend,
      ...map.classes.map((c, i) => {
        const swatch = h('span', { class: 'swatch' });
        swatch.style.setProperty('--swatch', this.colors[i]!);
        return h('li', {}, swatch, c);
      }),
    );
    this.element.hidden = false;
    this.selected = new Set();
    this.renderSelection();
    this.resetView();
  }

  /** Redraws on the next animation frame (coalesced). */
  requestDraw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.draw();
    });
  }

  /** Pans by (dx, dy) CSS pixels and zooms by `factor` around (cx, cy): what a drag and the wheel do. */
  panZoom(dx: number, dy: number, factor = 1, cx = 0, cy = 0): void {
    this.pan = { x: cx - (cx - this.pan.x - dx) * factor, y: cy - (cy - this.pan.y - dy) * factor };
    this.zoom *= factor;
    this.requestDraw();
  }

  /** Theme change: colours again. */
  restyle(): void {
    if (!this.map) return;
    this.colors = classColors(this.map.classes.length);
    this.requestDraw();
  }

  private resetView(): void {
    this.zoom = 1;
    this.pan = { x: 0, y: 0 };
    this.requestDraw();
  }

  private size(): { width: number; height: number } {
    const width = Math.max(200, this.canvas.clientWidth || this.element.clientWidth || 400);
    return { width, height: Math.round(Math.min(Math.max(240, width * 0.75), 640)) };
  }

  /** Screen position (CSS pixels in the canvas) of point `i`, as last drawn. */
  screenOf(i: number): { x: number; y: number } {
    const { width, height } = this.laidOut.width > 0 ? this.laidOut : this.size();
    const map = this.map!;
    return {
      x: MAP_PAD + map.x[i]! * (width - 2 * MAP_PAD) * this.zoom + this.pan.x,
      y: MAP_PAD + map.y[i]! * (height - 2 * MAP_PAD) * this.zoom + this.pan.y,
    };
  }

  private draw(): void {
    const map = this.map;
    const ctx = this.canvas.getContext('2d');
    if (!map || !ctx) return;
    const t0 = performance.now();
    const { width, height } = this.size();
    this.laidOut = { width, height };
    const ratio = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(width * ratio) || this.canvas.height !== Math.round(height * ratio)) {
      this.canvas.width = Math.round(width * ratio);
      this.canvas.height = Math.round(height * ratio);
      this.canvas.style.height = `${height}px`;
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const sx = (width - 2 * MAP_PAD) * this.zoom;
    const sy = (height - 2 * MAP_PAD) * this.zoom;
    const ox = MAP_PAD + this.pan.x;
    const oy = MAP_PAD + this.pan.y;
    const r = map.paths.length > 5000 ? 1.5 : 2.5;
    // One path per class: 20,000 points cost a handful of fills.
    for (let c = 0; c < map.classes.length; c++) {
      ctx.fillStyle = this.colors[c]!;
      ctx.beginPath();
      for (let i = 0; i < map.paths.length; i++) {
        if (map.labels[i] !== c) continue;
        const x = ox + map.x[i]! * sx;
        const y = oy + map.y[i]! * sy;
        if (x < -r || y < -r || x > width + r || y > height + r) continue;
        ctx.rect(x - r, y - r, 2 * r, 2 * r);
      }
      ctx.fill();
    }
    this.outline(ctx, this.mistakes, cssVariable(['--vscode-errorForeground'], '#f14c4c'), 'ring', ox, oy, sx, sy);
    this.outline(ctx, this.findings, cssVariable(['--vscode-editorWarning-foreground'], '#cca700'), 'box', ox, oy, sx, sy);
    this.drawSelection(ctx, ox, oy, sx, sy);
    if (this.hovered >= 0) {
      ctx.strokeStyle = cssVariable(['--vscode-focusBorder'], '#007fd4');
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(ox + map.x[this.hovered]! * sx, oy + map.y[this.hovered]! * sy, 7, 0, 2 * Math.PI);
      ctx.stroke();
    }
    this.stats.frames++;
    this.stats.lastFrameMs = performance.now() - t0;
    // For measurements from outside (the browser benchmark): frames drawn, and the last one's cost.
    this.canvas.dataset.frames = String(this.stats.frames);
    this.canvas.dataset.frameMs = this.stats.lastFrameMs.toFixed(2);
  }

  private outline(
    ctx: CanvasRenderingContext2D,
    marks: Map<number, string>,
    color: string,
    shape: 'ring' | 'box',
    ox: number,
    oy: number,
    sx: number,
    sy: number,
  ): void {
    if (marks.size === 0) return;
    const map = this.map!;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (const i of marks.keys()) {
      const x = ox + map.x[i]! * sx;
      const y = oy + map.y[i]! * sy;
      if (shape === 'ring') {
        ctx.moveTo(x + 5, y);
        ctx.arc(x, y, 5, 0, 2 * Math.PI);
      } else ctx.rect(x - 5, y - 5, 10, 10);
    }
    ctx.stroke();
  }

  /** The lasso being drawn, and the selected points outlined. */
  private drawSelection(ctx: CanvasRenderingContext2D, ox: number, oy: number, sx: number, sy: number): void {
    const focus = cssVariable(['--vscode-focusBorder'], '#007fd4');
    if (this.lasso && this.lasso.length > 1) {
      ctx.strokeStyle = focus;
      ctx.lineWidth = 1;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      this.lasso.forEach((p, i) => (i === 0 ? ctx.moveTo(p.x, p.y) : ctx.lineTo(p.x, p.y)));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (this.selected.size === 0) return;
    const map = this.map!;
    ctx.strokeStyle = focus;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    for (const i of this.selected) ctx.rect(ox + map.x[i]! * sx - 4, oy + map.y[i]! * sy - 4, 8, 8);
    ctx.stroke();
  }

  /** Selects the points inside `polygon` (canvas pixels) and offers to move them to a class. */
  select(polygon: readonly { x: number; y: number }[]): void {
    const map = this.map;
    if (!map) return;
    this.selected = new Set();
    if (polygon.length >= 3)
      for (let i = 0; i < map.paths.length; i++) {
        const p = this.screenOf(i);
        if (insidePolygon(p.x, p.y, polygon)) this.selected.add(i);
      }
    this.renderSelection();
    this.requestDraw();
  }

  /** The paths of the selected points. */
  get selection(): string[] {
    return [...this.selected].map((i) => this.map!.paths[i]!);
  }

  private renderSelection(): void {
    const map = this.map;
    if (!map || this.selected.size === 0) {
      this.selectionBar.hidden = true;
      replaceChildren(this.selectionBar);
      return;
    }
    const select = h(
      'select',
      { id: 'map-move-target', class: 'move-target', 'aria-label': 'Class folder to move the selected images to' },
      ...map.classes.map((c) => h('option', { value: c }, c)),
    );
    const moveButton = h('button', { type: 'button', id: 'map-move', class: 'secondary-button' }, 'Move to class folder…');
    const clear = h('button', { type: 'button', id: 'map-clear', class: 'secondary-button' }, 'Clear');
    moveButton.addEventListener('click', () => {
      const toClass = (select as HTMLSelectElement).value;
      if (toClass) this.move(this.selection, toClass);
    });
    clear.addEventListener('click', () => this.select([]));
    replaceChildren(this.selectionBar, h('span', {}, `${plural(this.selected.size, 'image')} selected`), select, moveButton, clear);
    this.selectionBar.hidden = false;
  }

  /** The point nearest to (x, y) within the hit radius, or −1. */
  pointNear(x: number, y: number): number {
    const map = this.map;
    if (!map) return -1;
    let best = -1;
    let bestD = HIT_RADIUS * HIT_RADIUS;
    for (let i = 0; i < map.paths.length; i++) {
      const p = this.screenOf(i);
      const d = (p.x - x) ** 2 + (p.y - y) ** 2;
      if (d <= bestD) {
        bestD = d;
        best = i;
      }
    }
    return best;
  }

  private local(e: MouseEvent): { x: number; y: number } {
    const box = this.canvas.getBoundingClientRect();
    return { x: e.clientX - box.left, y: e.clientY - box.top };
  }

  private onMove(e: MouseEvent): void {
    if (this.lasso) {
      this.lasso.push(this.local(e));
      this.requestDraw();
      return;
    }
    if (this.drag && (e.buttons & 1) === 1) {
      const dx = e.clientX - this.drag.x;
      const dy = e.clientY - this.drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 2) this.drag.moved = true;
      this.drag.x = e.clientX;
      this.drag.y = e.clientY;
      if (this.drag.moved) this.panZoom(dx, dy);
      return;
    }
    const p = this.local(e);
    this.setHovered(this.pointNear(p.x, p.y));
  }

  private onUp(e: MouseEvent): void {
    if (this.lasso) {
      const polygon = [...this.lasso, this.local(e)];
      this.lasso = undefined;
      this.select(polygon);
      return;
    }
    const drag = this.drag;
    this.drag = undefined;
    if (drag?.moved || !this.map) return;
    const p = this.local(e);
    const i = this.pointNear(p.x, p.y);
    if (i >= 0) this.open(this.map.paths[i]!);
  }

  private onWheel(e: WheelEvent): void {
    e.preventDefault();
    const p = this.local(e);
    this.panZoom(0, 0, Math.exp(-e.deltaY * 0.0015), p.x, p.y);
  }

  private onKey(e: KeyboardEvent): void {
    const map = this.map;
    if (!map) return;
    if (e.key === 'Enter' && this.hovered >= 0) {
      this.open(map.paths[this.hovered]!);
      return;
    }
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[e.key];
    if (step === undefined) return;
    e.preventDefault();
    this.setHovered((this.hovered + step + map.paths.length) % map.paths.length);
  }

  private setHovered(i: number): void {
    if (i === this.hovered) return;
    this.hovered = i;
    this.requestDraw();
    const map = this.map;
    if (!map || i < 0) {
      this.tip.hidden = true;
      return;
    }
    const notes = [
      map.classes[map.labels[i]!],
      map.sides[i] === 1 ? 'validation' : 'training',
      this.mistakes.get(i),
      this.findings.get(i),
    ].filter(Boolean);
    replaceChildren(
      this.tip,
      h('img', { src: imageUrl(this.imageBaseUri, map.paths[i]!), alt: map.paths[i]!, width: 96, height: 96 }),
      h('span', { class: 'name' }, map.paths[i]!),
      h('span', { class: 'muted' }, notes.join(' · ')),
    );
    const p = this.screenOf(i);
    const { width } = this.laidOut;
    this.tip.style.left = `${Math.min(Math.max(0, p.x + 12), Math.max(0, width - 180))}px`;
    this.tip.style.top = `${Math.max(0, p.y + 12)}px`;
    this.tip.hidden = false;
    this.canvas.setAttribute('aria-label', `Feature map: ${map.paths[i]} (${notes.join(', ')})`);
  }
}
