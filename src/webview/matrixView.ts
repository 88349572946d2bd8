// The confusion matrix as a heat map table: counts (or shares of the true class), class names on
// both axes, arrow-key navigation (roving tabindex) and a label per cell for screen readers.
import type { Evaluation } from '../shared/types';
import { formatPercent, plural } from './displayFormat';
import { h, replaceChildren } from './domBuilder';

export type CellHandler = (actual: number, predicted: number) => void;

/** The words a screen reader says for a cell. */
export function cellLabel(classes: readonly string[], actual: number, predicted: number, count: number, rowTotal: number): string {
  const share = rowTotal > 0 ? `, ${formatPercent(count / rowTotal, 0)} of ${classes[actual]}` : '';
  return `True ${classes[actual]}, predicted ${classes[predicted]}: ${plural(count, 'image')}${share}`;
}

/** The `#matrix` table with its normalise toggle. */
export class MatrixView {
  readonly element: HTMLElement;
  private readonly body: HTMLElement;
  private readonly toggle: HTMLElement & { checked?: boolean };
  private evaluation: Evaluation | undefined;
  private normalise = false;
  private selected: [number, number] | undefined;
  private focused: [number, number] = [0, 0];
  private table: HTMLTableElement | undefined;

  constructor(
    private readonly onSelect: CellHandler,
    private readonly onNormaliseChange: (normalise: boolean) => void,
  ) {
    this.toggle = h('vscode-checkbox', { id: 'normalise', label: 'Normalise by true class' }, 'Normalise by true class');
    this.toggle.addEventListener('change', () => {
      this.setNormalise(Boolean(this.toggle.checked));
      this.onNormaliseChange(this.normalise);
    });
    this.body = h('div', { class: 'matrix-body' });
    this.element = h(
      'section',
      { id: 'matrix-section', 'aria-labelledby': 'matrix-title' },
      h('div', { class: 'section-head' }, h('h2', { id: 'matrix-title' }, 'Confusion matrix'), this.toggle),
      this.body,
    );
  }

  /** Draws the matrix of `evaluation` (or a placeholder while there is none). */
  render(evaluation: Evaluation | undefined, normalise: boolean, selected: [number, number] | undefined): void {
    this.evaluation = evaluation;
    this.normalise = normalise;
    this.toggle.checked = normalise;
    if (normalise) this.toggle.setAttribute('checked', '');
    else this.toggle.removeAttribute('checked');
    this.selected = selected;
    if (selected) this.focused = selected;
    if (!evaluation || evaluation.classes.length === 0) {
      this.table = undefined;
      replaceChildren(this.body, h('p', { class: 'muted' }, 'The confusion matrix appears when training ends.'));
      return;
    }
    this.table = this.buildTable(evaluation);
    replaceChildren(
      this.body,
      h('p', { class: 'muted axis-note' }, 'Rows: true class. Columns: predicted class. Select a cell to see its images.'),
      h('div', { class: 'matrix-scroll' }, this.table),
    );
  }

  /** Switches between counts and shares of each true class. */
  setNormalise(normalise: boolean): void {
    this.normalise = normalise;
    this.toggle.checked = normalise;
    if (this.evaluation) this.render(this.evaluation, normalise, this.selected);
  }

  /** Marks a cell as the one whose images the gallery shows. */
  select(actual: number, predicted: number): void {
    this.selected = [actual, predicted];
    this.focused = [actual, predicted];
    if (!this.table) return;
    for (const cell of this.table.querySelectorAll<HTMLElement>('td[data-actual]')) {
      const isSelected = Number(cell.dataset.actual) === actual && Number(cell.dataset.predicted) === predicted;
      cell.setAttribute('aria-selected', String(isSelected));
      cell.tabIndex = isSelected ? 0 : -1;
    }
  }

  private buildTable(evaluation: Evaluation): HTMLTableElement {
    const { classes, matrix } = evaluation;
    const n = classes.length;
    const rowTotals = matrix.map((row) => row.reduce((a, b) => a + b, 0));
    let maxCount = 0;
    for (const row of matrix) for (const v of row) maxCount = Math.max(maxCount, v);
    const vertical = n > 4 || classes.some((c) => c.length > 12);
    const [focusA, focusP] = this.focused[0] < n && this.focused[1] < n ? this.focused : [0, 0];

    const head = h(
      'tr',
      {},
      h(
        'th',
        { class: 'corner', scope: 'col' },
        h('span', { class: 'visually-hidden' }, 'True class'),
        h('span', { 'aria-hidden': 'true' }, 'True ↓ / Predicted →'),
      ),
      ...classes.map((name, j) =>
        h('th', { scope: 'col', class: 'col-head', title: `Predicted ${name}`, 'data-predicted': j }, h('span', {}, name)),
      ),
    );
    const rows = matrix.map((row, i) => {
      const cells = classes.map((_, j) => {
        const count = row[j] ?? 0;
        const share = rowTotals[i]! > 0 ? count / rowTotals[i]! : 0;
        const heat = this.normalise ? share : maxCount > 0 ? count / maxCount : 0;
        const isSelected = this.selected !== undefined && this.selected[0] === i && this.selected[1] === j;
        const cell = h(
          'td',
          {
            role: 'gridcell',
            'data-actual': i,
            'data-predicted': j,
            'data-count': count,
            class: `cell ${i === j ? 'diagonal' : 'off-diagonal'}${count === 0 ? ' zero' : ''}`,
            tabindex: i === focusA && j === focusP ? 0 : -1,
            'aria-selected': String(isSelected),
            'aria-label': cellLabel(classes, i, j, count, rowTotals[i]!),
          },
          this.normalise ? formatPercent(share, 0) : String(count),
        );
        // A custom property set through the CSSOM: allowed by the CSP, unlike a style attribute.
        cell.style.setProperty('--heat', `${Math.round(Math.sqrt(heat) * 100)}%`);
        return cell;
      });
      return h('tr', {}, h('th', { scope: 'row', class: 'row-head', title: `True ${classes[i]}` }, classes[i]!), ...cells);
    });
    const table = h(
      'table',
      {
        id: 'matrix',
        role: 'grid',
        class: vertical ? 'vertical-heads' : '',
        'aria-label': 'Confusion matrix: rows are true classes, columns predicted classes',
        'data-normalised': String(this.normalise),
      },
      h('thead', {}, head),
      h('tbody', {}, ...rows),
    ) as HTMLTableElement;
    table.addEventListener('click', (event) => {
      const cell = (event.target as Element).closest('td[data-actual]');
      if (cell instanceof HTMLElement) this.activate(cell);
    });
    table.addEventListener('keydown', (event) => this.onKeyDown(event, n));
    return table;
  }

  private activate(cell: HTMLElement): void {
    const actual = Number(cell.dataset.actual);
    const predicted = Number(cell.dataset.predicted);
    this.select(actual, predicted);
    cell.focus();
    this.onSelect(actual, predicted);
  }

  private onKeyDown(event: KeyboardEvent, n: number): void {
    const cell = (event.target as Element).closest('td[data-actual]');
    if (!(cell instanceof HTMLElement) || !this.table) return;
    let a = Number(cell.dataset.actual);
    let p = Number(cell.dataset.predicted);
    switch (event.key) {
      case 'ArrowUp':
        a = Math.max(0, a - 1);
        break;
      case 'ArrowDown':
        a = Math.min(n - 1, a + 1);
        break;
      case 'ArrowLeft':
        p = Math.max(0, p - 1);
        break;
      case 'ArrowRight':
        p = Math.min(n - 1, p + 1);
        break;
      case 'Home':
        p = 0;
        if (event.ctrlKey) a = 0;
        break;
      case 'End':
        p = n - 1;
        if (event.ctrlKey) a = n - 1;
        break;
      case 'PageUp':
        a = 0;
        break;
      case 'PageDown':
        a = n - 1;
        break;
      case 'Enter':
      case ' ':
        event.preventDefault();
        this.activate(cell);
        return;
      default:
        return;
    }
    event.preventDefault();
    const next = this.table.querySelector<HTMLElement>(`td[data-actual="${a}"][data-predicted="${p}"]`);
    if (!next) return;
    cell.tabIndex = -1;
    next.tabIndex = 0;
    this.focused = [a, p];
    next.focus();
  }
}
