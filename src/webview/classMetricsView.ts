// Per-class precision, recall, F1 and support, and the most-confused pairs (each one a way into the gallery).
import type { Evaluation } from '../shared/types';
import { formatCount, formatPercent } from './displayFormat';
import { h, replaceChildren } from './domBuilder';
import type { CellHandler } from './matrixView';

function row(cells: (string | number)[], attributes: Record<string, string> = {}): HTMLElement {
  return h('vscode-table-row', attributes, ...cells.map((c) => h('vscode-table-cell', {}, String(c))));
}

/** The `#class-metrics` table and the `#confused-pairs` list. */
export class ClassMetricsView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;

  constructor(private readonly onSelect: CellHandler) {
    this.body = h('div', { class: 'metrics-body' });
    this.element = h(
      'section',
      { id: 'metrics-section', 'aria-labelledby': 'metrics-title' },
      h('h2', { id: 'metrics-title' }, 'Per class'),
      this.body,
    );
  }

  /** Shows the metrics of `evaluation` (nothing while there is none). */
  render(evaluation: Evaluation | undefined): void {
    if (!evaluation || evaluation.perClass.length === 0) {
      replaceChildren(this.body);
      this.element.hidden = true;
      return;
    }
    this.element.hidden = false;
    const total = evaluation.perClass.reduce((a, c) => a + c.support, 0);
    const table = h(
      'vscode-table',
      {
        id: 'class-metrics',
        zebra: true,
        'bordered-rows': true,
        columns: JSON.stringify(['34%', '16%', '16%', '16%', '18%']),
        'aria-label': 'Precision, recall, F1 and support per class',
      },
      h(
        'vscode-table-header',
        { slot: 'header' },
        ...['Class', 'Precision', 'Recall', 'F1', 'Support'].map((label) => h('vscode-table-header-cell', {}, label)),
      ),
      h(
        'vscode-table-body',
        { slot: 'body' },
        ...evaluation.perClass.map((c) =>
          row([c.name, formatPercent(c.precision), formatPercent(c.recall), formatPercent(c.f1), formatCount(c.support)], {
            'data-class': c.name,
          }),
        ),
        row(
          [
            'Macro average',
            formatPercent(evaluation.macro.precision),
            formatPercent(evaluation.macro.recall),
            formatPercent(evaluation.macro.f1),
            formatCount(total),
          ],
          { class: 'summary-row' },
        ),
        row(
          [
            'Weighted average',
            formatPercent(evaluation.weighted.precision),
            formatPercent(evaluation.weighted.recall),
            formatPercent(evaluation.weighted.f1),
            formatCount(total),
          ],
          { class: 'summary-row' },
        ),
      ),
    );
    const pairs = evaluation.mostConfused.filter((p) => p.count > 0 && p.actual !== p.predicted).slice(0, 8);
    const pairList =
      pairs.length === 0
        ? h('p', { id: 'confused-pairs', class: 'muted' }, 'No validation image was misclassified.')
        : h(
            'ol',
            { id: 'confused-pairs', class: 'confused-pairs' },
            ...pairs.map((p) => {
              const button = h(
                'button',
                { type: 'button', class: 'link-button', 'data-actual': p.actual, 'data-predicted': p.predicted },
                `${evaluation.classes[p.actual]} → ${evaluation.classes[p.predicted]}`,
              );
              button.addEventListener('click', () => this.onSelect(p.actual, p.predicted));
              return h('li', {}, button, h('span', { class: 'muted' }, ` ${p.count} ${p.count === 1 ? 'image' : 'images'}`));
            }),
          );
    replaceChildren(
      this.body,
      h(
        'p',
        { class: 'accuracy' },
        `Validation accuracy ${formatPercent(evaluation.accuracy)} on ${formatCount(total)} images (kept epoch ${evaluation.bestEpoch}).`,
      ),
      table,
      h('h3', {}, 'Most confused (true → predicted)'),
      pairList,
    );
  }
}
