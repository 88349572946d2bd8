// Live training curves (loss and accuracy, train and validation) drawn with uPlot, with the start
// of fine-tuning, learning-rate changes and the kept epoch marked on both charts.
import uPlot from 'uplot';
import type { EpochMetrics } from '../shared/types';
import { curveMarks, type CurveMark } from './curveMarks';
import { formatMetric, formatPercent } from './displayFormat';
import { h, replaceChildren } from './domBuilder';
import { chartColors, type ChartColors } from './themeColors';

interface ChartSpec {
  key: 'loss' | 'accuracy';
  title: string;
  train: (e: EpochMetrics) => number;
  validation: (e: EpochMetrics) => number;
  percent: boolean;
}

const SPECS: readonly ChartSpec[] = [
  { key: 'loss', title: 'Loss', train: (e) => e.loss, validation: (e) => e.valLoss, percent: false },
  { key: 'accuracy', title: 'Accuracy', train: (e) => e.acc, validation: (e) => e.valAcc, percent: true },
];

const CHART_HEIGHT = 200;
/** Width before the figure has been laid out (hidden panel, or a DOM without layout such as jsdom). */
const DEFAULT_WIDTH = 420;
const MIN_WIDTH = 160;

function finiteOrNull(value: number): number | null {
  return Number.isFinite(value) ? value : null;
}

/** One uPlot chart plus a DOM layer of vertical marks over its plotting area. */
class LineChart {
  readonly element: HTMLElement;
  private plot: uPlot | undefined;
  private marks: CurveMark[] = [];
  private readonly markLayer: HTMLElement;
  private data: uPlot.AlignedData = [[], [], []];
  private width = 0;

  constructor(private readonly spec: ChartSpec) {
    this.element = h('figure', { class: 'chart', 'data-chart': spec.key }, h('figcaption', {}, spec.title));
    this.markLayer = h('div', { class: 'marks' });
  }

  /** The x, train and validation arrays the chart plots. */
  get plotted(): uPlot.AlignedData {
    return this.data;
  }

  setData(epochs: readonly EpochMetrics[], marks: CurveMark[]): void {
    this.data = [
      epochs.map((e) => e.epoch),
      epochs.map((e) => finiteOrNull(this.spec.train(e))),
      epochs.map((e) => finiteOrNull(this.spec.validation(e))),
    ];
    this.marks = marks;
    if (this.plot) this.plot.setData(this.data);
  }

  /** The width uPlot should have: its own figure's, as laid out by the grid in panel.css. */
  fittingWidth(): number {
    const width = Math.floor(this.element.clientWidth);
    return width > 0 ? Math.max(MIN_WIDTH, width) : DEFAULT_WIDTH;
  }

  /** (Re)creates the uPlot instance, e.g. after a theme change. */
  build(colors: ChartColors): void {
    this.plot?.destroy();
    const width = this.fittingWidth();
    this.width = width;
    const spec = this.spec;
    const valueFormat = (v: number | null): string => (v === null ? '–' : spec.percent ? formatPercent(v) : formatMetric(v));
    const options: uPlot.Options = {
      width,
      height: CHART_HEIGHT,
      scales: {
        x: { time: false, range: (_u, min, max) => [Math.min(min ?? 1, 1), Math.max(max ?? 2, 2)] },
        y: spec.percent ? { range: [0, 1] } : { range: (_u, _min, max) => [0, max > 0 ? max * 1.08 : 1] },
      },
      axes: [
        {
          stroke: colors.text,
          font: colors.font,
          grid: { stroke: colors.grid, width: 1 },
          ticks: { stroke: colors.grid, width: 1 },
          incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500],
          values: (_u, splits) => splits.map((v) => String(v)),
          label: 'Epoch',
          labelFont: colors.font,
          labelSize: 20,
        },
        {
          stroke: colors.text,
          font: colors.font,
          grid: { stroke: colors.grid, width: 1 },
          ticks: { stroke: colors.grid, width: 1 },
          size: 52,
          values: (_u, splits) => splits.map((v) => (spec.percent ? formatPercent(v, 0) : String(Number(v.toPrecision(3))))),
        },
      ],
      series: [
        { label: 'Epoch', value: (_u, v) => (v === null ? '–' : String(v)) },
        {
          label: 'Train',
          stroke: colors.train,
          width: 2,
          spanGaps: true,
          points: { show: true, size: 5, fill: colors.train },
          value: (_u, v) => valueFormat(v),
        },
        {
          label: 'Validation',
          stroke: colors.validation,
          width: 2,
          dash: [6, 3],
          spanGaps: true,
          points: { show: true, size: 5, fill: colors.validation },
          value: (_u, v) => valueFormat(v),
        },
      ],
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [(u) => this.placeMarks(u)] },
    };
    this.plot = new uPlot(options, this.data, this.element);
    this.plot.over.appendChild(this.markLayer);
  }

  /** Fits the chart to its figure again (after the panel or the grid changed its width). */
  fit(): void {
    const width = this.fittingWidth();
    if (!this.plot || width === this.width) return;
    this.width = width;
    this.plot.setSize({ width, height: CHART_HEIGHT });
  }

  destroy(): void {
    this.plot?.destroy();
    this.plot = undefined;
  }

  private placeMarks(u: uPlot): void {
    replaceChildren(this.markLayer);
    for (const mark of this.marks) {
      const left = u.valToPos(mark.epoch, 'x');
      if (!Number.isFinite(left)) continue;
      const line = h('div', { class: `mark mark-${mark.kind}`, 'data-epoch': mark.epoch, title: mark.label });
      line.style.left = `${left}px`;
      this.markLayer.appendChild(line);
    }
  }
}

/** The `#curves` section: two charts and the list of marks in words. */
export class CurvesView {
  readonly element: HTMLElement;
  private readonly charts: LineChart[];
  private readonly markList: HTMLElement;
  private readonly latest: HTMLElement;
  private epochs: EpochMetrics[] = [];
  private bestEpoch: number | undefined;
  private resizeObserver: ResizeObserver | undefined;
  private built = false;

  constructor() {
    this.charts = SPECS.map((spec) => new LineChart(spec));
    this.markList = h('ul', { id: 'curve-marks', class: 'curve-marks' });
    this.latest = h('p', { id: 'curves-latest', class: 'muted' });
    this.element = h(
      'section',
      { id: 'curves', 'data-epochs': 0, 'aria-labelledby': 'curves-title' },
      h('h2', { id: 'curves-title' }, 'Training curves'),
      h('div', { class: 'charts' }, ...this.charts.map((c) => c.element)),
      this.latest,
      this.markList,
    );
  }

  /** Replaces every epoch and the kept epoch. */
  render(epochs: readonly EpochMetrics[], bestEpoch: number | undefined): void {
    this.epochs = [...epochs].sort((a, b) => a.epoch - b.epoch);
    this.bestEpoch = bestEpoch;
    this.update();
  }

  /** Adds (or replaces) one epoch as it ends. */
  addEpoch(metrics: EpochMetrics): void {
    const index = this.epochs.findIndex((e) => e.epoch === metrics.epoch);
    if (index >= 0) this.epochs[index] = metrics;
    else this.epochs.push(metrics);
    this.epochs.sort((a, b) => a.epoch - b.epoch);
    this.update();
  }

  /** What each chart plots: [epochs, train, validation]. */
  plotted(): Record<'loss' | 'accuracy', uPlot.AlignedData> {
    return { loss: this.charts[0]!.plotted, accuracy: this.charts[1]!.plotted };
  }

  /** Rebuilds the charts with the current theme's colours. */
  rebuild(): void {
    if (!this.built) return;
    const colors = chartColors();
    for (const chart of this.charts) chart.build(colors);
  }

  dispose(): void {
    this.resizeObserver?.disconnect();
    for (const chart of this.charts) chart.destroy();
  }

  private update(): void {
    const marks = curveMarks(this.epochs, this.bestEpoch);
    for (const chart of this.charts) chart.setData(this.epochs, marks);
    if (!this.built && this.element.isConnected) {
      this.built = true;
      this.rebuild();
      if (typeof ResizeObserver !== 'undefined') {
        // Each figure is observed: its width comes from the grid (one or two columns), not from the panel.
        this.resizeObserver = new ResizeObserver((entries) => {
          for (const entry of entries) this.charts.find((c) => c.element === entry.target)?.fit();
        });
        for (const chart of this.charts) this.resizeObserver.observe(chart.element);
      }
    }
    this.element.setAttribute('data-epochs', String(this.epochs.length));
    const last = this.epochs[this.epochs.length - 1];
    this.latest.textContent = last
      ? `Epoch ${last.epoch}: loss ${formatMetric(last.loss)} (validation ${formatMetric(last.valLoss)}), accuracy ${formatPercent(last.acc)} (validation ${formatPercent(last.valAcc)})`
      : 'The curves appear when the first epoch ends.';
    replaceChildren(
      this.markList,
      ...marks.map((m) => h('li', { class: 'mark-item', 'data-kind': m.kind, 'data-epoch': m.epoch }, m.label)),
    );
  }
}
