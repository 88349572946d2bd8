// The commands of the dataset doctor: Check Dataset (tree and Explorer menus: runs the doctor in the
// training process, with progress in a notification and the Doctor panel) and Open Dataset Doctor
// (the latest check of a dataset, from its doctor.json).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { discoverDatasets } from './datasetDiscovery';
import type { DatasetNode } from './datasetTree';
import type { DoctorPanelManager } from './doctorPanel';
import { samePath } from './runIndex';
import { datasetRootFrom, startRequestFor, type CommandServices } from './trainingCommands';
import { RunInProgressError, type TrainingRun } from './trainingProcess';

/** Cross-validation folds of a check started from VS Code (the CLI's default). */
export const DOCTOR_FOLDS = 5;

function isDoctorNode(value: unknown): value is DatasetNode & { kind: 'doctor' } {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'doctor' && 'check' in value;
}

/** The dataset a Check Dataset argument names: a class folder or an image means its dataset. */
async function datasetToCheck(services: CommandServices, arg: unknown): Promise<string | undefined> {
  const chosen = await datasetRootFrom(arg, services, 'Check Dataset', 'Check This Folder');
  if (!chosen) return undefined;
  await services.datasets.whenReady();
  const enclosing = services.datasets.datasetContaining(chosen);
  if (enclosing) return enclosing.root;
  const { datasets } = await discoverDatasets(chosen, { maxDepth: 3 });
  if (datasets.some((d) => samePath(d.root, chosen))) return chosen;
  void services.notices.warn(
    `${path.basename(chosen)} does not look like an image dataset: it needs two or more subfolders (one per class) holding images, or train/ and val/ folders laid out that way.`,
  );
  return undefined;
}

/** Check Dataset: runs the doctor on a dataset and shows it in the Doctor panel; returns the check's process. */
export async function checkDataset(services: CommandServices, doctor: DoctorPanelManager, arg?: unknown): Promise<TrainingRun | undefined> {
  const root = await datasetToCheck(services, arg);
  if (!root) return undefined;
  const existing = services.manager.runFor(root);
  if (existing?.kind === 'doctor') {
    doctor.showLive(existing);
    return existing;
  }
  if (existing) {
    void services.notices.info(`${existing.datasetName} is training; check it when the run ends.`);
    return undefined;
  }
  const request = await startRequestFor(root, services);
  if (!request) return undefined;
  let run: TrainingRun;
  try {
    run = services.manager.start({ ...request, doctorFolds: DOCTOR_FOLDS });
  } catch (error) {
    if (error instanceof RunInProgressError) void services.notices.info(error.message);
    else void services.notices.error(`Could not check ${path.basename(root)}: ${(error as Error).message}`);
    return undefined;
  }
  doctor.showLive(run);
  run.onDidEnd((state) => announceCheckEnd(run, state, services, doctor));
  return run;
}

function announceCheckEnd(run: TrainingRun, state: string, services: CommandServices, doctor: DoctorPanelManager): void {
  if (state === 'finished') {
    const report = [...run.history].reverse().find((n) => n.type === 'doctorFinished');
    if (report?.type !== 'doctorFinished') return;
    const r = report.report;
    const count = r.labelIssues.length + r.nearDuplicates.length + r.outliers.length + r.weakImages.length + r.shortcuts.length;
    services.log.appendLine(`[doctor] ${run.datasetName}: ${count} findings in ${report.runDir}`);
  } else if (state === 'failed') {
    void services.notices
      .error(`Checking ${run.datasetName} failed: ${run.failureMessage ?? 'unknown error'}`, 'Show Doctor')
      .then((choice) => {
        if (choice === 'Show Doctor') doctor.showLive(run);
      });
  }
}

/** Open Dataset Doctor: the latest check of a dataset (tree node, dataset Uri or path). */
export async function openDoctorReport(services: CommandServices, doctor: DoctorPanelManager, arg?: unknown): Promise<void> {
  if (isDoctorNode(arg)) {
    const live = services.manager.runFor(arg.dataset.root);
    if (live?.kind === 'doctor') doctor.showLive(live);
    else await doctor.showCheckFolder(arg.dataset.root, arg.check.runDir);
    return;
  }
  const root = await datasetRootFrom(arg, services, 'Open Dataset Doctor', 'Open');
  if (!root) return;
  await services.datasets.whenReady();
  const check = services.datasets.latestCheckOf(root);
  if (!check) {
    const choice = await services.notices.info(`${path.basename(root)} has not been checked yet.`, 'Check Dataset');
    if (choice) await vscode.commands.executeCommand('imageTrainer.checkDataset', vscode.Uri.file(root));
    return;
  }
  await doctor.showCheckFolder(root, check.runDir);
}
