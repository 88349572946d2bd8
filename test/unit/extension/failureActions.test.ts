import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failureActions, failureNotice } from '../../../src/extension/failureActions';
import { ERROR_KINDS } from '../../../src/shared/types';

test('each kind of failure offers the action that fixes it first, and the panel last', () => {
  assert.deepEqual(failureActions('dataset', true), ['Open Dataset Report', 'Open Panel']);
  assert.deepEqual(failureActions('options', true), ['Open Settings', 'Open Panel']);
  assert.deepEqual(failureActions('model', true), ['Open Settings', 'Open Panel']);
  assert.deepEqual(failureActions('model-download', true), ['Retry', 'Open Settings', 'Open Panel']);
  assert.deepEqual(failureActions('backend', true), ['Show Diagnostics', 'Open Panel']);
  assert.deepEqual(failureActions('disk', true), ['Reveal Folder', 'Open Settings', 'Open Panel']);
  assert.deepEqual(failureActions('internal', true), ['Open Log', 'Open Panel']);
});

test('without a run folder, nothing in a run folder is offered', () => {
  assert.deepEqual(failureActions('dataset', false), ['Open Panel']);
  assert.deepEqual(failureActions('disk', false), ['Open Settings', 'Open Panel']);
  assert.deepEqual(failureActions('internal', false), ['Open Panel']);
  for (const kind of ERROR_KINDS) {
    const actions = failureActions(kind, false) ?? [];
    for (const needsFolder of ['Open Dataset Report', 'Reveal Folder', 'Open Log'] as const)
      assert.equal(actions.includes(needsFolder), false, `${kind} offers ${needsFolder}`);
  }
});

test('a cancel is not an error: it gets no failure notice', () => {
  assert.equal(failureActions('cancelled', true), undefined);
  assert.equal(failureNotice('cancelled', 'leaves', 'Training was cancelled.', true), undefined);
});

test('the notice names the dataset and the kind of problem on one line', () => {
  const notice = failureNotice(
    'dataset',
    'leaves',
    'Found 1 usable class (healthy) in /data/leaves:\n  need at least 2 class folders with images',
    true,
  );
  assert.deepEqual(notice, {
    message:
      'Training on leaves failed. Dataset problem: Found 1 usable class (healthy) in /data/leaves: need at least 2 class folders with images',
    actions: ['Open Dataset Report', 'Open Panel'],
  });
  assert.equal(
    failureNotice('model-download', 'leaves', 'Could not download MobileNetV2 1.00: the server answered 404.', false)?.message,
    'Training on leaves failed. Model download failed: Could not download MobileNetV2 1.00: the server answered 404.',
  );
  assert.equal(
    failureNotice('disk', 'leaves', 'ENOSPC: no space left on device, write', true)?.message.includes('Cannot write: ENOSPC'),
    true,
  );
});

test('an unexpected failure reads as before: the message alone after the dataset name', () => {
  assert.equal(
    failureNotice('internal', 'tiny', 'The training process was killed (SIGKILL) before the run ended.', true)?.message,
    'Training on tiny failed: The training process was killed (SIGKILL) before the run ended.',
  );
});
