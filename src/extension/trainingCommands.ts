// The commands around a run: Train Image Classifier, Cancel Training, Open Training Panel, Open Run
// Report, Reveal in Explorer. Explorer menus pass the Uri they were invoked on; the tree passes its node.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { RUN_FILES } from '../shared/runFolder';
import type { TrainOptions } from '../shared/types';
import { runLocationsFor } from './configuration';
import type { SettingsProblemReporter } from './configuration';
import { discoverDatasets } from './datasetDiscovery';
import type { FailureAction } from './failureActions';
import { failureNotice } from './failureActions';
import type { DatasetNode, DatasetTreeProvider } from './datasetTree';
import { folderInsideDataset } from './outputFolderCheck';
import { describeRun, readRunStatus, samePath } from './runIndex';
import type { RunEntry } from './runIndex';
import { RunInProgressError } from './trainingProcess';
import type { StartRequest, TrainingProcessManager, TrainingRun } from './trainingProcess';
import type { TrainingRunHandle } from './trainingRunHandle';
import type { UserNotices } from './userNotices';
import type { StorageLocations } from './configuration';

/** What the commands need from the panel controller (TrainingPanelManager). */
export interface PanelController {
  showLive(run: TrainingRunHandle): void;
  showRunFolder(runDir: string): Promise<void>;
  compareWith(runDir: string): Promise<void>;
}

export interface CommandServices {
  log: vscode.OutputChannel;
  manager: TrainingProcessManager;
  datasets: DatasetTreeProvider;
  panel: () => PanelController;
  settings: SettingsProblemReporter;
  notices: UserNotices;
  /** Folders in the extension's global storage: downloaded base models and native backends. */
  storage: StorageLocations;
}

function isNode(value: unknown): value is DatasetNode {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string' && 'dataset' in value;
}

function isRunHandle(value: unknown): value is TrainingRunHandle {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as TrainingRunHandle).cancel === 'function' &&
    typeof (value as TrainingRunHandle).id === 'string'
  );
}

async function isDirectory(fsPath: string): Promise<boolean> {
  try {
    return (await fs.stat(fsPath)).isDirectory();
  } catch {
    return false;
  }
}

async function isRunFolder(fsPath: string): Promise<boolean> {
  return (await readRunStatus(fsPath)) !== undefined;
}

/** The dataset folder a command argument names, asking the user when it names none. */
export async function datasetRootFrom(
  arg: unknown,
  services: CommandServices,
  title = 'Train Image Classifier',
  openLabel = 'Train on This Folder',
): Promise<string | undefined> {
  if (arg instanceof vscode.Uri) return (await isDirectory(arg.fsPath)) ? arg.fsPath : path.dirname(arg.fsPath);
  if (typeof arg === 'string') return arg;
  if (isNode(arg)) return arg.dataset.root;
  await services.datasets.whenReady();
  const datasets = services.datasets.datasets;
  type Item = vscode.QuickPickItem & { root?: string };
  const items: Item[] = datasets.map((d) => ({
    label: d.name,
    description: `${d.classes.length} classes · ${d.imageCount} images`,
    detail: vscode.workspace.asRelativePath(d.root),
    root: d.root,
  }));
  items.push({ label: '$(folder-opened) Choose a folder…', alwaysShow: true });
  const picked =
    datasets.length > 0 ? await vscode.window.showQuickPick(items, { title, placeHolder: 'Dataset' }) : items[items.length - 1];
  if (!picked) return undefined;
  if (picked.root) return picked.root;
  const chosen = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel,
    title: 'A folder with one subfolder of images per class',
  });
  return chosen?.[0]?.fsPath;
}

/** Offers to show or cancel the run already going on a dataset. */
async function offerRunningRun(run: TrainingRun, services: CommandServices): Promise<void> {
  if (run.kind === 'doctor') {
    const choice = await services.notices.info(`${run.datasetName} is being checked; train when the check ends.`, 'Cancel Check');
    if (choice === 'Cancel Check') run.cancel();
    return;
  }
  const choice = await services.notices.info(`A training run for ${run.datasetName} is already going.`, 'Show Panel', 'Cancel Run');
  if (choice === 'Show Panel') services.panel().showLive(run);
  if (choice === 'Cancel Run') run.cancel();
}

/** Train Image Classifier: starts a run on a folder and opens the panel on it; returns the run. `overrides` (e.g. the panel's model choice) win over the settings. */
export async function trainClassifier(
  services: CommandServices,
  arg?: unknown,
  overrides?: Partial<TrainOptions>,
): Promise<TrainingRun | undefined> {
  const root = await datasetRootFrom(arg, services);
  if (!root) return undefined;
  const existing = services.manager.runFor(root);
  if (existing) {
    void offerRunningRun(existing, services);
    return existing;
  }
  const enclosing = services.datasets.datasetContaining(root);
  if (enclosing && !samePath(enclosing.root, root)) {
    // A right-click on a class folder (or deeper) most likely means its dataset.
    const action = `Train on ${enclosing.name}`;
    const choice = await services.notices.info(
      `${path.basename(root)} is inside the dataset ${enclosing.name}.`,
      action,
      'Train on This Folder',
    );
    if (!choice) return undefined;
    if (choice === action) return trainClassifier(services, enclosing.root, overrides);
  }
  if (!services.datasets.datasets.some((d) => samePath(d.root, root))) {
    // Not in the tree (outside the workspace, too deep, or not a dataset): look at it before forking.
    const { datasets } = await discoverDatasets(root, { maxDepth: 3 });
    if (!datasets.some((d) => samePath(d.root, root))) {
      const choice = await services.notices.warn(
        `${path.basename(root)} does not look like an image dataset: it needs two or more subfolders (one per class) holding images, or train/ and val/ folders laid out that way.`,
        'Train Anyway',
      );
      if (choice !== 'Train Anyway') return undefined;
    }
  }
  const request = await startRequestFor(root, services, overrides);
  if (!request) return undefined;
  let run: TrainingRun;
  try {
    run = services.manager.start(request);
  } catch (error) {
    if (error instanceof RunInProgressError) {
      void offerRunningRun(error.run, services);
      return error.run;
    }
    void services.notices.error(`Could not start training: ${(error as Error).message}`);
    return undefined;
  }
  try {
    services.panel().showLive(run);
  } catch (error) {
    services.log.appendLine(`[panel] could not open the panel: ${(error as Error).message}`);
  }
  return run;
}

/**
 * What a process on `root` is started with: the settings (`overrides` win), the output folders and
 * the extension's storage; undefined (after telling the user) when an output folder lies inside the dataset.
 */
export async function startRequestFor(
  root: string,
  services: CommandServices,
  overrides?: Partial<TrainOptions>,
): Promise<StartRequest | undefined> {
  const { settings } = services.settings.check(vscode.Uri.file(root));
  const locations = runLocationsFor(root, settings);
  // Compared by real path: a symlink must not let a run write into the dataset.
  const inside = await folderInsideDataset(root, [
    { role: 'runs', folder: locations.runsDir, setting: 'imageTrainer.runsFolder' },
    { role: 'cache', folder: locations.cacheDir, setting: 'imageTrainer.cacheFolder' },
  ]);
  if (inside) {
    void services.notices.error(inside.message, 'Open Settings').then((choice) => {
      if (choice === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', inside.setting);
    });
    return undefined;
  }
  return {
    datasetRoot: root,
    runsDir: locations.runsDir,
    cacheDir: locations.cacheDir,
    options: overrides ? { ...settings.train, ...overrides } : settings.train,
    cwd: locations.base,
    modelCacheDir: services.storage.modelCacheDir,
    nativeBackendsDir: services.storage.nativeBackendsDir,
  };
}

/** Cancel Training: cancels the run of the given dataset, the only run, or one the user picks. */
export async function cancelTraining(services: CommandServices, arg?: unknown): Promise<void> {
  let run: TrainingRun | undefined;
  if (isRunHandle(arg)) run = services.manager.runById(arg.id);
  else if (isNode(arg)) run = services.manager.runFor(arg.dataset.root);
  else if (arg instanceof vscode.Uri) run = services.manager.runFor(arg.fsPath);
  else {
    const runs = services.manager.activeRuns.filter((r) => !r.isEnded);
    if (runs.length === 0) {
      void services.notices.info('No training is running.');
      return;
    }
    run =
      runs.length === 1
        ? runs[0]
        : (
            await vscode.window.showQuickPick(
              runs.map((r) => ({ label: r.datasetName, detail: r.datasetRoot, run: r })),
              { title: 'Cancel Training', placeHolder: 'Run to cancel' },
            )
          )?.run;
  }
  run?.cancel();
}

/** Lets the user choose one of `runs` in a QuickPick. */
export async function pickRun(runs: readonly RunEntry[], title: string, placeHolder = 'Run'): Promise<RunEntry | undefined> {
  if (runs.length === 0) return undefined;
  const picked = await vscode.window.showQuickPick(
    runs.map((run) => ({ label: run.name, description: describeRun(run), detail: run.status.datasetRoot, run })),
    { title, placeHolder, matchOnDetail: true },
  );
  return picked?.run;
}

/** Open Training Panel: a live run, a run folder, the latest run of a dataset, or one the user picks. */
export async function openPanel(services: CommandServices, arg?: unknown): Promise<void> {
  const panel = services.panel();
  if (isRunHandle(arg)) return panel.showLive(arg);
  let runDir: string | undefined;
  let datasetRoot: string | undefined;
  if (isNode(arg)) {
    if (arg.kind === 'run') runDir = arg.run.runDir;
    else datasetRoot = arg.dataset.root;
  } else if (arg instanceof vscode.Uri || typeof arg === 'string') {
    const fsPath = arg instanceof vscode.Uri ? arg.fsPath : arg;
    if (await isRunFolder(fsPath)) runDir = fsPath;
    else datasetRoot = fsPath;
  }
  const live = services.manager.activeRuns.filter(
    (r) =>
      r.kind === 'train' &&
      (runDir ? r.runDir !== undefined && samePath(r.runDir, runDir) : datasetRoot ? samePath(r.datasetRoot, datasetRoot) : true),
  );
  if (live.length > 0) return panel.showLive(live[live.length - 1]);
  if (!runDir && datasetRoot) runDir = services.datasets.runsOf(datasetRoot)[0]?.runDir;
  if (!runDir && !datasetRoot) {
    await services.datasets.whenReady();
    runDir = (await pickRun(services.datasets.allRuns, 'Open Training Panel'))?.runDir;
    if (!runDir) {
      if (services.datasets.allRuns.length === 0)
        void services.notices.info('No training runs yet: right-click a dataset folder and choose Train Image Classifier.');
      return;
    }
  }
  if (!runDir) {
    void services.notices.info(`${path.basename(datasetRoot ?? '')} has no training runs yet.`, 'Train Image Classifier').then((choice) => {
      if (choice) void vscode.commands.executeCommand('imageTrainer.trainClassifier', vscode.Uri.file(datasetRoot ?? ''));
    });
    return;
  }
  await panel.showRunFolder(runDir);
}

/** The run folder a command was invoked on (tree node, run handle, Uri, path), or one the user picks among ended runs. */
export async function runDirFrom(services: CommandServices, arg: unknown, title: string): Promise<string | undefined> {
  if (isNode(arg) && arg.kind === 'run') return arg.run.runDir;
  if (isNode(arg)) return services.datasets.runsOf(arg.dataset.root)[0]?.runDir;
  if (isRunHandle(arg)) return arg.runDir;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (typeof arg === 'string') return arg;
  await services.datasets.whenReady();
  const runs = services.datasets.allRuns.filter((r) => r.status.state !== 'running');
  if (runs.length === 0) {
    void services.notices.info('No finished training runs yet.');
    return undefined;
  }
  return (await pickRun(runs, title))?.runDir;
}

/** Open Run Report: the run's report.md in the Markdown preview; returns its Uri. */
export async function openRunReport(services: CommandServices, arg?: unknown): Promise<vscode.Uri | undefined> {
  const runDir = await runDirFrom(services, arg, 'Open Run Report');
  if (!runDir) return undefined;
  const report = vscode.Uri.file(path.join(runDir, RUN_FILES.report));
  try {
    await fs.access(report.fsPath);
  } catch {
    void services.notices.warn(`${path.basename(runDir)} has no report yet: the report is written when a run ends.`);
    return undefined;
  }
  await vscode.commands.executeCommand('markdown.showPreview', report);
  return report;
}

/** Compare with…: a run (tree item, folder, or one the user picks) compared with another run of its dataset, in its panel. */
export async function compareRuns(services: CommandServices, arg?: unknown): Promise<void> {
  const runDir = await runDirFrom(services, arg, 'Compare Runs');
  if (runDir) await services.panel().compareWith(runDir);
}

/** Reveal in Explorer for a tree node (dataset, class or run folder). */
export async function revealInExplorer(arg?: unknown): Promise<void> {
  if (!isNode(arg)) return;
  const target = arg.kind === 'class' ? arg.cls.folders[0] : arg.kind === 'run' ? arg.run.runDir : arg.dataset.root;
  await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(target));
}

/** Tells the user how a run ended, with the next useful action. */
export function announceRunEnd(run: TrainingRun, services: CommandServices): void {
  // A dataset check announces itself (src/extension/doctorCommands.ts).
  if (run.kind === 'doctor') return;
  const finished = [...run.history].reverse().find((n) => n.type === 'finished');
  if (run.state === 'finished' && finished?.type === 'finished') {
    const acc = (finished.summary.valAccuracy * 100).toFixed(1);
    void services.notices
      .info(
        `Training on ${run.datasetName} finished: validation accuracy ${acc}% (best epoch ${finished.summary.bestEpoch}).`,
        'Open Panel',
        'Open Report',
      )
      .then((choice) => {
        if (choice === 'Open Panel') services.panel().showLive(run);
        if (choice === 'Open Report') void openRunReport(services, run.runDir);
      });
  } else if (run.state === 'cancelled') {
    void services.notices
      .info(`Training on ${run.datasetName} was cancelled; the best checkpoint so far is kept.`, 'Open Panel')
      .then((choice) => {
        if (choice) services.panel().showLive(run);
      });
  } else if (run.state === 'failed') {
    const notice = failureNotice(
      run.failureKind ?? 'internal',
      run.datasetName,
      run.failureMessage ?? 'unknown error',
      run.runDir !== undefined,
    );
    if (!notice) return;
    void services.notices.error(notice.message, ...notice.actions).then((choice) => {
      if (choice && choice !== 'Show Log') void runFailureAction(choice, run, services);
    });
  }
}

/** The first of `names` that exists in `dir`. */
async function firstExisting(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const file = path.join(dir, name);
    const exists = await fs.access(file).then(
      () => true,
      () => false,
    );
    if (exists) return file;
  }
  return undefined;
}

/** Opens a run-folder file: Markdown in the preview, anything else in an editor. */
async function openRunFile(file: string): Promise<void> {
  const uri = vscode.Uri.file(file);
  if (file.endsWith('.md')) await vscode.commands.executeCommand('markdown.showPreview', uri);
  else await vscode.window.showTextDocument(uri, { preview: true });
}

/** Does what the user chose on a failure notification. */
async function runFailureAction(action: FailureAction, run: TrainingRun, services: CommandServices): Promise<void> {
  const runDir = run.runDir;
  switch (action) {
    case 'Open Dataset Report': {
      // A scan that refused the dataset leaves no report, but its log says what it found.
      const file = runDir && (await firstExisting(runDir, [RUN_FILES.datasetReport, RUN_FILES.report, RUN_FILES.log]));
      if (file) await openRunFile(file);
      else void services.notices.warn(`The run folder of ${run.datasetName} has no dataset report.`);
      return;
    }
    case 'Open Log': {
      const file = runDir && (await firstExisting(runDir, [RUN_FILES.log]));
      if (file) await openRunFile(file);
      else services.log.show(true);
      return;
    }
    case 'Open Settings':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'imageTrainer');
      return;
    case 'Retry':
      // The same dataset with the same options, even if the settings changed since.
      await trainClassifier(services, run.datasetRoot, run.options);
      return;
    case 'Show Diagnostics':
      await vscode.commands.executeCommand('imageTrainer.showBackendDiagnostics');
      return;
    case 'Reveal Folder':
      if (runDir) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(runDir));
      return;
    case 'Open Panel':
      services.panel().showLive(run);
      return;
    default: {
      const unreachable: never = action;
      void unreachable;
    }
  }
}
