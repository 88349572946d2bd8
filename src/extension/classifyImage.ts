// Classify Image: the top 3 classes for one image, with the latest finished model of its dataset
// or a run the user picks, and beside them the image with the heatmap of what the model looked at;
// both run in the training bundle (`predict --json`, `explain --out`). An image unlike every class
// reads "unknown — unlike every class (novelty x, threshold y)" before its closest classes.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { classifySummary, unknownThresholdOf } from './classifySummary';
import { bundleRunner, HeatmapService } from './panelHeatmaps';
import { latestFinishedRun, runsWithModel } from './runIndex';
import { parsePredictOutput, runTrainingCli } from './trainingCli';
import type { PredictionLine } from './trainingCli';
import { pickRun } from './trainingCommands';
import type { CommandServices } from './trainingCommands';

export interface ClassifyResult {
  image: string;
  runDir: string;
  prediction: PredictionLine;
  /** The image with the predicted class's heatmap blended over it (PNG), when it could be drawn. */
  heatmap?: string;
  /** The message shown: the top 3, led by "unknown — unlike every class (…)" when the image is flagged. */
  summary: string;
}

export interface ClassifyOptions {
  /** Use this run instead of the latest of the image's dataset. */
  runDir?: string;
  /** Ask for the run even when the dataset has one. */
  chooseRun?: boolean;
}

const IMAGE_FILTER = { Images: ['jpg', 'jpeg', 'jpe', 'jfif', 'png', 'webp', 'gif', 'tif', 'tiff'] };

/** Classifies `arg` (an image Uri from the explorer, or one the user picks) and shows the top 3. */
export async function classifyImage(
  services: CommandServices,
  bundlePath: string,
  arg?: unknown,
  options: ClassifyOptions = {},
): Promise<ClassifyResult | undefined> {
  let image = arg instanceof vscode.Uri ? arg.fsPath : typeof arg === 'string' ? arg : undefined;
  if (!image) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFiles: true,
      canSelectMany: false,
      filters: IMAGE_FILTER,
      openLabel: 'Classify',
    });
    image = picked?.[0]?.fsPath;
    if (!image) return undefined;
  }
  await services.datasets.whenReady();
  // A run may have just finished: read the run folders now rather than trust the last refresh.
  await services.datasets.refreshRuns(false);
  // An interrupted or cancelled run's checkpoint classifies too; predict checks its folder first.
  const finished = runsWithModel(services.datasets.allRuns);
  let runDir = options.runDir;
  if (!runDir) {
    const dataset = services.datasets.datasetContaining(image);
    const own = dataset ? latestFinishedRun(services.datasets.runsOf(dataset.root)) : undefined;
    if (own && !options.chooseRun) runDir = own.runDir;
    else if (finished.length > 0)
      runDir = (
        await pickRun(finished, 'Classify Image', dataset ? `No model of ${dataset.name} yet: choose a run` : 'Model to classify with')
      )?.runDir;
    else {
      void services.notices.warn(
        'No trained model yet: train a classifier on a dataset first (right-click its folder → Train Image Classifier).',
      );
      return undefined;
    }
    if (!runDir) return undefined;
  }
  const name = path.basename(image);
  const heatmaps = new HeatmapService(bundleRunner(bundlePath, services.storage.nativeBackendsDir), (line) =>
    services.log.appendLine(line),
  );
  const [result, heatmap, threshold] = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Classifying ${name}…` },
    () =>
      Promise.all([
        runTrainingCli(bundlePath, ['predict', runDir, image, '--json', '--native-dir', services.storage.nativeBackendsDir], {
          timeoutMs: 120_000,
        }),
        heatmaps.drawOverlay(runDir, image),
        unknownThresholdOf(runDir),
      ]),
  );
  const [prediction] = parsePredictOutput(result.stdout);
  if (result.code !== 0 || !prediction) {
    services.log.appendLine(
      `[classify] predict ${runDir} ${image} → ${result.signal ?? `code ${result.code}`}\n${result.stdout}${result.stderr}`,
    );
    const why = result.stderr.trim().split(/\r?\n/).pop() || 'no prediction was printed';
    void services.notices.error(`Could not classify ${name}: ${why}`);
    return undefined;
  }
  const summary = classifySummary(name, prediction, path.basename(runDir), threshold);
  services.log.appendLine(
    `[classify] ${image}: ${JSON.stringify(prediction.top)}${prediction.unknown ? ` unknown (novelty ${prediction.novelty})` : ''} with ${runDir}`,
  );
  if (heatmap) {
    await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(heatmap), {
      viewColumn: vscode.ViewColumn.Beside,
      preserveFocus: true,
      preview: true,
    });
  }
  void services.notices.info(summary, 'Choose Another Run').then(async (choice) => {
    if (choice) await classifyImage(services, bundlePath, image, { chooseRun: true });
  });
  return { image, runDir, prediction, heatmap, summary };
}
