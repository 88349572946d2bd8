// The dataset doctor in a real extension host with the real training bundle: Check Dataset runs the
// doctor in the training process and the Doctor panel and the tree show its findings; then the
// panel's host plays against a hostile webview: malformed messages, paths out of the dataset,
// unknown finding keys and classes are refused and leave every file of the dataset as it was;
// Keep is remembered outside the dataset and hides the finding from the panel and the tree's count.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DatasetNode } from '../../src/extension/datasetTree';
import type { TrainingRun } from '../../src/extension/trainingProcess';
import { copyLeaves, fixtureFolder, imageTrainer, trainingChildren, waitFor } from './hostFixtures';

/** sha256 of every file under `dir`, by relative path: the dataset before and after. */
function hashTree(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    result[path.relative(dir, file)] = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  }
  return result;
}

describe('Dataset doctor from the extension host', () => {
  const fixtures = fixtureFolder('doctor');
  let root: string;
  let misplaced: string;

  before(async () => {
    root = copyLeaves(path.join(fixtures.dir, 'leaves'), 12);
    // One cedar-rust photo filed under healthy: the label issue the doctor must find.
    const photo = fs.readdirSync(path.join(root, 'cedar_rust')).sort()[0]!;
    fs.renameSync(path.join(root, 'cedar_rust', photo), path.join(root, 'healthy', photo));
    misplaced = `healthy/${photo}`;
    await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
  });

  after(() => fixtures.cleanup());

  it('Check Dataset runs the doctor in the training process; the panel lists the misplaced photo and the tree counts the findings', async () => {
    const api = await imageTrainer();
    const before = hashTree(root);
    const run = await vscode.commands.executeCommand<TrainingRun | undefined>('imageTrainer.checkDataset', vscode.Uri.file(root));
    assert.ok(run, 'the command returns the check it started');
    assert.equal(run.kind, 'doctor');
    await run.exited;
    assert.equal(run.state, 'finished', run.failureMessage);
    const panel = api.doctor.panelFor(root);
    assert.ok(panel, 'the Doctor panel of the dataset is open');
    const state = await waitFor('the panel to show the report', () => panel.current.report && panel.current);
    assert.equal(state.state, 'finished');
    const issue = state.report!.labelIssues.find((x) => x.path === misplaced);
    assert.ok(issue, `the misplaced photo is a label issue: ${JSON.stringify(state.report!.labelIssues)}`);
    assert.equal(issue.suggested, 'cedar_rust');
    // Images are named relative to the dataset; only the webview URI of its root (how the webview loads them) holds the path.
    assert.ok(!JSON.stringify({ ...state, imageBaseUri: '' }).includes(root), 'the webview is sent no absolute path');
    assert.deepEqual(hashTree(root), before, 'the check wrote nothing into the dataset');

    await api.datasets.refreshRuns();
    const datasetNode = api.datasets.getChildren().find((n) => n.kind === 'dataset' && n.dataset.root === root)!;
    const doctorNode = api.datasets.getChildren(datasetNode).find((n): n is DatasetNode & { kind: 'doctor' } => n.kind === 'doctor');
    assert.ok(doctorNode, 'the dataset has a Doctor row');
    const count =
      state.report!.labelIssues.length +
      state.report!.nearDuplicates.length +
      state.report!.outliers.length +
      state.report!.weakImages.length +
      state.report!.shortcuts.length;
    assert.equal(api.datasets.getTreeItem(doctorNode).description, `${count} finding${count === 1 ? '' : 's'}`);
    assert.ok(!api.datasets.runsOf(root).some((r) => r.name.startsWith('doctor-')), 'a check is not listed among the training runs');
  });

  it('refuses malformed messages, paths out of the dataset, unknown keys and classes, and changes no file', async () => {
    const api = await imageTrainer();
    const panel = api.doctor.panelFor(root)!;
    const before = hashTree(root);
    const outside = path.join(fixtures.dir, 'outside.jpg');
    fs.copyFileSync(path.join(root, misplaced), outside);
    fs.symlinkSync(outside, path.join(root, 'healthy', 'link-out.jpg'));
    const key = `label:${misplaced}`;
    const hostile: unknown[] = [
      'moveToClass',
      { type: 'moveToClass', key, path: misplaced },
      { type: 'moveToClass', key, path: `../${path.basename(fixtures.dir)}/outside.jpg`, toClass: 'cedar_rust' },
      { type: 'moveToClass', key, path: path.join(root, misplaced), toClass: 'cedar_rust' },
      { type: 'moveToClass', key, path: 'healthy\\..\\..\\outside.jpg', toClass: 'cedar_rust' },
      { type: 'moveToClass', key, path: misplaced, toClass: '../../evil' },
      { type: 'moveToClass', key, path: misplaced, toClass: 'no_such_class' },
      { type: 'moveToClass', key: 'label:healthy/link-out.jpg', path: 'healthy/link-out.jpg', toClass: 'cedar_rust' },
      { type: 'moveToClass', key: 'outlier:whatever', path: misplaced, toClass: 'cedar_rust' },
      { type: 'moveOut', key, path: 'healthy/link-out.jpg', to: 'trash' },
      { type: 'moveOut', key, path: misplaced, to: '/tmp' },
      { type: 'openImage', path: '/etc/passwd' },
      { type: 'openImage', path: 'healthy/link-out.jpg' },
      { type: 'keep', key: 'label:not/in/the/report.jpg' },
    ];
    const refusedBefore = panel.refusals.length;
    for (const message of hostile) await panel.handleMessage(message);
    const refusals = panel.refusals.slice(refusedBefore);
    assert.equal(refusals.length, hostile.length, `every hostile message is refused:\n${refusals.join('\n')}`);
    assert.match(
      refusals.join('\n'),
      /not an open label issue|not normalised|absolute path|backslash|unknown class|class is not a folder name/,
    );
    fs.unlinkSync(path.join(root, 'healthy', 'link-out.jpg'));
    assert.deepEqual(hashTree(root), before, 'no file of the dataset changed');
    assert.equal(panel.current.fixes.length, 0);
  });

  it('Keep hides a finding, remembers it in the runs folder (not the dataset) and lowers the tree count', async () => {
    const api = await imageTrainer();
    const panel = api.doctor.panelFor(root)!;
    const before = hashTree(root);
    const shownBefore = panel.current.report!.labelIssues.length;
    await panel.handleMessage({ type: 'keep', key: `label:${misplaced}` });
    assert.equal(panel.current.report!.labelIssues.length, shownBefore - 1);
    assert.ok(!panel.current.report!.labelIssues.some((x) => x.path === misplaced));
    assert.equal(panel.current.keptCount, 1);
    const runsDir = path.join(path.dirname(fixtures.dir), '.image-trainer', 'runs');
    const kept = JSON.parse(fs.readFileSync(path.join(runsDir, 'doctor-kept.json'), 'utf8')) as { datasets: Record<string, string[]> };
    assert.deepEqual(kept.datasets[root], [`label:${misplaced}`]);
    assert.deepEqual(hashTree(root), before, 'Keep wrote nothing into the dataset');
    await api.datasets.refreshRuns();
    const datasetNode = api.datasets.getChildren().find((n) => n.kind === 'dataset' && n.dataset.root === root)!;
    const doctorNode = api.datasets.getChildren(datasetNode).find((n) => n.kind === 'doctor')!;
    const report = panel.current.report!;
    const count =
      report.labelIssues.length +
      report.nearDuplicates.length +
      report.outliers.length +
      report.weakImages.length +
      report.shortcuts.length;
    assert.equal(
      api.datasets.getTreeItem(doctorNode).description,
      count === 0 ? 'no findings' : `${count} finding${count === 1 ? '' : 's'}`,
    );
  });

  it("the panel's Cancel stops a check: the process exits, the panel and the check's folder say cancelled, the dataset is unchanged", async () => {
    const api = await imageTrainer();
    // Another copy (cold feature cache), so that the check is still going when Cancel arrives.
    const other = copyLeaves(path.join(fixtures.dir, 'leaves-cancel'), 20);
    await vscode.commands.executeCommand('imageTrainer.refreshDatasets');
    const before = hashTree(other);
    const run = await vscode.commands.executeCommand<TrainingRun | undefined>('imageTrainer.checkDataset', vscode.Uri.file(other));
    assert.ok(run);
    const panel = api.doctor.panelFor(other)!;
    await panel.handleMessage({ type: 'cancel' });
    await run.exited;
    assert.equal(run.state, 'cancelled');
    await waitFor('the panel to say cancelled', () => panel.current.state === 'cancelled');
    assert.equal(panel.current.report, undefined);
    assert.deepEqual(trainingChildren(), [], 'no training process left');
    if (run.runDir) {
      const status = JSON.parse(fs.readFileSync(path.join(run.runDir, 'status.json'), 'utf8')) as { state: string };
      assert.equal(status.state, 'cancelled');
    }
    assert.deepEqual(hashTree(other), before);
  });
});
