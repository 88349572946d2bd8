import { dom, deliver, fakeVsCodeApi, freshRoot } from '../../support/webviewTestKit';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DoctorReport } from '../../../src/shared/doctor';
import type { DoctorPanelState } from '../../../src/shared/protocol/doctorPanel';
import { DoctorApp, DOCTOR_PAGE_SIZE, retrainLine, weakProblemWords } from '../../../src/webview/doctorView';

const document = dom.window.document;

// Names of the shipped leaf sample; the scores are what a report of this shape carries, not results.
const report: Omit<DoctorReport, 'dataset'> = {
  images: 120,
  classes: ['black_rot', 'cedar_rust', 'healthy', 'scab'],
  labelIssues: [
    { path: 'scab/scab_04.jpg', label: 'scab', suggested: 'black_rot', score: 0.61 },
    { path: 'healthy/cedar_rust_05.jpg', label: 'healthy', suggested: 'cedar_rust', score: 0.99 },
  ],
  nearDuplicates: [
    { paths: ['scab/scab_01.jpg', 'scab/scab_02.jpg'], classes: ['scab', 'scab'], similarity: 0.991, crossesSplit: false },
    {
      paths: ['healthy/healthy_01.jpg', 'black_rot/black_rot_01.jpg'],
      classes: ['healthy', 'black_rot'],
      similarity: 0.97,
      crossesSplit: true,
    },
  ],
  outliers: [
    { path: 'healthy/healthy_07.jpg', label: 'healthy', score: 0.4 },
    { path: 'scab/scab_09.jpg', label: 'scab', score: 0.9 },
  ],
  weakImages: [{ path: 'cedar_rust/cedar_rust_03.jpg', problem: 'blurred', value: 23.01 }],
  shortcuts: [
    {
      property: 'file size',
      accuracy: 0.483,
      baseline: 0.25,
      detail:
        'The file size of an image alone predicts its class 48% of the time (always guessing the largest class: 25%): a model may learn it instead of the subject.',
    },
  ],
};

function stateOf(overrides: Partial<DoctorPanelState> = {}): DoctorPanelState {
  return {
    datasetName: 'leaves',
    imageBaseUri: 'https://file+.vscode-resource.test/ws/leaves',
    state: 'finished',
    checkName: 'doctor-leaves-20261202-090130',
    report,
    keptCount: 0,
    fixes: [],
    ...overrides,
  };
}

function open(state = stateOf()) {
  const api = fakeVsCodeApi();
  const app = new DoctorApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  deliver({ type: 'state', state });
  return { app, api };
}

const paths = (selector: string): (string | undefined)[] =>
  [...document.querySelectorAll<HTMLElement>(selector)].map((e) => e.dataset.path ?? e.dataset.key);

test('each finding kind is listed worst first: label issues and outliers by score, split-crossing duplicate groups first', () => {
  const { app } = open();
  assert.deepEqual(paths('#doctor-labelIssues .finding'), ['healthy/cedar_rust_05.jpg', 'scab/scab_04.jpg']);
  assert.deepEqual(paths('#doctor-outliers .finding'), ['scab/scab_09.jpg', 'healthy/healthy_07.jpg']);
  assert.deepEqual(
    [...document.querySelectorAll<HTMLElement>('#doctor-nearDuplicates .finding')].map((g) => g.dataset.crossesSplit ?? 'false'),
    ['true', 'false'],
  );
  assert.equal(document.querySelector('#doctor-labelIssues h2')?.textContent, 'Likely label errors (2)');
  assert.equal(document.querySelector('#doctor-summary')?.textContent, '120 images in 4 classes: 8 findings.');
  app.dispose();
});

test('a label issue shows its thumbnail, given → suggested class and score, and offers Move to the suggested class', () => {
  const { app, api } = open();
  const card = document.querySelector<HTMLElement>('#doctor-labelIssues .finding[data-path="healthy/cedar_rust_05.jpg"]')!;
  assert.equal(card.querySelector('img')?.getAttribute('src'), 'https://file+.vscode-resource.test/ws/leaves/healthy/cedar_rust_05.jpg');
  assert.equal(card.querySelector('.labels')?.textContent, 'given healthy → suggested cedar_rust');
  assert.equal(card.querySelector('.score')?.textContent, 'score 0.99');
  card.querySelector<HTMLButtonElement>('.fix-class')!.click();
  card.querySelector<HTMLButtonElement>('.fix-trash')!.click();
  card.querySelector<HTMLButtonElement>('.fix-folder')!.click();
  card.querySelector<HTMLButtonElement>('.open')!.click();
  card.querySelector<HTMLButtonElement>('.fix-keep')!.click();
  assert.deepEqual(api.posted.slice(1), [
    { type: 'moveToClass', key: 'label:healthy/cedar_rust_05.jpg', path: 'healthy/cedar_rust_05.jpg', toClass: 'cedar_rust' },
    { type: 'moveOut', key: 'label:healthy/cedar_rust_05.jpg', path: 'healthy/cedar_rust_05.jpg', to: 'trash' },
    { type: 'moveOut', key: 'label:healthy/cedar_rust_05.jpg', path: 'healthy/cedar_rust_05.jpg', to: 'folder' },
    { type: 'openImage', path: 'healthy/cedar_rust_05.jpg' },
    { type: 'keep', key: 'label:healthy/cedar_rust_05.jpg' },
  ]);
  app.dispose();
});

test('a near-duplicate group shows its copies side by side with their classes, marks a split-crossing, cross-class group, and each copy can be moved out', () => {
  const { app, api } = open();
  const group = document.querySelector<HTMLElement>('#doctor-nearDuplicates .finding[data-crosses-split="true"]')!;
  assert.equal(group.dataset.conflict, 'true');
  assert.deepEqual(
    [...group.querySelectorAll<HTMLElement>('.member')].map((m) => [m.dataset.path, m.querySelector('.labels')?.textContent]),
    [
      ['healthy/healthy_01.jpg', 'healthy'],
      ['black_rot/black_rot_01.jpg', 'black_rot'],
    ],
  );
  assert.match(group.querySelector('.badge.split')?.textContent ?? '', /crosses the training\/validation split/);
  assert.match(group.querySelector('.badge.conflict')?.textContent ?? '', /different classes: healthy, black_rot/);
  group.querySelectorAll<HTMLElement>('.member')[1]!.querySelector<HTMLButtonElement>('.fix-trash')!.click();
  group.querySelector<HTMLButtonElement>('.group-head .fix-keep')!.click();
  const key = 'duplicates:black_rot/black_rot_01.jpg|healthy/healthy_01.jpg';
  assert.deepEqual(api.posted.slice(1), [
    { type: 'moveOut', key, path: 'black_rot/black_rot_01.jpg', to: 'trash' },
    { type: 'keep', key },
  ]);
  app.dispose();
});

test('weak images say their problem in words and shortcuts read as sentences', () => {
  const { app } = open();
  assert.equal(document.querySelector('#doctor-weakImages .problem')?.textContent, 'blurred (sharpness 23)');
  assert.equal(weakProblemWords({ problem: 'dark', value: 14.2 }), 'too dark (mean brightness 14.2 of 255)');
  assert.equal(weakProblemWords({ problem: 'upscaled', value: 63.6 }), 'a small original scaled up (shorter side 64 px)');
  const shortcut = document.querySelector<HTMLElement>('#doctor-shortcuts .finding')!;
  assert.equal(shortcut.querySelector('.sentence')?.textContent, report.shortcuts[0]!.detail);
  assert.match(shortcut.textContent ?? '', /File size alone predicts the class 48% of the time; always guessing the largest class, 25%\./);
  app.dispose();
});

test('an applied fix marks its finding, disables its fixes, offers its Undo and Retrain; an undone fix clears all three', () => {
  const fixed = stateOf({
    fixes: [
      {
        key: 'label:healthy/cedar_rust_05.jpg',
        path: 'healthy/cedar_rust_05.jpg',
        action: 'class',
        toClass: 'cedar_rust',
        newPath: 'cedar_rust/cedar_rust_05.jpg',
      },
    ],
  });
  const { app, api } = open(fixed);
  const card = document.querySelector<HTMLElement>('.finding[data-path="healthy/cedar_rust_05.jpg"]')!;
  assert.equal(card.dataset.fixed, 'class');
  assert.match(card.querySelector('.fixed-note')?.textContent ?? '', /^Moved to cedar_rust/);
  assert.ok([...card.querySelectorAll<HTMLButtonElement>('.actions button')].every((b) => b.disabled));
  // The thumbnail follows the file to its new folder.
  assert.equal(card.querySelector('img')?.getAttribute('src'), 'https://file+.vscode-resource.test/ws/leaves/cedar_rust/cedar_rust_05.jpg');
  card.querySelector<HTMLButtonElement>('.fix-class')!.click();
  assert.equal(api.posted.length, 1, 'a disabled fix posts nothing');
  document.querySelector<HTMLElement>('#doctor-retrain')!.click();
  assert.deepEqual(api.posted.at(-1), { type: 'retrain' });
  card.querySelector<HTMLButtonElement>('.fixed-note .fix-undo')!.click();
  assert.deepEqual(api.posted.at(-1), { type: 'undoFix', path: 'healthy/cedar_rust_05.jpg' });

  deliver({ type: 'state', state: stateOf() });
  assert.equal(document.querySelector<HTMLElement>('.finding[data-path="healthy/cedar_rust_05.jpg"]')!.dataset.fixed, undefined);
  assert.equal(document.querySelector('#doctor-retrain'), null);
  app.dispose();
});

test('the retrain outcome reads as the change of validation accuracy', () => {
  assert.equal(
    retrainLine({ state: 'finished', before: 0.85, after: 0.9167, runName: 'leaves-20261202-091500' }),
    'Validation accuracy 85.0% → 91.7% (+6.7 points) in leaves-20261202-091500. The fixes change the validation set too, so compare with care.',
  );
  assert.match(retrainLine({ state: 'finished', before: 0.9, after: 0.88 }), /90\.0% → 88\.0% \(−2\.0 points\)/);
  assert.equal(
    retrainLine({ state: 'finished', after: 0.9 }),
    'Validation accuracy after the fixes: 90.0% (no earlier run to compare with).',
  );
  const { app } = open(
    stateOf({
      fixes: [{ key: 'outlier:scab/scab_09.jpg', path: 'scab/scab_09.jpg', action: 'trash' }],
      retrain: { state: 'finished', before: 0.85, after: 0.9 },
    }),
  );
  assert.equal(document.querySelector('#retrain-outcome')?.getAttribute('data-state'), 'finished');
  assert.match(document.querySelector('#retrain-outcome')?.textContent ?? '', /\+5\.0 points/);
  app.dispose();
});

test('while the check runs the view shows its stage and progress and a Cancel button; progress updates apply in place', () => {
  const { app, api } = open(stateOf({ state: 'running', report: undefined, progress: { stage: 'features', done: 30, total: 120 } }));
  assert.equal(document.querySelector('#doctor-state')?.textContent, 'Checking: Extracting features, 30 of 120…');
  assert.equal(document.querySelector('#doctor-progress')?.getAttribute('value'), '25');
  assert.ok(
    [...document.querySelectorAll<HTMLElement>('.doctor-section')].every((s) => s.hidden),
    'no sections before a report',
  );
  deliver({ type: 'progress', progress: { stage: 'head', done: 2, total: 5 } });
  assert.equal(document.querySelector('#doctor-state')?.textContent, 'Checking: Cross-validating (folds), 2 of 5…');
  document.querySelector<HTMLElement>('#doctor-cancel')!.click();
  assert.deepEqual(api.posted.at(-1), { type: 'cancel' });
  app.dispose();
});

test('a long list renders a page at a time, and messages that are not doctor notifications are ignored', () => {
  const many = Array.from({ length: DOCTOR_PAGE_SIZE + 7 }, (_, i) => ({ path: `scab/x${i}.jpg`, label: 'scab', score: 1 - i / 1000 }));
  const { app } = open(stateOf({ report: { ...report, outliers: many } }));
  assert.equal(document.querySelectorAll('#doctor-outliers .finding').length, DOCTOR_PAGE_SIZE);
  const more = document.querySelector<HTMLButtonElement>('#doctor-outliers .more')!;
  assert.equal(more.textContent, 'Show 7 more (7 not shown yet)');
  more.click();
  assert.equal(document.querySelectorAll('#doctor-outliers .finding').length, DOCTOR_PAGE_SIZE + 7);
  assert.ok(more.hidden);
  const before = document.querySelector('#app')!.innerHTML;
  deliver({ type: 'state', state: { ...stateOf(), report: { ...report, labelIssues: [{ path: 1 }] } } });
  deliver({ type: 'state', state: { ...stateOf(), state: 'exploded' } });
  deliver({ type: 'moveToClass', path: 'x' });
  assert.equal(document.querySelector('#app')!.innerHTML, before);
  app.dispose();
});

test('the view comes back from its saved state before the host answers', () => {
  const first = open();
  const saved = (first.api as { saved: unknown }).saved;
  first.app.dispose();
  const api = fakeVsCodeApi(saved);
  const app = new DoctorApp(freshRoot(), api);
  app.start(dom.window as unknown as Window);
  assert.deepEqual(paths('#doctor-labelIssues .finding'), ['healthy/cedar_rust_05.jpg', 'scab/scab_04.jpg']);
  assert.deepEqual(api.posted, [{ type: 'ready' }]);
  app.dispose();
});
