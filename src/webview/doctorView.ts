// The Dataset Doctor view: the latest check of a dataset, one section per finding kind (likely label
// errors, near-duplicates, outliers, weak images, shortcuts), worst first, with thumbnails and the
// fixes that fit each finding. It renders what the host sends and posts intents back; the host
// checks every path and key and applies the fix (or refuses it).
import type { DoctorFindingKind, LabelIssue, NearDuplicateGroup, Outlier, Shortcut, WeakImage } from '../shared/doctor';
import {
  doctorStageLabel,
  findingCount,
  isDoctorPanelNotification,
  type AppliedFix,
  type DoctorPanelCommand,
  type DoctorPanelState,
} from '../shared/protocol/doctorPanel';
import type { Progress } from '../shared/types';
import { formatPercent, plural } from './displayFormat';
import { h, replaceChildren } from './domBuilder';
import { imageUrl } from './galleryOrder';
import type { VsCodeApi } from './vscodeApi';

/** Findings rendered per section before "Show more". */
export const DOCTOR_PAGE_SIZE = 60;

interface SectionSpec {
  kind: DoctorFindingKind;
  title: string;
  help: string;
}

const SECTIONS: readonly SectionSpec[] = [
  {
    kind: 'labelIssues',
    title: 'Likely label errors',
    help: 'Images that models which never saw them put in another class. A high score means the given class got little probability; a hard but correct image can score high too.',
  },
  {
    kind: 'nearDuplicates',
    title: 'Near-duplicates',
    help: 'The same photo more than once (resized, recompressed or slightly cropped). Copies on both sides of the training/validation split make validation accuracy look better than it is.',
  },
  {
    kind: 'outliers',
    title: 'Outliers',
    help: 'Images far from every other photo of the dataset: a screenshot, a placeholder, another subject.',
  },
  {
    kind: 'weakImages',
    title: 'Weak images',
    help: 'Images whose pixels teach little: too dark or bright, flat, blurred, or a tiny original scaled up.',
  },
  {
    kind: 'shortcuts',
    title: 'Shortcuts',
    help: 'Trivial properties of the files that predict the class on their own: a model may learn them instead of what the photos show.',
  },
];

/** What the view keeps with `setState`. */
interface PersistedDoctor {
  version: 1;
  doctor: DoctorPanelState;
}

function fileName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** "too dark (mean brightness 14 of 255)": a weak image's problem in words. */
export function weakProblemWords(w: Pick<WeakImage, 'problem' | 'value'>): string {
  const v = Math.round(w.value * 10) / 10;
  switch (w.problem) {
    case 'dark':
      return `too dark (mean brightness ${v} of 255)`;
    case 'bright':
      return `too bright (mean brightness ${v} of 255)`;
    case 'low-contrast':
      return `low contrast (spread ${v})`;
    case 'blurred':
      return `blurred (sharpness ${v})`;
    case 'upscaled':
      return `a small original scaled up (shorter side ${Math.round(w.value)} px)`;
  }
}

/** The Doctor view bound to a root element and the VS Code API. */
export class DoctorApp {
  private state: DoctorPanelState | undefined;
  private readonly header: HTMLElement;
  private readonly sections = new Map<
    DoctorFindingKind,
    { element: HTMLElement; list: HTMLElement; more: HTMLButtonElement; shown: number }
  >();
  private readonly disposers: (() => void)[] = [];

  constructor(
    private readonly root: HTMLElement,
    private readonly api: VsCodeApi,
  ) {
    this.header = h('header', { id: 'doctor-header' });
    const body = SECTIONS.map((spec) => {
      const list = h('div', { class: 'findings', role: 'list', 'aria-labelledby': `doctor-${spec.kind}-title` });
      const more = h('button', { type: 'button', class: 'secondary-button more', hidden: true }) as HTMLButtonElement;
      more.addEventListener('click', () => this.renderSection(spec.kind, true));
      const element = h(
        'section',
        { id: `doctor-${spec.kind}`, class: 'doctor-section', 'data-kind': spec.kind, hidden: true },
        h('h2', { id: `doctor-${spec.kind}-title` }, spec.title),
        h('p', { class: 'muted help' }, spec.help),
        list,
        more,
      );
      this.sections.set(spec.kind, { element, list, more, shown: 0 });
      return element;
    });
    root.classList.add('doctor');
    root.replaceChildren(this.header, ...body);
    root.addEventListener('click', (event) => this.onClick(event));
  }

  /** Restores the persisted state (if any), listens for the host and says `ready`. */
  start(target: Pick<Window, 'addEventListener' | 'removeEventListener'> = window): void {
    const saved = this.api.getState() as Partial<PersistedDoctor> | undefined;
    if (saved?.version === 1 && isDoctorPanelNotification({ type: 'state', state: saved.doctor })) this.render(saved.doctor!);
    const onMessage = (event: MessageEvent): void => this.receive(event.data);
    target.addEventListener('message', onMessage as EventListener);
    this.disposers.push(() => target.removeEventListener('message', onMessage as EventListener));
    this.post({ type: 'ready' });
  }

  /** Handles one message from the host; anything that is not a doctor notification is ignored. */
  receive(message: unknown): void {
    if (!isDoctorPanelNotification(message)) return;
    if (message.type === 'state') {
      this.render(message.state);
      this.api.setState({ version: 1, doctor: message.state } satisfies PersistedDoctor);
    } else if (this.state) {
      this.state = { ...this.state, progress: message.progress };
      this.renderHeader();
    }
  }

  /** The state shown now. */
  get current(): DoctorPanelState | undefined {
    return this.state;
  }

  dispose(): void {
    for (const dispose of this.disposers.splice(0)) dispose();
  }

  private post(command: DoctorPanelCommand): void {
    this.api.postMessage(command);
  }

  private render(state: DoctorPanelState): void {
    this.state = state;
    this.root.dataset.checkState = state.state;
    this.renderHeader();
    for (const spec of SECTIONS) this.renderSection(spec.kind, false);
  }

  private renderHeader(): void {
    const s = this.state;
    if (!s) return;
    const children: (Node | string | false | undefined)[] = [h('h1', {}, `Dataset doctor: ${s.datasetName}`)];
    children.push(h('p', { id: 'doctor-state', 'data-state': s.state, role: 'status' }, stateLine(s)));
    if (s.state === 'running') {
      const percent = progressPercent(s.progress);
      children.push(
        h('progress', { id: 'doctor-progress', max: 100, value: percent ?? false, 'aria-label': 'Progress of the check' }),
        h('vscode-button', { id: 'doctor-cancel', secondary: true }, 'Cancel'),
      );
    }
    if (s.report) children.push(h('p', { id: 'doctor-summary' }, summaryLine(s)));
    children.push(this.retrainBlock(s));
    replaceChildren(this.header, ...children);
  }

  private retrainBlock(s: DoctorPanelState): HTMLElement | undefined {
    const fixes = s.fixes.length;
    const outcome = s.retrain;
    if (fixes === 0 && !outcome) return undefined;
    const parts: (Node | string)[] = [];
    if (fixes > 0) parts.push(h('span', {}, `${plural(fixes, 'fix', 'fixes')} applied since this check. `));
    if (outcome?.state === 'running') parts.push(h('span', { id: 'retrain-outcome', 'data-state': 'running' }, 'Retraining…'));
    else {
      if (fixes > 0) parts.push(h('vscode-button', { id: 'doctor-retrain' }, 'Retrain'));
      if (outcome) parts.push(h('span', { id: 'retrain-outcome', 'data-state': outcome.state }, retrainLine(outcome)));
    }
    return h('div', { id: 'doctor-retrain-block', class: 'hint', role: 'note' }, ...parts);
  }

  private items(kind: DoctorFindingKind): (LabelIssue | NearDuplicateGroup | Outlier | WeakImage | Shortcut)[] {
    const r = this.state?.report;
    if (!r) return [];
    switch (kind) {
      case 'labelIssues':
        return [...r.labelIssues].sort((a, b) => b.score - a.score);
      case 'nearDuplicates':
        return [...r.nearDuplicates].sort(
          (a, b) =>
            Number(b.crossesSplit) - Number(a.crossesSplit) ||
            Number(new Set(b.classes).size > 1) - Number(new Set(a.classes).size > 1) ||
            b.similarity - a.similarity,
        );
      case 'outliers':
        return [...r.outliers].sort((a, b) => b.score - a.score);
      case 'weakImages':
        return r.weakImages;
      case 'shortcuts':
        return [...r.shortcuts].sort((a, b) => b.accuracy - b.baseline - (a.accuracy - a.baseline));
    }
  }

  private renderSection(kind: DoctorFindingKind, more: boolean): void {
    const section = this.sections.get(kind)!;
    const items = this.items(kind);
    const title = section.element.querySelector('h2')!;
    const spec = SECTIONS.find((x) => x.kind === kind)!;
    title.textContent = `${spec.title} (${items.length})`;
    section.element.hidden = !this.state?.report;
    const end = Math.min(items.length, more ? section.shown + DOCTOR_PAGE_SIZE : Math.max(section.shown, DOCTOR_PAGE_SIZE));
    if (!more) replaceChildren(section.list);
    const start = more ? section.shown : 0;
    if (items.length === 0) section.list.appendChild(h('p', { class: 'muted none' }, 'None found.'));
    for (let i = start; i < end; i++) section.list.appendChild(this.card(kind, items[i]!));
    section.shown = end;
    const remaining = items.length - end;
    section.more.hidden = remaining <= 0;
    section.more.textContent = remaining > 0 ? `Show ${Math.min(remaining, DOCTOR_PAGE_SIZE)} more (${remaining} not shown yet)` : '';
  }

  private card(kind: DoctorFindingKind, item: LabelIssue | NearDuplicateGroup | Outlier | WeakImage | Shortcut): HTMLElement {
    switch (kind) {
      case 'labelIssues': {
        const x = item as LabelIssue;
        return this.imageCard(
          kind,
          `label:${x.path}`,
          x.path,
          [
            h('span', { class: 'labels' }, `given ${x.label} → suggested ${x.suggested}`),
            h('span', { class: 'score' }, `score ${x.score.toFixed(2)}`),
          ],
          h(
            'button',
            { type: 'button', class: 'fix-class', 'data-to': x.suggested, title: `Move to the ${x.suggested} class folder` },
            `Move to ${x.suggested}`,
          ),
        );
      }
      case 'outliers': {
        const x = item as Outlier;
        return this.imageCard(kind, `outlier:${x.path}`, x.path, [
          h('span', { class: 'labels' }, `in ${x.label}`),
          h('span', { class: 'score' }, `distance ${x.score.toFixed(2)}`),
        ]);
      }
      case 'weakImages': {
        const x = item as WeakImage;
        return this.imageCard(kind, `weak:${x.problem}:${x.path}`, x.path, [
          h('span', { class: 'problem', 'data-problem': x.problem }, weakProblemWords(x)),
        ]);
      }
      case 'nearDuplicates':
        return this.groupCard(item as NearDuplicateGroup);
      case 'shortcuts': {
        const x = item as Shortcut;
        return h(
          'div',
          { class: 'finding shortcut', role: 'listitem', 'data-key': `shortcut:${x.property}`, 'data-kind': kind },
          h('p', { class: 'sentence' }, x.detail),
          h(
            'p',
            { class: 'muted' },
            `${capitalise(x.property)} alone predicts the class ${formatPercent(x.accuracy, 0)} of the time; always guessing the largest class, ${formatPercent(x.baseline, 0)}.`,
          ),
          h('div', { class: 'actions' }, h('button', { type: 'button', class: 'fix-keep', title: 'Keep as is: not shown again' }, 'Keep')),
        );
      }
    }
  }

  private thumb(path: string, shownPath = path): HTMLElement {
    return h(
      'button',
      { type: 'button', class: 'open', title: `Open ${path} beside the panel`, 'data-open': shownPath },
      h('img', {
        src: imageUrl(this.state!.imageBaseUri, shownPath),
        alt: path,
        loading: 'lazy',
        decoding: 'async',
        width: 112,
        height: 112,
      }),
    );
  }

  private moveOutButtons(disabled: boolean): HTMLElement[] {
    return [
      h(
        'button',
        { type: 'button', class: 'fix-trash', title: 'Move out of the dataset, to the trash (Undo restores it)', disabled },
        'Trash',
      ),
      h('button', { type: 'button', class: 'fix-folder', title: 'Move out of the dataset, to a folder you pick', disabled }, 'Move out…'),
    ];
  }

  private imageCard(kind: DoctorFindingKind, key: string, path: string, caption: Node[], first?: HTMLElement): HTMLElement {
    const fix = this.fixOf(path);
    if (first && fix) (first as HTMLButtonElement).disabled = true;
    const card = h(
      'div',
      { class: 'finding', role: 'listitem', 'data-key': key, 'data-kind': kind, 'data-path': path, 'data-fixed': fix ? fix.action : false },
      this.thumb(path, fix?.newPath ?? path),
      h('div', { class: 'caption' }, h('span', { class: 'name', title: path }, fileName(path)), ...caption, fix && fixedNote(fix)),
      h(
        'div',
        { class: 'actions' },
        first,
        ...this.moveOutButtons(Boolean(fix)),
        h('button', { type: 'button', class: 'fix-keep', title: 'Keep as is: not shown again', disabled: Boolean(fix) }, 'Keep'),
      ),
    );
    return card;
  }

  private groupCard(g: NearDuplicateGroup): HTMLElement {
    const conflict = new Set(g.classes).size > 1;
    const key = `duplicates:${[...g.paths].sort().join('|')}`;
    const members = g.paths.map((path, i) => {
      const fix = this.fixOf(path);
      return h(
        'div',
        { class: 'member', 'data-path': path, 'data-fixed': fix ? fix.action : false },
        this.thumb(path, fix?.newPath ?? path),
        h(
          'div',
          { class: 'caption' },
          h('span', { class: 'name', title: path }, fileName(path)),
          h('span', { class: 'labels' }, g.classes[i]),
          fix && fixedNote(fix),
        ),
        h('div', { class: 'actions' }, ...this.moveOutButtons(Boolean(fix))),
      );
    });
    return h(
      'div',
      {
        class: 'finding group',
        role: 'listitem',
        'data-key': key,
        'data-kind': 'nearDuplicates',
        'data-crosses-split': g.crossesSplit ? 'true' : false,
        'data-conflict': conflict ? 'true' : false,
      },
      h(
        'div',
        { class: 'group-head' },
        h('span', {}, `${plural(g.paths.length, 'copy', 'copies')} · similarity ${g.similarity.toFixed(3)}`),
        g.crossesSplit && h('span', { class: 'badge split' }, 'crosses the training/validation split'),
        conflict && h('span', { class: 'badge conflict' }, `filed in different classes: ${[...new Set(g.classes)].join(', ')}`),
        h('button', { type: 'button', class: 'fix-keep', title: 'Keep all copies: not shown again' }, 'Keep'),
      ),
      h('div', { class: 'members' }, ...members),
    );
  }

  private fixOf(path: string): AppliedFix | undefined {
    return this.state?.fixes.find((f) => f.path === path);
  }

  private onClick(event: Event): void {
    const target = event.target as Element;
    if (target.closest('#doctor-cancel')) return this.post({ type: 'cancel' });
    if (target.closest('#doctor-retrain')) return this.post({ type: 'retrain' });
    const card = target.closest<HTMLElement>('.finding');
    const key = card?.dataset.key;
    if (!card || !key) return;
    const button = target.closest('button');
    if (button?.disabled) return;
    const path = target.closest<HTMLElement>('[data-path]')?.dataset.path;
    if (target.closest('.fix-keep')) return this.post({ type: 'keep', key });
    if (!path) return;
    if (target.closest('.fix-undo')) return this.post({ type: 'undoFix', path });
    const open = target.closest<HTMLElement>('.open');
    if (open?.dataset.open) return this.post({ type: 'openImage', path: open.dataset.open });
    if (target.closest('.fix-class')) {
      const toClass = target.closest<HTMLElement>('.fix-class')?.dataset.to;
      if (toClass) this.post({ type: 'moveToClass', key, path, toClass });
    } else if (target.closest('.fix-trash')) this.post({ type: 'moveOut', key, path, to: 'trash' });
    else if (target.closest('.fix-folder')) this.post({ type: 'moveOut', key, path, to: 'folder' });
  }
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function fixedNote(fix: AppliedFix): HTMLElement {
  const words =
    fix.action === 'class'
      ? `Moved to ${fix.toClass ?? 'another class'}`
      : fix.action === 'trash'
        ? 'Moved to the trash'
        : 'Moved out of the dataset';
  return h(
    'span',
    { class: 'fixed-note' },
    `${words}. `,
    h('button', { type: 'button', class: 'fix-undo link-button', title: 'Put the file back where it was (as Edit > Undo does)' }, 'Undo'),
  );
}

function progressPercent(progress: Progress | undefined): number | undefined {
  if (!progress || progress.total <= 0) return undefined;
  return Math.round((100 * Math.min(progress.done, progress.total)) / progress.total);
}

function stateLine(s: DoctorPanelState): string {
  switch (s.state) {
    case 'running':
      return s.progress
        ? `Checking: ${doctorStageLabel(s.progress.stage)}${s.progress.total > 0 ? `, ${s.progress.done} of ${s.progress.total}` : ''}…`
        : 'Checking…';
    case 'finished':
      return `Checked${s.checkName ? ` (${s.checkName})` : ''}.`;
    case 'cancelled':
      return 'The check was cancelled.';
    case 'failed':
      return `The check failed: ${s.message ?? 'unknown error'}`;
  }
}

function summaryLine(s: DoctorPanelState): string {
  const r = s.report!;
  const n = findingCount(r);
  const kept = s.keptCount > 0 ? ` (${plural(s.keptCount, 'kept finding')} hidden)` : '';
  return `${plural(r.images, 'image')} in ${plural(r.classes.length, 'class', 'classes')}: ${n === 0 ? 'nothing to fix' : plural(n, 'finding')}${kept}.`;
}

/** "Validation accuracy 85.0% → 91.7% (+6.7 points) in leaves-…". */
export function retrainLine(o: NonNullable<DoctorPanelState['retrain']>): string {
  if (o.state === 'failed') return 'The retrain failed; see the training panel.';
  if (o.state === 'cancelled') return 'The retrain was cancelled.';
  if (o.state === 'running') return 'Retraining…';
  if (o.after === undefined) return 'Retrained.';
  const after = formatPercent(o.after);
  if (o.before === undefined) return `Validation accuracy after the fixes: ${after} (no earlier run to compare with).`;
  const delta = (o.after - o.before) * 100;
  const sign = delta > 0 ? '+' : delta < 0 ? '−' : '±';
  return `Validation accuracy ${formatPercent(o.before)} → ${after} (${sign}${Math.abs(delta).toFixed(1)} points)${o.runName ? ` in ${o.runName}` : ''}. The fixes change the validation set too, so compare with care.`;
}

/** Creates the Doctor view in `root`, restores it and sends `ready`. */
export function startDoctorPanel(root: HTMLElement, api: VsCodeApi): DoctorApp {
  const app = new DoctorApp(root, api);
  app.start();
  return app;
}
