// The gallery's heatmap overlays: which thumbnails have one, which are being computed, and the
// drawing of a heatmap (values sent by the host) onto a canvas laid over its thumbnail. The canvas
// keeps the image's aspect ratio and is fitted like the image (`object-fit: cover`), so the map
// sits on the part of the image it describes.
import { heatmapRgba } from '../shared/heatColours';
import type { PanelHeatmap } from '../shared/protocol/panel';
import { h } from './domBuilder';

/** What the gallery knows about one image's heatmap. */
export type HeatmapEntry = { kind: 'pending' } | { kind: 'shown'; heatmap: PanelHeatmap } | { kind: 'failed'; reason: string };

/** Draws `heatmap` onto `canvas` at the heatmap's own resolution (the browser scales it smoothly). */
export function drawHeatmap(canvas: HTMLCanvasElement, heatmap: PanelHeatmap): void {
  canvas.width = heatmap.width;
  canvas.height = heatmap.height;
  const context = canvas.getContext('2d');
  if (!context || typeof context.createImageData !== 'function') return;
  const image = context.createImageData(heatmap.width, heatmap.height) as ImageData | undefined;
  if (!image) return;
  image.data.set(heatmapRgba(heatmap.values));
  context.putImageData(image, 0, 0);
}

/** The heatmaps of the run shown, by image path; kept while the panel lives (toggling off and on asks nothing again). */
export class HeatmapStore {
  private readonly entries = new Map<string, HeatmapEntry>();

  /** Forgets every heatmap (another run, or the same run retrained). */
  clear(): void {
    this.entries.clear();
  }

  get(path: string): HeatmapEntry | undefined {
    return this.entries.get(path);
  }

  /** The paths of `paths` with no heatmap and none on its way, now marked pending. */
  claim(paths: Iterable<string>): string[] {
    const wanted: string[] = [];
    for (const path of paths) {
      if (this.entries.has(path)) continue;
      this.entries.set(path, { kind: 'pending' });
      wanted.push(path);
    }
    return wanted;
  }

  /** Records what the host sent; only paths that were asked for count. */
  receive(heatmaps: readonly PanelHeatmap[], failed: readonly { path: string; reason: string }[]): string[] {
    const changed: string[] = [];
    for (const heatmap of heatmaps) {
      if (this.entries.get(heatmap.path)?.kind !== 'pending') continue;
      this.entries.set(heatmap.path, { kind: 'shown', heatmap });
      changed.push(heatmap.path);
    }
    for (const f of failed) {
      if (this.entries.get(f.path)?.kind !== 'pending') continue;
      this.entries.set(f.path, { kind: 'failed', reason: f.reason });
      changed.push(f.path);
    }
    return changed;
  }
}

/** Shows `entry` on a thumbnail: the overlay canvas when there is a heatmap, the state in `data-heatmap` and the tooltip. */
export function applyHeatmap(thumb: HTMLElement, entry: HeatmapEntry | undefined): void {
  const frame = thumb.querySelector<HTMLElement>('.open');
  if (!frame) return;
  let canvas = frame.querySelector<HTMLCanvasElement>('canvas.heatmap');
  if (!entry) {
    delete thumb.dataset.heatmap;
    return;
  }
  thumb.dataset.heatmap = entry.kind;
  if (entry.kind === 'shown') {
    if (!canvas) {
      canvas = h('canvas', { class: 'heatmap', 'aria-hidden': 'true' }) as HTMLCanvasElement;
      frame.appendChild(canvas);
    }
    drawHeatmap(canvas, entry.heatmap);
  }
  const note = thumb.querySelector('.heatmap-note');
  if (entry.kind === 'failed') {
    const text = `No heatmap: ${entry.reason}`;
    if (note) note.textContent = text;
    else thumb.querySelector('.caption')?.appendChild(h('span', { class: 'heatmap-note' }, text));
  } else note?.remove();
}
