import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DoctorReport } from '../../../src/shared/doctor';
import {
  findingCount,
  findingsOf,
  isDoctorPanelCommand,
  isDoctorPanelNotification,
  isDoctorReport,
  withoutKept,
} from '../../../src/shared/protocol/doctorPanel';
import { isTrainingCommand, isTrainingNotification, MAX_DOCTOR_FOLDS } from '../../../src/shared/protocol/training';
import { DEFAULT_TRAIN_OPTIONS } from '../../../src/shared/types';

const report: DoctorReport = {
  dataset: '/data/leaves',
  images: 120,
  classes: ['black_rot', 'cedar_rust', 'healthy', 'scab'],
  labelIssues: [{ path: 'healthy/cedar_rust_05.jpg', label: 'healthy', suggested: 'cedar_rust', score: 0.99 }],
  nearDuplicates: [{ paths: ['scab/b.jpg', 'scab/a.jpg'], classes: ['scab', 'scab'], similarity: 0.99, crossesSplit: true }],
  outliers: [{ path: 'scab/c.jpg', label: 'scab', score: 0.5 }],
  weakImages: [{ path: 'scab/c.jpg', problem: 'dark', value: 12 }],
  shortcuts: [{ property: 'file size', accuracy: 0.5, baseline: 0.25, detail: 'File size predicts the class.' }],
};

/** `value` with the field at the dotted path replaced (or removed, with `undefined`). */
function mutate<T extends object>(value: T, dotted: string, replacement: unknown): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  const keys = dotted.split('.');
  let at = copy;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (replacement === undefined) delete at[last];
  else at[last] = replacement;
  return copy as T;
}

test('a doctor report is accepted only with every list and field the view reads', () => {
  assert.equal(isDoctorReport(report), true);
  for (const [field, bad] of [
    ['dataset', 3],
    ['classes', 'scab'],
    ['labelIssues', undefined],
    ['labelIssues.0.score', '0.99'],
    ['labelIssues.0.suggested', undefined],
    ['nearDuplicates.0.classes', ['scab']],
    ['nearDuplicates.0.crossesSplit', 'yes'],
    ['outliers.0.path', null],
    ['weakImages.0.problem', 'ugly'],
    ['weakImages.0.value', null],
    ['shortcuts.0.detail', undefined],
  ] as const) {
    assert.equal(isDoctorReport(mutate(report, field, bad)), false, `${field} = ${JSON.stringify(bad)}`);
  }
});

test('the doctor command and its report cross the IPC boundary only with the right shape', () => {
  const command = {
    type: 'doctor',
    datasetRoot: '/data/leaves',
    runsDir: '/runs',
    cacheDir: '/cache',
    options: DEFAULT_TRAIN_OPTIONS,
    folds: 5,
  };
  assert.equal(isTrainingCommand(command), true);
  assert.equal(isTrainingCommand({ ...command, folds: 1 }), false);
  assert.equal(isTrainingCommand({ ...command, folds: MAX_DOCTOR_FOLDS + 1 }), false);
  assert.equal(isTrainingCommand({ ...command, folds: 2.5 }), false);
  assert.equal(isTrainingCommand({ ...command, options: { ...DEFAULT_TRAIN_OPTIONS, backend: 'quantum' } }), false);
  assert.equal(isTrainingCommand({ ...command, runsDir: undefined }), false);
  assert.equal(isTrainingNotification({ type: 'doctorFinished', runDir: '/runs/doctor-leaves-20261202-090130', report }), true);
  assert.equal(isTrainingNotification({ type: 'doctorFinished', runDir: '/runs/x', report: mutate(report, 'outliers', {}) }), false);
  assert.equal(isTrainingNotification({ type: 'doctorFinished', report }), false);
});

test('Doctor view commands from the webview are accepted only with the right shape', () => {
  const ok = [
    { type: 'ready' },
    { type: 'cancel' },
    { type: 'retrain' },
    { type: 'openImage', path: 'scab/a.jpg' },
    { type: 'moveToClass', key: 'label:scab/a.jpg', path: 'scab/a.jpg', toClass: 'healthy' },
    { type: 'moveOut', key: 'outlier:scab/a.jpg', path: 'scab/a.jpg', to: 'trash' },
    { type: 'moveOut', key: 'outlier:scab/a.jpg', path: 'scab/a.jpg', to: 'folder' },
    { type: 'keep', key: 'shortcut:file size' },
    { type: 'undoFix', path: 'scab/a.jpg' },
  ];
  for (const m of ok) assert.equal(isDoctorPanelCommand(m), true, JSON.stringify(m));
  const bad = [
    null,
    [],
    'ready',
    { type: 'delete', path: 'scab/a.jpg' },
    { type: 'openImage' },
    { type: 'openImage', path: '' },
    { type: 'openImage', path: 'x'.repeat(4097) },
    { type: 'moveToClass', key: 'label:scab/a.jpg', path: 'scab/a.jpg' },
    { type: 'moveToClass', key: 'label:scab/a.jpg', path: 'scab/a.jpg', toClass: 7 },
    { type: 'moveOut', key: 'outlier:scab/a.jpg', path: 'scab/a.jpg', to: '/tmp' },
    { type: 'moveOut', key: 'outlier:scab/a.jpg', path: 'scab/a.jpg' },
    { type: 'keep' },
    { type: 'keep', key: ['label:scab/a.jpg'] },
    { type: 'undoFix' },
    { type: 'undoFix', path: '' },
  ];
  for (const m of bad) assert.equal(isDoctorPanelCommand(m), false, JSON.stringify(m));
});

test('Doctor view notifications are checked by the webview too', () => {
  const { dataset: _d, ...relative } = report;
  const state = { datasetName: 'leaves', imageBaseUri: 'x', state: 'finished', report: relative, keptCount: 0, fixes: [] };
  assert.equal(isDoctorPanelNotification({ type: 'state', state }), true);
  assert.equal(isDoctorPanelNotification({ type: 'state', state: { ...state, state: 'done' } }), false);
  assert.equal(isDoctorPanelNotification({ type: 'state', state: { ...state, fixes: [{ key: 'k', path: 'p', action: 'rm' }] } }), false);
  assert.equal(isDoctorPanelNotification({ type: 'state', state: { ...state, report: { ...relative, labelIssues: 'x' } } }), false);
  assert.equal(isDoctorPanelNotification({ type: 'progress', progress: { stage: 'features', done: 1, total: 2 } }), true);
  assert.equal(isDoctorPanelNotification({ type: 'progress', progress: { stage: 'features' } }), false);
});

test('every finding has a key that does not depend on the order of a group, and kept findings are left out', () => {
  const findings = findingsOf(report);
  assert.deepEqual(
    findings.map((f) => f.key),
    [
      'label:healthy/cedar_rust_05.jpg',
      'duplicates:scab/a.jpg|scab/b.jpg',
      'outlier:scab/c.jpg',
      'weak:dark:scab/c.jpg',
      'shortcut:file size',
    ],
  );
  assert.equal(findingCount(report), 5);
  const kept = withoutKept(report, new Set(['duplicates:scab/a.jpg|scab/b.jpg', 'outlier:scab/c.jpg', 'label:other.jpg']));
  assert.equal(findingCount(kept), 3);
  assert.deepEqual(kept.nearDuplicates, []);
  assert.deepEqual(kept.outliers, []);
  assert.deepEqual(kept.weakImages, report.weakImages, 'keeping an outlier does not hide the same image as a weak image');
});
