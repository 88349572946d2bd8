// The comparison of two runs: settings that differ, dataset changes, figures side by side, the
// validation-accuracy and loss curves of both overlaid, both confusion matrices and their
// difference, and the flipped images as galleries with the error gallery's thumbnail actions.
import type { FlippedImage } from '../shared/compare';
import type { ComparisonView } from '../shared/protocol/explore';
import type { EpochMetrics, Evaluation, Prediction } from '../shared/types';
import { formatPercent, plural } from './displayFormat';
import { h, replaceChildren } from './domBuilder';
import { GalleryView, type GalleryActions, type MovedImage } from './galleryView';

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag: string, attributes: Record<string, string | number>): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

const shortDate = (iso: string): string => iso.replace('T', ' ').replace(/:\d\d(\.\d+)?Z$/, ' UTC');

/** One chart of a metric over epochs for both runs (A dashed, B solid), drawn as SVG so it scales with the panel. */
function overlayChart(
  title: string,
  a: EpochMetrics[],
  b: EpochMetrics[],
  value: (m: EpochMetrics) => number,
  percent: boolean,
): HTMLElement {
  const width = 320;
  const height = 150;
  const pad = { left: 40, right: 8, top: 8, bottom: 22 };
  const all = [...a, ...b].map(value).filter(Number.isFinite);
  const epochs = Math.max(1, ...a.map((m) => m.epoch), ...b.map((m) => m.epoch));
  const lo = percent ? Math.min(0.5, ...all) : 0;
  const hi = percent ? 1 : Math.max(1e-6, ...all);
  const x = (epoch: number) => pad.left + ((epoch - 1) / Math.max(1, epochs - 1)) * (width - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - (v - lo) / Math.max(1e-9, hi - lo)) * (height - pad.top - pad.bottom);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'overlay-chart', role: 'img', 'aria-label': title });
  for (const t of [lo, (lo + hi) / 2, hi]) {
    chart.appendChild(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(t), y2: y(t), class: 'grid' }));
    const label = svg('text', { x: pad.left - 4, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' });
    label.textContent = percent ? `${Math.round(t * 100)}%` : t.toPrecision(2);
    chart.appendChild(label);
  }
  const axis = svg('text', { x: width - pad.right, y: height - 6, class: 'tick', 'text-anchor': 'end' });
  axis.textContent = `epoch (1–${epochs})`;
  chart.appendChild(axis);
  for (const [run, series] of [
    ['a', a],
    ['b', b],
  ] as const) {
    const shown = series.filter((m) => Number.isFinite(value(m)));
    const points = shown.map((m) => `${x(m.epoch).toFixed(1)},${y(value(m)).toFixed(1)}`);
    if (points.length) chart.appendChild(svg('polyline', { points: points.join(' '), class: `series run-${run}` }));
    // A marker per epoch, so a one-epoch run shows too.
    for (const m of shown)
      chart.appendChild(svg('circle', { cx: x(m.epoch).toFixed(1), cy: y(value(m)).toFixed(1), r: 2.5, class: `dot run-${run}` }));
  }
  return h('figure', { class: 'chart' }, h('figcaption', {}, title), chart);
}

/** A confusion matrix as a table; `diff` shows B − A with signs. */
function matrixTable(caption: string, classes: string[], cell: (i: number, j: number) => number, diff: boolean): HTMLElement {
  const max = Math.max(1, ...classes.flatMap((_, i) => classes.map((__, j) => Math.abs(cell(i, j)))));
  const table = h(
    'table',
    { class: `mini-matrix${diff ? ' diff' : ''}` },
    h('caption', {}, caption),
    h('tr', {}, h('th', { scope: 'col' }, 'true \\ predicted'), ...classes.map((c) => h('th', { scope: 'col', title: c }, c))),
  );
  classes.forEach((c, i) => {
    const row = h('tr', {}, h('th', { scope: 'row', title: c }, c));
    classes.forEach((_, j) => {
      const v = cell(i, j);
      // In the difference, more on the diagonal or less off it is better.
      const better = diff && v !== 0 && (i === j) === v > 0;
      const worse = diff && v !== 0 && !better;
      const td = h(
        'td',
        {
          class: [i === j ? 'diagonal' : '', v === 0 ? 'zero' : '', better ? 'better' : '', worse ? 'worse' : ''].filter(Boolean).join(' '),
        },
        diff && v > 0 ? `+${v}` : String(v),
      );
      td.style.setProperty('--heat', `${Math.round((100 * Math.abs(v)) / max)}%`);
      row.appendChild(td);
    });
    table.appendChild(row);
  });
  return h('div', { class: 'matrix-scroll' }, table);
}

/** The `#compare` section. */
export class CompareView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly galleries: Record<'fixed' | 'broken' | 'changed', GalleryView>;
  private view: ComparisonView | undefined;

  constructor(actions: GalleryActions) {
    this.galleries = {
      fixed: new GalleryView(actions, { id: 'flips-fixed' }),
      broken: new GalleryView(actions, { id: 'flips-broken' }),
      changed: new GalleryView(actions, { id: 'flips-changed' }),
    };
    this.body = h('div', { class: 'compare-body' });
    this.element = h(
      'section',
      { id: 'compare', 'aria-labelledby': 'compare-title', hidden: true },
      h('h2', { id: 'compare-title' }, 'Comparison'),
      this.body,
    );
  }

  /** The comparison shown, if any. */
  get current(): ComparisonView | undefined {
    return this.view;
  }

  render(view: ComparisonView, imageBaseUri: string, moved: ReadonlyMap<string, MovedImage>): void {
    this.view = view;
    const c = view.comparison;
    const m = c.metrics;
    const v = c.validation;
    replaceChildren(
      this.body,
      h(
        'p',
        { class: 'compare-runs' },
        h('span', { class: 'run-a' }, `A (before): ${c.a.name} · ${shortDate(c.a.startedAt)} · ${c.a.model}`),
        h('br'),
        h('span', { class: 'run-b' }, `B (after): ${c.b.name} · ${shortDate(c.b.startedAt)} · ${c.b.model}`),
      ),
      h(
        'p',
        { id: 'compare-summary' },
        `Accuracy ${formatPercent(m.a.accuracy)} → ${formatPercent(m.b.accuracy)}. On the ${plural(v.both, 'validation image')} both runs validated: ${formatPercent(m.a.commonAccuracy)} → ${formatPercent(m.b.commonAccuracy)}`,
        v.onlyA + v.onlyB > 0 ? ` (${v.onlyA} validated only by A, ${v.onlyB} only by B).` : '.',
        ` ${c.flips.fixed.length} fixed, ${c.flips.broken.length} broken, ${c.flips.changed.length} wrong differently.`,
      ),
      this.settings(),
      this.dataset(),
      this.figures(),
      h(
        'div',
        { class: 'charts overlay' },
        overlayChart('Validation accuracy (A dashed, B solid)', view.epochsA, view.epochsB, (e) => e.valAcc, true),
        overlayChart('Validation loss (A dashed, B solid)', view.epochsA, view.epochsB, (e) => e.valLoss, false),
      ),
      this.matrices(),
      ...this.flipGalleries(imageBaseUri, moved),
    );
    this.element.hidden = false;
  }

  dispose(): void {
    for (const g of Object.values(this.galleries)) g.dispose();
  }

  private settings(): HTMLElement {
    const s = this.view!.comparison.settings;
    if (s.length === 0) return h('p', { id: 'compare-settings' }, 'Same settings.');
    return h(
      'table',
      { id: 'compare-settings', class: 'plain-table' },
      h('caption', {}, 'Settings that differ'),
      h('tr', {}, h('th', {}, 'setting'), h('th', {}, 'A'), h('th', {}, 'B')),
      ...s.map((d) =>
        h(
          'tr',
          {},
          h('td', {}, d.name),
          h('td', {}, d.a === undefined ? '—' : String(d.a)),
          h('td', {}, d.b === undefined ? '—' : String(d.b)),
        ),
      ),
    );
  }

  private dataset(): HTMLElement {
    const d = this.view!.comparison.dataset;
    if (!d.recorded)
      return h(
        'p',
        { id: 'compare-dataset', class: 'muted' },
        `Dataset: ${d.imagesA} → ${d.imagesB} images (a run folder does not list its images).`,
      );
    const lines = [
      ...d.added.map((x) => `+ ${x.path}`),
      ...d.removed.map((x) => `− ${x.path}`),
      ...d.relabelled.map((x) => `${x.pathA} (${x.classA}) → ${x.pathB} (${x.classB})`),
      ...d.renamed.map((x) => `${x.pathA} → ${x.pathB}`),
    ];
    const summary = `Dataset: ${d.imagesA} → ${d.imagesB} images; ${d.added.length} added, ${d.removed.length} removed, ${d.relabelled.length} relabelled, ${d.renamed.length} renamed.`;
    if (lines.length === 0) return h('p', { id: 'compare-dataset' }, `${summary} Same images.`);
    return h(
      'details',
      { id: 'compare-dataset' },
      h('summary', {}, summary),
      h('ul', { class: 'file-list' }, ...lines.slice(0, 500).map((l) => h('li', {}, l))),
    );
  }

  private figures(): HTMLElement {
    const m = this.view!.comparison.metrics;
    const pr = (f: { precision: number; recall: number; f1: number } | undefined) =>
      f ? `${formatPercent(f.precision, 0)} / ${formatPercent(f.recall, 0)} / ${formatPercent(f.f1, 0)}` : '—';
    const ece = (x: typeof m.a) => (x.calibration ? formatPercent(x.calibration.eceAfter) : '—');
    return h(
      'table',
      { id: 'compare-figures', class: 'plain-table' },
      h('caption', {}, 'Figures (per class: precision / recall / F1)'),
      h('tr', {}, h('th', {}, ''), h('th', {}, 'A'), h('th', {}, 'B')),
      h('tr', {}, h('td', {}, 'accuracy'), h('td', {}, formatPercent(m.a.accuracy)), h('td', {}, formatPercent(m.b.accuracy))),
      h('tr', {}, h('td', {}, 'macro F1'), h('td', {}, formatPercent(m.a.macroF1)), h('td', {}, formatPercent(m.b.macroF1))),
      h('tr', {}, h('td', {}, 'calibration error (ECE)'), h('td', {}, ece(m.a)), h('td', {}, ece(m.b))),
      ...m.perClass.map((k) => h('tr', {}, h('td', {}, k.name), h('td', {}, pr(k.a)), h('td', {}, pr(k.b)))),
    );
  }

  private matrices(): HTMLElement {
    const { matrixA, matrixB } = this.view!;
    const names = [...matrixA.classes, ...matrixB.classes.filter((c) => !matrixA.classes.includes(c))];
    const at = (m: typeof matrixA, i: number, j: number) => {
      const r = m.classes.indexOf(names[i]!);
      const c = m.classes.indexOf(names[j]!);
      return r < 0 || c < 0 ? 0 : (m.matrix[r]?.[c] ?? 0);
    };
    return h(
      'div',
      { id: 'compare-matrices', class: 'matrices' },
      matrixTable('A', names, (i, j) => at(matrixA, i, j), false),
      matrixTable('B', names, (i, j) => at(matrixB, i, j), false),
      matrixTable('B − A', names, (i, j) => at(matrixB, i, j) - at(matrixA, i, j), true),
    );
  }

  /** The three galleries of flipped images, on B's images and classes. */
  private flipGalleries(imageBaseUri: string, moved: ReadonlyMap<string, MovedImage>): HTMLElement[] {
    const { comparison, matrixB } = this.view!;
    const classes = [...matrixB.classes];
    const indexOf = (name: string) => {
      if (!classes.includes(name)) classes.push(name);
      return classes.indexOf(name);
    };
    const asPrediction = (f: FlippedImage): Prediction => ({
      path: f.path,
      actual: indexOf(f.label),
      predicted: indexOf(f.after),
      confidence: f.confidenceAfter,
      probs: [],
    });
    const lists = {
      fixed: comparison.flips.fixed.map(asPrediction),
      broken: comparison.flips.broken.map(asPrediction),
      changed: comparison.flips.changed.map(asPrediction),
    };
    const evaluation = { classes, predictions: [] } as unknown as Evaluation;
    const byPath = new Map([...comparison.flips.fixed, ...comparison.flips.broken, ...comparison.flips.changed].map((f) => [f.path, f]));
    const caption = (p: Prediction) => {
      const f = byPath.get(p.path)!;
      return `${f.label}: ${f.before} ${formatPercent(f.confidenceBefore, 0)} → ${f.after} ${formatPercent(f.confidenceAfter, 0)}`;
    };
    const titles = {
      fixed: `Fixed (wrong → right): ${plural(lists.fixed.length, 'image')}`,
      broken: `Broken (right → wrong): ${plural(lists.broken.length, 'image')}`,
      changed: `Wrong differently: ${plural(lists.changed.length, 'image')}`,
    };
    return (['fixed', 'broken', 'changed'] as const).map((kind) => {
      this.galleries[kind].showImages(evaluation, lists[kind], titles[kind], imageBaseUri, moved, caption);
      return this.galleries[kind].element;
    });
  }
}
