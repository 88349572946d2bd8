import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPanelCommand } from '../../../src/shared/protocol/panel';
import { isTrainingCommand, isTrainingNotification } from '../../../src/shared/protocol/training';

test('panel commands from the webview are accepted only with the right shape', () => {
  assert.equal(isPanelCommand({ type: 'ready' }), true);
  assert.equal(isPanelCommand({ type: 'openImage', path: 'a/b.jpg' }), true);
  assert.equal(isPanelCommand({ type: 'openImage' }), false);
  assert.equal(isPanelCommand({ type: 'openImage', path: 42 }), false);
  assert.equal(isPanelCommand({ type: 'moveImage', path: 'a/b.jpg' }), false);
  assert.equal(isPanelCommand({ type: 'rm -rf' }), false);
  assert.equal(isPanelCommand(null), false);
  assert.equal(isPanelCommand([]), false);
});

test('a retrain command may name a base model, as a short non-empty string only', () => {
  assert.equal(isPanelCommand({ type: 'retrain' }), true);
  assert.equal(isPanelCommand({ type: 'retrain', model: 'mobilenet_v1_0.25' }), true);
  assert.equal(isPanelCommand({ type: 'retrain', model: '' }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: 3 }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: null }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: ['mobilenet_v2_0.35'] }), false);
  assert.equal(isPanelCommand({ type: 'retrain', model: 'x'.repeat(201) }), false);
});

test('training commands and notifications are recognised by their type', () => {
  assert.equal(isTrainingCommand({ type: 'cancel' }), true);
  assert.equal(isTrainingCommand({ type: 'start', datasetRoot: '/d', runsDir: '/r', cacheDir: '/c', options: {} }), true);
  assert.equal(isTrainingCommand({ type: 'start', datasetRoot: '/d' }), false);
  assert.equal(isTrainingNotification({ type: 'epochEnd', metrics: {} }), true);
  assert.equal(isTrainingNotification({ type: 'nope' }), false);
});
