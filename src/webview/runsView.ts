// The Runs table: a dataset's runs, newest first — date, base model, the settings that changed
// since the run before, accuracy, time — from which two are picked for comparison.
import type { RunRow } from '../shared/protocol/explore';
import { formatDuration, formatPercent } from './displayFormat';
import { h, replaceChildren } from './domBuilder';

/** The `#runs` section. */
export class RunsView {
  readonly element: HTMLElement;
  private readonly table: HTMLElement;
  private readonly compareButton: HTMLButtonElement;
  private rows: RunRow[] = [];

  constructor(private readonly compare: (a: string, b: string) => void) {
    this.table = h('div', { class: 'runs-table-wrap' });
    this.compareButton = h(
      'button',
      { type: 'button', id: 'runs-compare', class: 'secondary-button', disabled: true },
      'Compare the two selected',
    ) as HTMLButtonElement;
    this.compareButton.addEventListener('click', () => {
      const [a, b] = this.selected();
      if (a && b) this.compare(a, b);
    });
    this.element = h(
      'section',
      { id: 'runs', 'aria-labelledby': 'runs-title', hidden: true },
      h('h2', { id: 'runs-title' }, 'Runs of this dataset'),
      h('p', { class: 'muted' }, 'Select two runs to compare them.'),
      this.table,
      this.compareButton,
    );
    this.table.addEventListener('change', () => this.updateButton());
  }

  /** The rows shown. */
  get current(): readonly RunRow[] {
    return this.rows;
  }

  render(rows: RunRow[]): void {
    this.rows = rows;
    const header = h(
      'tr',
      {},
      ...['', 'date', 'base model', 'changed since the run before', 'accuracy', 'time'].map((t) => h('th', { scope: 'col' }, t)),
    );
    const body = rows.map((r) =>
      h(
        'tr',
        { 'data-run': r.name, class: r.current ? 'current' : '' },
        h(
          'td',
          {},
          h('input', {
            type: 'checkbox',
            class: 'pick',
            value: r.name,
            'aria-label': `Select ${r.name}`,
            disabled: !(r.state === 'finished' || r.state === 'cancelled'),
          }),
        ),
        h('td', { title: r.name }, `${r.startedAt.replace('T', ' ').slice(0, 19)}${r.current ? ' (this run)' : ''}`),
        h('td', {}, r.model ?? '—'),
        h('td', { class: 'changes' }, r.changes.length ? r.changes.join('; ') : '—'),
        h('td', { class: 'num' }, r.accuracy === undefined ? r.state : formatPercent(r.accuracy)),
        h('td', { class: 'num' }, r.wallMs === undefined ? '—' : formatDuration(r.wallMs / 1000)),
      ),
    );
    replaceChildren(
      this.table,
      rows.length === 0 ? h('p', { class: 'muted' }, 'No runs.') : h('table', { id: 'runs-table', class: 'plain-table' }, header, ...body),
    );
    this.updateButton();
    this.element.hidden = false;
  }

  private selected(): string[] {
    return [...this.table.querySelectorAll<HTMLInputElement>('input.pick:checked')].map((i) => i.value);
  }

  private updateButton(): void {
    const picked = this.selected();
    this.compareButton.disabled = picked.length !== 2;
    // Two at most: the others wait until one is unchecked.
    for (const box of this.table.querySelectorAll<HTMLInputElement>('input.pick')) {
      const row = this.rows.find((r) => r.name === box.value);
      const usable = row !== undefined && (row.state === 'finished' || row.state === 'cancelled');
      box.disabled = !usable || (picked.length >= 2 && !box.checked);
    }
  }
}
