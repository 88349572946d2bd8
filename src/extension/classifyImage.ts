// Classify Image: the top 3 classes for one image, with the latest finished model of its dataset
// or a run the user picks; the prediction runs in the training bundle (`predict --json`).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { latestFinishedRun, runsWithModel } from './runIndex';
import { parsePredictOutput, runTrainingCli } from './trainingCli';
import type { PredictionLine } from './trainingCli';
import { pickRun } from './trainingCommands';
import type { CommandServices } from './trainingCommands';

export interface ClassifyResult {
  image: string;
  runDir: string;
  prediction: PredictionLine;
}

export interface ClassifyOptions {
  /** Use this run instead of the latest of the image's dataset. */
  runDir?: string;
  /** Ask for the run even when the dataset has one. */
  chooseRun?: boolean;
}

const IMAGE_FILTER = { Images: ['jpg', 'jpeg', 'jpe', 'jfif', 'png', 'webp', 'gif', 'tif', 'tiff'] };

/** One line like `scab 91.2% · healthy 6.0% · black_rot 2.1%`. */
export function formatTop(prediction: PredictionLine): string {
  const top = prediction.top.length > 0 ? prediction.top : [{ label: prediction.label, confidence: prediction.confidence }];
  return top
    .slice(0, 3)
    .map((t) => `${t.label} ${(t.confidence * 100).toFixed(1)}%`)
    .join(' · ');
}

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
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Classifying ${name}…` }, () =>
    runTrainingCli(bundlePath, ['predict', runDir, image, '--json', '--native-dir', services.storage.nativeBackendsDir], {
      timeoutMs: 120_000,
    }),
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
  const summary = `${name}: ${formatTop(prediction)} (model ${path.basename(runDir)})`;
  services.log.appendLine(`[classify] ${image}: ${JSON.stringify(prediction.top)} with ${runDir}`);
  void services.notices.info(summary, 'Choose Another Run').then(async (choice) => {
    if (choice) await classifyImage(services, bundlePath, image, { chooseRun: true });
  });
  return { image, runDir, prediction };
}
