// The extension activates in a real extension host and contributes its commands and view.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';
import { extensionId, imageTrainer } from './hostFixtures';

const CONTRACT_COMMANDS = [
  'imageTrainer.trainClassifier',
  'imageTrainer.cancelTraining',
  'imageTrainer.openPanel',
  'imageTrainer.showBackendDiagnostics',
  'imageTrainer.refreshDatasets',
  'imageTrainer.classifyImage',
  'imageTrainer.openRunReport',
];

describe('Image Trainer in the extension host', () => {
  it('activates and registers every command of the contract', async () => {
    const api = await imageTrainer();
    assert.ok(api.manager && api.datasets, 'activate returns the extension API');
    assert.equal(vscode.extensions.getExtension(extensionId)?.isActive, true);
    const commands = await vscode.commands.getCommands(true);
    for (const id of CONTRACT_COMMANDS) assert.ok(commands.includes(id), `${id} is registered`);
  });

  it('shows the Image Datasets view in the explorer', async () => {
    await vscode.commands.executeCommand('imageTrainer.datasets.focus');
    const api = await imageTrainer();
    await api.datasets.whenReady();
  });
});
