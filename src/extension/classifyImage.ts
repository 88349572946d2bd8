// Classify Image: the top 3 classes for one image, with the latest finished model of its dataset
// or a run the user picks, and beside them the image with the heatmap of what the model looked at;
// both run in the training bundle (`predict --json`, `explain --out`).
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
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
  /** The image with the predicted class's heatmap blended over it (PNG), when it could be drawn. */
  heatmap?: string;
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
  const heatmapFile = heatmapPath(runDir, image);
  const [result, heatmap] = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Classifying ${name}…` },
    () =>
      Promise.all([
        runTrainingCli(bundlePath, ['predict', runDir, image, '--json', '--native-dir', services.storage.nativeBackendsDir], {
          timeoutMs: 120_000,
        }),
        drawHeatmap(services, bundlePath, runDir, image, heatmapFile),
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
  const summary = `${name}: ${formatTop(prediction)} (model ${path.basename(runDir)})`;
  services.log.appendLine(`[classify] ${image}: ${JSON.stringify(prediction.top)} with ${runDir}`);
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
  return { image, runDir, prediction, heatmap };
}

/** Where the heatmap of `image` by the model of `runDir` is drawn: a temporary file named after both, replaced on each classification. */
function heatmapPath(runDir: string, image: string): string {
  const key = createHash('sha256').update(`${runDir}\0${image}`).digest('hex').slice(0, 12);
  const stem = path
    .basename(image, path.extname(image))
    .replace(/[^\w.-]+/g, '_')
    .slice(0, 60);
  return path.join(os.tmpdir(), 'image-trainer-heatmaps', `${stem}-${key}.png`);
}

/**
 * Draws the heatmap of the predicted class over `image` into `file` with `explain --out`; the path,
 * or undefined (logged) when it could not be drawn: the classification stands without it.
 */
async function drawHeatmap(
  services: CommandServices,
  bundlePath: string,
  runDir: string,
  image: string,
  file: string,
): Promise<string | undefined> {
  try {
    await fs.promises.mkdir(path.dirname(file), { recursive: true });
    const result = await runTrainingCli(
      bundlePath,
      ['explain', runDir, image, '--out', file, '--native-dir', services.storage.nativeBackendsDir],
      { timeoutMs: 120_000 },
    );
    if (result.code === 0 && fs.existsSync(file)) return file;
    services.log.appendLine(`[classify] explain ${runDir} ${image} → ${result.signal ?? `code ${result.code}`}\n${result.stderr}`);
  } catch (err) {
    services.log.appendLine(`[classify] explain ${runDir} ${image} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  return undefined;
}
