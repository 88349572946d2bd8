// Entry point of the extension host side: registers the commands, the "Image Datasets" view,
// progress reporting and the panel; deactivation stops every training process.
import * as vscode from 'vscode';
import { showBackendDiagnostics } from './backendDiagnostics';
import { classifyImage } from './classifyImage';
import type { ClassifyOptions } from './classifyImage';
import { SettingsProblemReporter, storageLocations, type StorageLocations } from './configuration';
import { exportOnnx, installNativeBackend } from './modelCommands';
import { bundleRunner, HeatmapService } from './panelHeatmaps';
import { DatasetTreeProvider } from './datasetTree';
import { openWalkthroughOnFirstRun, resumePendingSample, trySampleDataset } from './firstRun';
import { announceRunEnd, cancelTraining, openPanel, openRunReport, revealInExplorer, trainClassifier } from './trainingCommands';
import type { CommandServices } from './trainingCommands';
import { TrainingPanelManager } from './trainingPanel';
import { TrainingProcessManager } from './trainingProcess';
import { TrainingProgressReporter } from './trainingProgress';
import { UserNotices } from './userNotices';

/** What `activate` returns: the extension's parts, for its integration tests. */
export interface ImageTrainerApi {
  manager: TrainingProcessManager;
  datasets: DatasetTreeProvider;
  notices: UserNotices;
  log: vscode.OutputChannel;
  bundlePath: string;
  /** Folders in the extension's global storage (downloaded models, native backends). */
  storage: StorageLocations;
  /** Whether the Image Datasets view is shown, read-only: the view itself stays the extension's. */
  readonly datasetsView: Pick<vscode.TreeView<unknown>, 'visible' | 'onDidChangeVisibility'>;
}

let manager: TrainingProcessManager | undefined;

/** Called by VS Code on the first command or when the Image Datasets view opens. */
export function activate(context: vscode.ExtensionContext): ImageTrainerApi {
  const log = vscode.window.createOutputChannel('Image Trainer');
  const bundlePath = vscode.Uri.joinPath(context.extensionUri, 'dist', 'training.js').fsPath;
  const processes = new TrainingProcessManager(bundlePath, log);
  manager = processes;
  const notices = new UserNotices(log);
  const settings = new SettingsProblemReporter(log);
  const datasets = new DatasetTreeProvider(log, processes);
  const treeView = vscode.window.createTreeView('imageTrainer.datasets', { treeDataProvider: datasets, showCollapseAll: true });
  const progress = new TrainingProgressReporter(processes);
  const storage = storageLocations(context);
  const panel = new TrainingPanelManager(context, {
    log,
    // `services` is defined below; the panel calls this only later, on a click.
    retrain: (datasetRoot, model) => void trainClassifier(services, datasetRoot, model ? { model } : undefined),
    knownDatasetRoots: async () => {
      await datasets.whenReady();
      return datasets.datasets.map((d) => d.root);
    },
    heatmaps: new HeatmapService(bundleRunner(bundlePath, storage.nativeBackendsDir), (line) => log.appendLine(line)),
  });
  const services: CommandServices = { log, manager: processes, datasets, panel: () => panel, settings, notices, storage };

  context.subscriptions.push(
    log,
    notices,
    settings,
    datasets,
    treeView,
    progress,
    panel,
    processes,
    processes.onDidEndRun((run) => announceRunEnd(run, services)),
    vscode.commands.registerCommand('imageTrainer.trainClassifier', (arg?: unknown) => trainClassifier(services, arg)),
    vscode.commands.registerCommand('imageTrainer.cancelTraining', (arg?: unknown) => cancelTraining(services, arg)),
    vscode.commands.registerCommand('imageTrainer.openPanel', (arg?: unknown) => openPanel(services, arg)),
    vscode.commands.registerCommand('imageTrainer.openRunReport', (arg?: unknown) => openRunReport(services, arg)),
    vscode.commands.registerCommand('imageTrainer.revealInExplorer', (arg?: unknown) => revealInExplorer(arg)),
    vscode.commands.registerCommand('imageTrainer.refreshDatasets', () => datasets.refresh()),
    vscode.commands.registerCommand('imageTrainer.showBackendDiagnostics', () =>
      showBackendDiagnostics(context, bundlePath, log, notices, storage),
    ),
    vscode.commands.registerCommand('imageTrainer.installGpuBackend', () => installNativeBackend(services, bundlePath)),
    vscode.commands.registerCommand('imageTrainer.trySample', (target?: unknown) => trySampleDataset(context, services, target)),
    vscode.commands.registerCommand('imageTrainer.exportOnnx', (arg?: unknown) => exportOnnx(services, bundlePath, arg)),
    // The explorer passes (uri, selectedUris); a third argument lets tests and other commands pick the run.
    vscode.commands.registerCommand('imageTrainer.classifyImage', (arg?: unknown, _selected?: unknown, options?: ClassifyOptions) =>
      classifyImage(services, bundlePath, arg, options),
    ),
  );
  settings.check();
  void openWalkthroughOnFirstRun(context)
    .then(() => resumePendingSample(context, services))
    .catch((err: unknown) => log.appendLine(`First run: ${err instanceof Error ? err.message : String(err)}`));
  const datasetsView = {
    get visible() {
      return treeView.visible;
    },
    onDidChangeVisibility: treeView.onDidChangeVisibility,
  };
  return { manager: processes, datasets, notices, log, bundlePath, storage, datasetsView };
}

/** Stops every training process; VS Code waits for the returned promise. */
export function deactivate(): Promise<void> | undefined {
  const stopping = manager?.stopAll();
  manager = undefined;
  return stopping;
}
