// Whether the confidences can be trusted: the reliability diagram of the held-out validation images
// before and after temperature scaling (per confidence bin, the share right against the mean
// confidence; a calibrated model's bars reach the diagonal), the ECE figures, and how many
// validation images the unknown detector flags. Drawn from evaluation.json's figures as SVG in the
// theme's chart colours.
import type { Evaluation, ReliabilityBin } from '../shared/types';
import { formatPercent, plural } from './displayFormat';
import { h, replaceChildren } from './domBuilder';
import { chartColors, type ChartColors } from './themeColors';

const SVG_NS = 'http://www.w3.org/2000/svg';
// The plot in viewBox units: 0–1 on both axes mapped into this square, labels around it.
const LEFT = 24;
const TOP = 8;
const SIZE = 160;

function svg(tag: string, attributes: Record<string, string | number>, ...children: (SVGElement | string)[]): SVGElement {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

const x = (v: number): number => LEFT + v * SIZE;
const y = (v: number): number => TOP + (1 - v) * SIZE;

/** One reliability diagram: a bar per non-empty bin up to its accuracy, a tick at its mean confidence, the diagonal. */
export function reliabilityDiagram(bins: readonly ReliabilityBin[], label: string, colors: ChartColors): SVGElement {
  const n = bins.length;
  const chart = svg('svg', {
    class: 'reliability-chart',
    viewBox: `0 0 ${LEFT + SIZE + 8} ${TOP + SIZE + 34}`,
    role: 'img',
    'aria-label': label,
  });
  chart.append(svg('rect', { x: x(0), y: y(1), width: SIZE, height: SIZE, fill: 'none', stroke: colors.grid }));
  for (const v of [0.5]) {
    chart.append(svg('line', { x1: x(v), y1: y(0), x2: x(v), y2: y(1), stroke: colors.grid, 'stroke-width': 0.5 }));
    chart.append(svg('line', { x1: x(0), y1: y(v), x2: x(1), y2: y(v), stroke: colors.grid, 'stroke-width': 0.5 }));
  }
  bins.forEach((bin, i) => {
    if (bin.count === 0) return;
    const from = i / n;
    const to = (i + 1) / n;
    const tip = `${formatPercent(from, 0)}–${formatPercent(to, 0)}: ${plural(bin.count, 'image')}, mean confidence ${formatPercent(bin.confidence)}, ${formatPercent(bin.accuracy)} right`;
    chart.append(
      svg(
        'rect',
        {
          class: 'reliability-bar',
          'data-bin': i,
          x: x(from) + 0.5,
          y: y(bin.accuracy),
          width: Math.max(0.5, (to - from) * SIZE - 1),
          height: Math.max(0, bin.accuracy * SIZE),
          fill: colors.train,
          'fill-opacity': 0.85,
        },
        svg('title', {}, tip),
      ),
    );
    chart.append(
      svg('line', {
        class: 'reliability-confidence',
        x1: x(from),
        x2: x(to),
        y1: y(bin.confidence),
        y2: y(bin.confidence),
        stroke: colors.validation,
        'stroke-width': 2,
      }),
    );
  });
  chart.append(svg('line', { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: colors.text, 'stroke-dasharray': '3 3', 'stroke-width': 1 }));
  const text = (content: string, tx: number, ty: number, anchor: string) =>
    svg('text', { x: tx, y: ty, 'text-anchor': anchor, fill: colors.text, 'font-size': 10 }, content);
  chart.append(
    text('0', x(0), y(0) + 12, 'middle'),
    text('1', x(1), y(0) + 12, 'middle'),
    text('confidence', x(0.5), y(0) + 12, 'middle'),
    text('0', x(0) - 4, y(0), 'end'),
    text('1', x(0) - 4, y(1) + 8, 'end'),
  );
  const yLabel = text('accuracy', 0, 0, 'middle');
  yLabel.setAttribute('transform', `translate(${x(0) - 8} ${y(0.5)}) rotate(-90)`);
  chart.append(yLabel);
  return chart;
}

function legend(colors: ChartColors): HTMLElement {
  const swatch = (color: string, kind: string) => {
    const s = h('span', { class: `swatch ${kind}`, 'aria-hidden': 'true' });
    s.style.background = color;
    return s;
  };
  return h(
    'p',
    { class: 'reliability-legend muted' },
    swatch(colors.train, 'bar'),
    ' accuracy (share right) · ',
    swatch(colors.validation, 'tick'),
    ' mean confidence · dashed: perfectly calibrated',
  );
}

/** The `#reliability-section`: calibration figures and diagrams, and the unknown images of the validation set. */
export class ReliabilityView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private evaluation: Evaluation | undefined;

  constructor() {
    this.body = h('div', { class: 'reliability-body' });
    this.element = h(
      'section',
      { id: 'reliability-section', 'aria-labelledby': 'reliability-title', hidden: true },
      h('h2', { id: 'reliability-title' }, 'Can the confidences be trusted?'),
      this.body,
    );
  }

  /** Shows the calibration and unknown detection of `evaluation` (hidden while it has neither). */
  render(evaluation: Evaluation | undefined): void {
    this.evaluation = evaluation;
    const c = evaluation?.calibration;
    const novelty = evaluation?.novelty;
    this.element.hidden = !c && !novelty;
    if (!evaluation || (!c && !novelty)) {
      replaceChildren(this.body);
      return;
    }
    const colors = chartColors();
    replaceChildren(this.body);
    if (c) {
      const summary = c.fallback
        ? `Temperature kept at 1: ${c.fallback}.`
        : c.temperature === 1
          ? 'Temperature 1: scaling did not lower the validation log-loss, so the confidences are left as they are.'
          : `Temperature ${c.temperature.toFixed(2)}: confidences ${c.temperature > 1 ? 'softened' : 'sharpened'} by dividing the logits by it.`;
      this.body.append(
        h('p', { id: 'calibration-summary' }, summary),
        h(
          'p',
          { id: 'ece-summary', class: 'muted' },
          c.temperature === 1
            ? `Expected calibration error (${c.bins} bins) on ${plural(c.heldOut, 'held-out validation image')}: ${c.eceBefore.toFixed(3)}.`
            : `Expected calibration error (${c.bins} bins) on ${plural(c.heldOut, 'held-out validation image')}: ${c.eceBefore.toFixed(3)} before, ${c.eceAfter.toFixed(3)} after scaling.`,
        ),
      );
      if (c.reliability) {
        const figure = (bins: ReliabilityBin[], when: 'before' | 'after', caption: string) =>
          h(
            'figure',
            { class: 'reliability', 'data-when': when },
            reliabilityDiagram(bins, caption, colors) as unknown as HTMLElement,
            h('figcaption', {}, caption),
          );
        // Not scaled: "after" is "before", and one diagram says it.
        const charts =
          c.temperature === 1
            ? [figure(c.reliability.before, 'before', `Not scaled (T = 1) · ECE ${c.eceBefore.toFixed(3)}`)]
            : [
                figure(c.reliability.before, 'before', `Before scaling · ECE ${c.eceBefore.toFixed(3)}`),
                figure(c.reliability.after, 'after', `After scaling (T = ${c.temperature.toFixed(2)}) · ECE ${c.eceAfter.toFixed(3)}`),
              ];
        this.body.append(h('div', { class: 'reliability-charts' }, ...charts), legend(colors));
      }
    }
    if (novelty) {
      const flagged = evaluation.predictions.some((p) => p.unknown !== undefined)
        ? evaluation.predictions.filter((p) => p.unknown).length
        : novelty.valFlagged;
      const total = evaluation.predictions.length || novelty.valImages;
      this.body.append(
        h(
          'p',
          { id: 'unknown-summary', 'data-flagged': flagged },
          `Unknown: ${flagged} of ${plural(total, 'validation image')} unlike every class (novelty above ${novelty.threshold.toFixed(1)}, the ${novelty.percentile}th percentile of the validation scores)${flagged > 0 ? '; marked “unknown” in the gallery' : ''}.`,
        ),
      );
    }
  }

  /** Redraws in the current theme's colours. */
  rebuild(): void {
    this.render(this.evaluation);
  }
}
