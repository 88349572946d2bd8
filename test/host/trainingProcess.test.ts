// Training driven by the commands in a real extension host with the real training bundle: a run
// completes and appears under its dataset; cancel keeps the best checkpoint; a killed child gives
// an error notification and a consistent run folder; deactivation leaves no child behind.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DatasetNode } from '../../src/extension/datasetTree';
import type { TrainingRun } from '../../src/extension/trainingProcess';
import { copyLeaves, fixtureFolder, imageTrainer, isAlive, trainingChildren, waitFor, withSettings } from './hostFixtures';

function readStatus(runDir: string): { state: string; hasCheckpoint: boolean; message?: string; valAccuracy?: number } {
  return JSON.parse(fs.readFileSync(path.join(runDir, 'status.json'), 'utf8'));
}

async function train(datasetRoot: string): Promise<TrainingRun> {
  const run = await vscode.commands.executeCommand<TrainingRun | undefined>('imageTrainer.trainClassifier', vscode.Uri.file(datasetRoot));
  assert.ok(run, 'the command returns the run it started');
  return run;
}

describe('Training from the extension host', () => {
  const fixtures = fixtureFolder('train');
  let restoreSettings: () => Promise<void> = async () => {};
  let tiny: string;

  before(async () => {
    tiny = copyLeaves(path.join(fixtures.dir, 'tiny'), 6, ['healthy', 'scab', 'black_rot']);
    restoreSettings = await withSettings({ epochs: 3, batchSize: 8, patience: 0, lrPatience: 0, fineTuneLayers: 0, backend: 'auto' });
    await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
  });

  after(async () => {
    await restoreSettings();
    fixtures.cleanup();
  });

  it('trains a tiny dataset to the end and lists the run under the dataset with its accuracy', async () => {
    const api = await imageTrainer();
    const run = await train(tiny);
    assert.equal(api.manager.runFor(tiny), run);
    await run.exited;
    assert.equal(run.state, 'finished', `run ended ${run.state}: ${run.failureMessage ?? ''}`);
    assert.ok(run.runDir && fs.existsSync(path.join(run.runDir, 'model', 'model.json')));
    assert.equal(readStatus(run.runDir).state, 'finished');
    assert.ok(
      run.history.some((n) => n.type === 'epochEnd'),
      'epochs were reported',
    );
    assert.deepEqual(trainingChildren(), [], 'the child has exited');

    const runDir = run.runDir;
    // The tree re-reads the run folders when the process exits; wait for that read.
    await waitFor(
      'the finished run in the tree',
      () => api.datasets.runsOf(tiny).some((r) => r.runDir === runDir && r.status.state === 'finished'),
      10_000,
    );
    const datasetNode = api.datasets.getChildren().find((n) => n.kind === 'dataset' && n.dataset.root === tiny) as DatasetNode;
    const runsNode = api.datasets.getChildren(datasetNode).find((n) => n.kind === 'runs');
    assert.ok(runsNode, 'the dataset has a Runs group');
    const runNodes = api.datasets.getChildren(runsNode);
    const item = api.datasets.getTreeItem(runNodes[0]);
    assert.match(String(item.description), /^val \d+\.\d% · finished$/);
    assert.equal(item.contextValue, 'run-finished');
    assert.ok(api.notices.shown.some((n) => n.level === 'info' && /Training on tiny finished: validation accuracy/.test(n.message)));
  });

  it('stops at the time limit set in imageTrainer.timeLimitMinutes after the epoch in which it passed, keeping the best checkpoint', async () => {
    // A limit (60 ms) that has passed when the first of the 3 epochs ends, and no early stopping:
    // only the limit can end this run before its last epoch.
    const restore = await withSettings({ timeLimitMinutes: 0.001 });
    try {
      const run = await train(tiny);
      await run.exited;
      assert.equal(run.state, 'finished', `run ended ${run.state}: ${run.failureMessage ?? ''}`);
      const epochs = run.history.filter((n) => n.type === 'epochEnd').length;
      assert.equal(epochs, 1);
      const status = readStatus(run.runDir!);
      assert.equal(
        status.message,
        'Stopped at the time limit (0.06 s); the best checkpoint was kept.',
        `${epochs} epochs; status ${JSON.stringify(status)}`,
      );
      assert.ok(fs.existsSync(path.join(run.runDir!, 'model', 'model.json')));
    } finally {
      await restore();
    }
  });

  it('classifies an image of the dataset with its latest model and shows the top 3 with the heatmap beside them', async () => {
    const image = path.join(tiny, 'scab', fs.readdirSync(path.join(tiny, 'scab')).sort()[0]);
    const result = await vscode.commands.executeCommand<{
      runDir: string;
      prediction: { top: { label: string; confidence: number }[]; unknown?: boolean; novelty?: number };
      heatmap?: string;
      summary: string;
    }>('imageTrainer.classifyImage', vscode.Uri.file(image));
    assert.ok(result, 'a prediction came back');
    // What the user reads: the top 3, led by "unknown — …" only when the image is flagged.
    const top3 = result.prediction.top.map((t) => `${t.label} ${(t.confidence * 100).toFixed(1)}%`).join(' · ');
    assert.ok(result.summary.endsWith(`${top3} (model ${path.basename(result.runDir)})`), result.summary);
    assert.equal(result.summary.includes('unknown — unlike every class (novelty '), result.prediction.unknown === true, result.summary);
    assert.equal(result.prediction.top.length, 3);
    assert.ok(result.prediction.top.every((t) => ['healthy', 'scab', 'black_rot'].includes(t.label)));
    const total = result.prediction.top.reduce((s, t) => s + t.confidence, 0);
    assert.ok(Math.abs(total - 1) < 0.01, `three classes' confidences sum to 1 (${total})`);
    assert.ok(result.heatmap && fs.existsSync(result.heatmap), 'the heatmap was drawn');
    assert.deepEqual([...fs.readFileSync(result.heatmap).subarray(1, 4)], [...Buffer.from('PNG')]);
    assert.ok(
      vscode.window.tabGroups.all.some((g) =>
        g.tabs.some((t) => (t.input as { uri?: vscode.Uri } | undefined)?.uri?.fsPath === result.heatmap),
      ),
      'the heatmap is open in a tab',
    );
  });

  it('refuses a second run on the same dataset while one is going', async () => {
    const api = await imageTrainer();
    const first = await train(tiny);
    const second = await train(tiny);
    assert.equal(second, first, 'the running run is offered instead of a new one');
    assert.equal(api.manager.activeRuns.filter((r) => r.datasetRoot === tiny).length, 1);
    assert.ok(api.notices.shown.some((n) => n.message === 'A training run for tiny is already going.'));
    first.cancel();
    await first.exited;
  });

  it('cancels a running training within a few seconds and keeps the best checkpoint', async () => {
    const undo = await withSettings({ epochs: 500 });
    try {
      const run = await train(tiny);
      await waitFor(
        'a first epoch with a checkpoint',
        () => run.history.some((n) => n.type === 'epochEnd') && run.runDir && readStatus(run.runDir).hasCheckpoint,
        120_000,
      );
      const t0 = Date.now();
      await vscode.commands.executeCommand('imageTrainer.cancelTraining', vscode.Uri.file(tiny));
      await run.exited;
      const seconds = (Date.now() - t0) / 1000;
      console.log(`[host] cancel → process exit in ${seconds.toFixed(2)} s`);
      assert.ok(seconds < 10, `stopped in ${seconds} s`);
      assert.equal(run.state, 'cancelled');
      assert.ok(run.runDir);
      const status = readStatus(run.runDir);
      assert.equal(status.state, 'cancelled');
      assert.equal(status.hasCheckpoint, true);
      assert.ok(fs.existsSync(path.join(run.runDir, 'model', 'model.json')), 'the best checkpoint remains');
      assert.deepEqual(trainingChildren(), []);
    } finally {
      await undo();
    }
  });

  it('reports a training process killed with SIGKILL as an error, marks its run failed and leaves no orphan', async () => {
    const api = await imageTrainer();
    const undo = await withSettings({ epochs: 500 });
    try {
      const run = await train(tiny);
      await waitFor('the run folder', () => run.runDir && fs.existsSync(path.join(run.runDir, 'status.json')), 120_000);
      const pid = run.pid as number;
      process.kill(pid, 'SIGKILL');
      await run.exited;
      assert.equal(run.state, 'failed');
      assert.match(run.failureMessage ?? '', /killed \(SIGKILL\)/);
      const error = await waitFor('the error notification', () =>
        api.notices.shown.find((n) => n.level === 'error' && n.message.includes('SIGKILL')),
      );
      assert.match(error.message, /^Training on tiny failed: The training process was killed \(SIGKILL\) before the run ended\.$/);
      const status = readStatus(run.runDir as string);
      assert.equal(status.state, 'failed', 'the run folder no longer claims to be running');
      assert.equal(isAlive(pid), false);
      assert.deepEqual(trainingChildren(), [], 'no training process is left');
    } finally {
      await undo();
    }
  });

  it('shows which backend runs and why', async () => {
    const info = await vscode.commands.executeCommand<{ backend: string; summary: string; attempts: unknown[] }>(
      'imageTrainer.showBackendDiagnostics',
    );
    assert.ok(info, 'diagnose returned a BackendInfo');
    assert.ok(['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'].includes(info.backend));
    assert.ok(info.attempts.length > 0);
  });

  it('stops every child on deactivation and returns only when they are gone', async () => {
    const api = await imageTrainer();
    const undo = await withSettings({ epochs: 500 });
    const run = await train(tiny);
    await waitFor('the run to start', () => run.state === 'running', 120_000);
    assert.equal(trainingChildren().length, 1);
    // VS Code calls the module's deactivate(); the same module instance is loaded here.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- the very module instance VS Code loaded, not a fresh import
    const extensionModule = require(
      path.join(vscode.extensions.getExtension('image-trainer.image-trainer')?.extensionPath ?? '', 'dist', 'extension.js'),
    ) as {
      deactivate(): Promise<void> | undefined;
    };
    const t0 = Date.now();
    await extensionModule.deactivate();
    console.log(`[host] deactivate with a live run returned after ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    assert.equal(run.isAlive, false);
    assert.deepEqual(trainingChildren(), [], 'no child left after deactivate');
    assert.equal(api.manager.activeRuns.length, 0);
    await undo();
  });
});
