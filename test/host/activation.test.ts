// The extension activates in a real extension host and contributes its commands and view.
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { copyLeaves, extensionId, fixtureFolder, imageTrainer, waitFor } from './hostFixtures';

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

  it("shows the Image Datasets view in the explorer, listing the workspace's dataset", async () => {
    const fixtures = fixtureFolder('activation');
    try {
      const root = copyLeaves(path.join(fixtures.dir, 'leaves'), 3, ['healthy', 'scab']);
      const api = await imageTrainer();
      await api.datasets.whenReady();
      await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
      await vscode.commands.executeCommand('imageTrainer.datasets.focus');
      await waitFor('the Image Datasets view to be visible', () => api.datasetsView.visible, 10_000);
      const roots = api.datasets.getChildren();
      const shown = roots.find((n) => n.kind === 'dataset' && n.dataset.root === root);
      assert.ok(shown, `the view lists ${root}: it lists ${roots.map((n) => n.dataset.root).join(', ') || 'nothing'}`);
      const item = api.datasets.getTreeItem(shown);
      assert.equal(item.label, 'leaves');
      assert.match(String(item.description), /^2 classes · 6 images/);
    } finally {
      fixtures.cleanup();
      await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
    }
  });
});
