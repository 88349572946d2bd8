// The command-line tool: `image-trainer train | doctor | predict | explain | runs | compare | diagnose | install-backend | export-onnx`.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import {
  BACKEND_PREFERENCES,
  DEFAULT_TRAIN_OPTIONS,
  RECIPE_NAMES,
  type BackendPreference,
  type RecipeName,
  type RunSummary,
  type TrainOptions,
} from '../shared/types';
import type { TrainingNotification } from '../shared/protocol/training';
import { diagnoseBackends, initBackend } from './backend/backend';
import { formatConfusionMatrix } from './fit/evaluation';
import { exportClassifierToOnnx } from './onnx/onnxExport';
import { chooseHeadRuntime } from './onnx/onnxHead';
import { probeOnnxRuntime } from './onnx/onnxFeatures';
import { installNativeBackend, nativeModuleSearchPaths } from './backend/nativeBackendInstall';
import { RUN_FILES } from '../shared/runFolder';
import { MODEL_REGISTRY } from './models/modelRegistry';
import { explainRunImage, explainRunImages, explanationJson } from './explain/explainRun';
import { MAX_HEATMAP_SIDE, type Explanation } from './explain/gradCam';
import type { Tf } from './util/tf';
import { listImageFiles, openRunClassifier, predictImages, RunFolderProblem, type RunClassifier } from './models/predict';
import { listRunFolders, readComparableRun, type ComparableRun, type RunListing } from './run/runFolderReader';
import { compareRuns } from './compare/compareRuns';
import { comparisonLines } from './compare/comparisonText';
import { defaultCacheDir, defaultRunsDir } from './run/runFolderWriter';
import { runTraining } from './run/runTraining';
import { doctorSummaryLine, MAX_DOCTOR_FOLDS, runDoctor } from './doctor/runDoctor';
import { DOCTOR_FILE, type DoctorReport } from '../shared/doctor';
import { formatStageTimes, STAGE_LABELS } from '../shared/stages';
import { failureLine, oneLine } from '../shared/failureLines';
import { VAL_SPLIT_RANGE } from '../shared/trainOptionRanges';
import { skippedLines } from '../shared/skipReasons';
import { errorKindOf, TrainerError } from './util/errors';

/** Exit code of a cancelled run, as `train` sets it and as a shell reports a process stopped by Ctrl-C. */
const CANCELLED_EXIT_CODE = 130;

/**
 * A refused option value. It is an `options` failure like any other, and it carries commander's
 * invalid-argument code so that commander still reports it with the option's name and usage.
 */
class InvalidOptionError extends TrainerError {
  readonly code = 'commander.invalidArgument';
  readonly exitCode = 1;

  constructor(message: string) {
    super('options', message);
  }
}

function intOption(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidOptionError(`expected an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

function floatOption(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidOptionError(`expected a number in [${min}, ${max}], got "${value}"`);
    return n;
  };
}

/** Minutes in a duration like `90s`, `20m`, `1.5h` or a bare number of minutes; undefined when it is not one (or not positive). */
export function parseDurationMinutes(value: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? 'm').toLowerCase();
  const minutes = unit.startsWith('s') ? n / 60 : unit === 'h' ? n * 60 : n;
  return minutes > 0 ? minutes : undefined;
}

function durationOption(value: string): number {
  const minutes = parseDurationMinutes(value);
  if (minutes === undefined) throw new InvalidOptionError(`expected a duration such as 90s, 20m or 1.5h, got "${value}"`);
  return minutes;
}

function backendOption(value: string): BackendPreference {
  if (!(BACKEND_PREFERENCES as readonly string[]).includes(value)) {
    throw new InvalidOptionError(`expected one of ${BACKEND_PREFERENCES.join(', ')}`);
  }
  return value as BackendPreference;
}

function recipeOption(value: string): RecipeName {
  if (!(RECIPE_NAMES as readonly string[]).includes(value)) throw new InvalidOptionError(`expected one of ${RECIPE_NAMES.join(', ')}`);
  return value as RecipeName;
}

function modelOption(value: string): string {
  if (!MODEL_REGISTRY.some((m) => m.id === value) && !/[\\/]/.test(value)) {
    throw new InvalidOptionError(
      `unknown model; known: ${MODEL_REGISTRY.map((m) => m.id).join(', ')}, or a folder path (./my-model) holding a LayersModel and its descriptor`,
    );
  }
  return value;
}

const fmtEta = (s: number | undefined) =>
  s === undefined || !Number.isFinite(s)
    ? '--'
    : s >= 60
      ? `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`
      : `${Math.round(s)}s`;

/** Prints progress bars and epoch lines for a run in a terminal (plain lines when not a TTY). */
function terminalReporter(quiet: boolean): { notify(n: TrainingNotification): void; stop(): void } {
  const tty = Boolean(process.stderr.isTTY);
  const bar = new cliProgress.SingleBar(
    { format: '{stage} |{bar}| {value}/{total} {extra}', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let barStage: string | undefined;
  const stopBar = () => {
    if (barStage !== undefined) bar.stop();
    barStage = undefined;
  };
  const out = (line: string) => {
    stopBar();
    console.error(line);
  };
  return {
    notify(n) {
      switch (n.type) {
        case 'started':
          out(`Dataset ${n.dataset.name}: ${n.dataset.classes.map((c) => `${c.name} ${c.train}+${c.val}`).join(', ')} (train+val)`);
          for (const line of skippedLines(n.dataset.skipped, n.dataset.skippedUnlisted)) out(line);
          for (const w of n.dataset.warnings) out(`Warning: ${w}`);
          out(`Backend: ${n.backend.summary}`);
          if (n.backend.featureRuntime) out(`Features: ${n.backend.featureRuntime}`);
          if (n.backend.headRuntime) out(`Head: ${n.backend.headRuntime}`);
          out(`Base model: ${n.model.name}; run folder ${n.runDir}`);
          break;
        case 'progress': {
          if (quiet || !tty) return;
          const p = n.progress;
          const name = STAGE_LABELS[p.stage] + (p.epoch ? ` ${p.epoch}/${p.epochs}` : '');
          const extra =
            p.stage === 'download'
              ? `${(p.done / 1e6).toFixed(1)} of ${(p.total / 1e6).toFixed(1)} MB (${Math.floor((100 * p.done) / Math.max(1, p.total))}%)`
              : [p.imagesPerSec ? `${p.imagesPerSec.toFixed(1)} img/s` : '', p.etaSec !== undefined ? `ETA ${fmtEta(p.etaSec)}` : ''].join(
                  ' ',
                );
          if (barStage !== p.stage) {
            stopBar();
            bar.start(Math.max(1, p.total), p.done, { stage: name, extra });
            barStage = p.stage;
          } else {
            bar.setTotal(Math.max(1, p.total));
            bar.update(p.done, { stage: name, extra });
          }
          break;
        }
        case 'epochEnd': {
          const m = n.metrics;
          out(
            `${m.stage === 'fine-tune' ? 'fine-tune ' : ''}epoch ${m.epoch}: loss ${m.loss.toFixed(4)} acc ${(100 * m.acc).toFixed(1)}% | val loss ${m.valLoss.toFixed(4)} val acc ${(100 * m.valAcc).toFixed(1)}% | lr ${m.lr.toExponential(1)} | ${(m.durationMs / 1000).toFixed(1)} s`,
          );
          break;
        }
        case 'evaluation':
          out('');
          out(formatConfusionMatrix(n.evaluation));
          break;
        case 'log':
          if (n.level !== 'info') out(`${n.level}: ${n.message}`);
          break;
        case 'finished':
        case 'failed':
          break;
      }
    },
    stop: stopBar,
  };
}

function nativePaths(dir: string | undefined): string[] | undefined {
  return dir ? nativeModuleSearchPaths(path.resolve(dir)) : undefined;
}

/** The version in the package.json of the extension or CLI package that holds this bundle. */
function packageVersion(extensionRoot: string): string {
  try {
    return String((JSON.parse(fs.readFileSync(path.join(extensionRoot, 'package.json'), 'utf8')) as { version?: unknown }).version);
  } catch {
    // --version must not break every other command: a missing manifest only loses the number.
    return 'unknown';
  }
}

/** Builds the commander program; exported for tests. */
export function buildProgram(extensionRoot: string): Command {
  const program = new Command('image-trainer')
    .description('Train an image classifier by transfer learning from a folder of class subfolders.')
    .version(packageVersion(extensionRoot), '-V, --version', 'print the version')
    .showSuggestionAfterError();
  addTrainCommand(program, extensionRoot);
  addDoctorCommand(program, extensionRoot);
  addPredictCommand(program);
  addExplainCommand(program);
  addRunsCommand(program);
  addCompareCommand(program);
  addDiagnoseCommand(program);
  addInstallBackendCommand(program);
  addExportOnnxCommand(program);
  return program;
}

/** The options `train` and `doctor` share: backend, base model, and the folders they read and write. */
function withRunOptions(command: Command): Command {
  return command
    .option('--backend <name>', `backend: ${BACKEND_PREFERENCES.join(', ')}`, backendOption, DEFAULT_TRAIN_OPTIONS.backend)
    .option(
      '--model <id-or-folder>',
      'base model id, or the folder of your own TF.js LayersModel',
      modelOption,
      DEFAULT_TRAIN_OPTIONS.model,
    )
    .option('--out <dir>', 'runs folder (default: .image-trainer/runs under the current folder)')
    .option('--cache <dir>', 'feature cache folder (default: .image-trainer/cache under the current folder)')
    .option('--native-dir <dir>', 'folder where `install-backend` put the native tfjs backends')
    .option('--model-cache <dir>', 'folder for downloaded base models (default: the feature cache folder)');
}

/** The `train` command. */
function addTrainCommand(program: Command, extensionRoot: string): void {
  const command = program
    .command('train')
    .description('train a classifier on <folder> (one subfolder per class, or train/ and val/ subfolders)')
    .argument('<folder>', 'dataset folder')
    .option('--epochs <n>', 'maximum epochs of the head', intOption(1), DEFAULT_TRAIN_OPTIONS.epochs)
    .option('--batch-size <n>', 'batch size', intOption(1), DEFAULT_TRAIN_OPTIONS.batchSize)
    .option('--learning-rate <x>', 'Adam learning rate of the head', floatOption(1e-7, 1), DEFAULT_TRAIN_OPTIONS.learningRate)
    .option(
      '--val-split <f>',
      'validation fraction per class',
      floatOption(VAL_SPLIT_RANGE.min, VAL_SPLIT_RANGE.max),
      DEFAULT_TRAIN_OPTIONS.valSplit,
    )
    .option('--seed <n>', 'seed of the split, shuffling and initialisation', intOption(0), DEFAULT_TRAIN_OPTIONS.seed)
    .option('--hidden-units <n>', 'units of the hidden dense layer', intOption(1), DEFAULT_TRAIN_OPTIONS.hiddenUnits)
    .option('--dropout <f>', 'dropout rate of the head', floatOption(0, 0.95), DEFAULT_TRAIN_OPTIONS.dropout)
    .option('--class-weights', 'weight classes inversely to their frequency', DEFAULT_TRAIN_OPTIONS.classWeights)
    .option('--patience <n>', 'early stopping patience in epochs (0 = off)', intOption(0), DEFAULT_TRAIN_OPTIONS.patience)
    .option(
      '--fine-tune-layers <n>',
      'unfreeze about this many top layers of the base (0 = no fine-tuning)',
      intOption(0),
      DEFAULT_TRAIN_OPTIONS.fineTuneLayers,
    )
    .option('--fine-tune-epochs <n>', 'epochs of fine-tuning', intOption(1), DEFAULT_TRAIN_OPTIONS.fineTuneEpochs)
    .option(
      '--fine-tune-learning-rate <x>',
      'Adam learning rate of fine-tuning (the head and the top layer; lower layers get down to a tenth of it)',
      floatOption(1e-10, 0.1),
      DEFAULT_TRAIN_OPTIONS.fineTuneLearningRate,
    )
    .option(
      '--recipe <name>',
      `views trained on and averaged at prediction: ${RECIPE_NAMES.join(', ')} (auto: chosen by cross-validation on the training images)`,
      recipeOption,
      DEFAULT_TRAIN_OPTIONS.recipe,
    )
    .option(
      '--refit',
      'after choosing recipe and epochs, train the final model on training + validation images',
      DEFAULT_TRAIN_OPTIONS.refit,
    );
  withRunOptions(command)
    .option(
      '--time-limit <duration>',
      'stop training after the epoch in which this much time has passed, keeping the best checkpoint (e.g. 90s, 20m, 1.5h; a bare number is minutes)',
      durationOption,
    )
    .option('--follow-external-links', 'follow symlinks that lead out of the dataset folder (by default they are skipped and reported)')
    .option('--quiet', 'no progress bars')
    .action((folder: string, o: Record<string, unknown>) => train(folder, o, extensionRoot));
}

/** The folders a `train` or `doctor` run reads and writes, from its folder argument and the shared options (`withRunOptions`). */
function runFoldersOf(folder: string, o: Record<string, unknown>, extensionRoot: string) {
  const datasetRoot = path.resolve(folder);
  return {
    datasetRoot,
    runsDir: o.out ? path.resolve(o.out as string) : defaultRunsDir(process.cwd(), datasetRoot),
    cacheDir: o.cache ? path.resolve(o.cache as string) : defaultCacheDir(process.cwd(), datasetRoot),
    extensionRoot,
    modelCacheDir: o.modelCache ? path.resolve(o.modelCache as string) : undefined,
    nativeModulePaths: nativePaths(o.nativeDir as string | undefined),
  };
}

/** `train`: runs one training in this process, Ctrl-C cancelling after the current batch (twice: at once). */
async function train(folder: string, o: Record<string, unknown>, extensionRoot: string): Promise<void> {
  const options = trainOptionsOf(o);
  const folders = runFoldersOf(folder, o, extensionRoot);
  const { runsDir } = folders;
  const cancel = new AbortController();
  const onSigint = () => {
    if (cancel.signal.aborted) {
      // The run folder keeps its last committed checkpoint; readers see the dead process.
      console.error(
        `\nStopped at once. The run is listed as interrupted by \`image-trainer runs ${runsDir}\`; its last checkpoint, if any, is kept.`,
      );
      process.exit(CANCELLED_EXIT_CODE);
    }
    cancel.abort();
    console.error('\nCancelling after the current batch (Ctrl-C again to quit now)…');
  };
  process.on('SIGINT', onSigint);
  const reporter = terminalReporter(Boolean(o.quiet));
  try {
    const summary = await runTraining({ ...folders, options }, reporter.notify, cancel.signal);
    reporter.stop();
    if (summary.cancelled) {
      console.error(
        `Cancelled. ${summary.bestEpoch ? `Best checkpoint (epoch ${summary.bestEpoch}) kept in ${summary.runDir}` : 'No checkpoint was saved.'}`,
      );
      process.exitCode = CANCELLED_EXIT_CODE;
      return;
    }
    printSummary(summary);
  } finally {
    // A failure is printed after this: it must not share a line with a progress bar.
    reporter.stop();
    process.off('SIGINT', onSigint);
  }
}

/** The engine options from the `train` command's parsed options. */
function trainOptionsOf(o: Record<string, unknown>): TrainOptions {
  return {
    ...DEFAULT_TRAIN_OPTIONS,
    epochs: o.epochs as number,
    batchSize: o.batchSize as number,
    learningRate: o.learningRate as number,
    valSplit: o.valSplit as number,
    seed: o.seed as number,
    hiddenUnits: o.hiddenUnits as number,
    dropout: o.dropout as number,
    classWeights: Boolean(o.classWeights),
    patience: o.patience as number,
    fineTuneLayers: o.fineTuneLayers as number,
    fineTuneEpochs: o.fineTuneEpochs as number,
    fineTuneLearningRate: o.fineTuneLearningRate as number,
    backend: o.backend as BackendPreference,
    model: o.model as string,
    timeLimitMinutes: (o.timeLimit as number | undefined) ?? DEFAULT_TRAIN_OPTIONS.timeLimitMinutes,
    followExternalLinks: Boolean(o.followExternalLinks),
    recipe: o.recipe as RecipeName,
    refit: Boolean(o.refit),
  };
}

/** What a finished run prints: accuracy, cache use, where the time went, the run folder. */
function printSummary(summary: RunSummary): void {
  console.log(`Validation accuracy: ${(100 * summary.valAccuracy).toFixed(1)}% (best epoch ${summary.bestEpoch} of ${summary.epochsRun})`);
  const speed = summary.cache.misses > 0 ? `, ${summary.featuresPerSec.toFixed(1)} images/s` : ' (all from the cache)';
  console.log(
    `Features: ${summary.cache.hits} cache hits, ${summary.cache.misses} misses${speed}; wall time ${(summary.wallMs / 1000).toFixed(1)} s`,
  );
  if (summary.stageMs) console.log(`Time: ${formatStageTimes(summary.stageMs)}`);
  console.log(`Run folder: ${summary.runDir}`);
}

/** The `doctor` command. */
function addDoctorCommand(program: Command, extensionRoot: string): void {
  const command = program
    .command('doctor')
    .description('check <folder> for likely label errors, near-duplicates, outliers, weak images and shortcuts (reads only)')
    .argument('<folder>', 'dataset folder')
    .option('--json', 'print the report as one JSON object on stdout')
    .option('--folds <k>', `cross-validation folds (2–${MAX_DOCTOR_FOLDS})`, intOption(2), 5)
    .option('--seed <n>', 'seed of the folds, the split and the heads', intOption(0), DEFAULT_TRAIN_OPTIONS.seed)
    .option(
      '--val-split <f>',
      'validation fraction per class (to tell which near-duplicates cross the split)',
      floatOption(VAL_SPLIT_RANGE.min, VAL_SPLIT_RANGE.max),
      DEFAULT_TRAIN_OPTIONS.valSplit,
    );
  withRunOptions(command)
    .option('--follow-external-links', 'follow symlinks that lead out of the dataset folder')
    .option('--quiet', 'no progress bars')
    .action((folder: string, o: Record<string, unknown>) => doctor(folder, o, extensionRoot));
}

/** `doctor`: runs the doctor in this process; the report goes to stdout (JSON or a summary), progress to stderr. */
async function doctor(folder: string, o: Record<string, unknown>, extensionRoot: string): Promise<void> {
  const options: TrainOptions = {
    ...DEFAULT_TRAIN_OPTIONS,
    seed: o.seed as number,
    valSplit: o.valSplit as number,
    backend: o.backend as BackendPreference,
    model: o.model as string,
    followExternalLinks: Boolean(o.followExternalLinks),
  };
  const cancel = new AbortController();
  const onSigint = () => cancel.abort();
  process.on('SIGINT', onSigint);
  const reporter = terminalReporter(Boolean(o.quiet));
  try {
    const { runDir, report } = await runDoctor(
      { ...runFoldersOf(folder, o, extensionRoot), options, folds: o.folds as number },
      reporter.notify,
      cancel.signal,
    );
    reporter.stop();
    if (o.json) console.log(JSON.stringify(report));
    else printDoctorReport(report, runDir);
  } finally {
    reporter.stop();
    process.off('SIGINT', onSigint);
  }
}

/** The doctor's human summary: counts, then the first few of each finding. */
function printDoctorReport(r: DoctorReport, runDir: string): void {
  const first = <T>(list: T[], line: (x: T) => string, n = 10) => {
    for (const x of list.slice(0, n)) console.log(`  ${line(x)}`);
    if (list.length > n) console.log(`  … and ${list.length - n} more`);
  };
  console.log(doctorSummaryLine(r));
  if (r.labelIssues.length) console.log('Likely label errors (score: 1 − probability of the given label):');
  first(r.labelIssues, (x) => `${x.path}: ${x.label} → ${x.suggested} (${x.score.toFixed(2)})`);
  if (r.nearDuplicates.length) console.log('Near-duplicates (smallest cosine similarity in the group):');
  first(
    r.nearDuplicates,
    (g) =>
      `${g.paths.join(' = ')} (${g.similarity.toFixed(3)}${g.crossesSplit ? ', across the split' : ''}${new Set(g.classes).size > 1 ? ', different classes' : ''})`,
  );
  if (r.outliers.length) console.log('Outliers (far from every other photo):');
  first(r.outliers, (x) => `${x.path} (${x.label}, ${x.score.toFixed(3)})`);
  if (r.weakImages.length) console.log('Weak images:');
  first(r.weakImages, (x) => `${x.path}: ${x.problem} (${x.value})`);
  for (const s of r.shortcuts) console.log(`Shortcut: ${s.detail}`);
  console.log(`Report: ${path.join(runDir, DOCTOR_FILE)}`);
}

/** The `predict` command. */
function addPredictCommand(program: Command): void {
  program
    .command('predict')
    .description('classify an image, or every image in a folder, with a trained run')
    .argument('<run-folder>', 'a run folder written by `train`')
    .argument('<image-or-folder>', 'an image file or a folder of images')
    .option('--json', 'one JSON object per image: {"path","label","confidence","top","novelty","unknown"}')
    .option('--backend <name>', `backend: ${BACKEND_PREFERENCES.join(', ')}`, backendOption, 'auto')
    .option('--native-dir <dir>', 'folder where `install-backend` put the native tfjs backends')
    .action(predict);
}

/** `predict`: checks the run folder first (a broken one fails in one line before any image is read), then classifies. */
async function predict(
  runDir: string,
  target: string,
  o: { json?: boolean; backend: BackendPreference; nativeDir?: string },
): Promise<void> {
  const { tf } = await initBackend({ preference: o.backend, nativeModulePaths: nativePaths(o.nativeDir) });
  const dir = path.resolve(runDir);
  let classifier: RunClassifier;
  try {
    classifier = await openRunClassifier(tf, dir);
  } catch (err) {
    if (!(err instanceof RunFolderProblem)) throw err;
    // Not a base model problem (the lead of a 'model' failure): the trained run's own files are.
    console.error(`Run folder problem: ${oneLine(err.message)} (run folder: ${dir})`);
    process.exitCode = 1;
    return;
  }
  const files = await listImageFiles(target).catch((err: unknown) => {
    classifier.model.dispose();
    throw err;
  });
  let failures = 0;
  for await (const r of predictImages(tf, classifier, files)) {
    if ('error' in r) {
      failures++;
      if (o.json) console.log(JSON.stringify({ path: r.path, error: r.error }));
      else console.error(`${r.path}: ${r.error}`);
    } else if (o.json) {
      console.log(JSON.stringify(r));
    } else {
      console.log(
        `${r.path}: ${r.label} ${(100 * r.confidence).toFixed(1)}% (${r.top.map((t) => `${t.label} ${(100 * t.confidence).toFixed(1)}%`).join(', ')})${r.unknown ? ` — unknown: unlike every class (novelty ${r.novelty?.toFixed(1)})` : ''}`,
      );
    }
  }
  if (failures === files.length && files.length > 0) process.exitCode = 1;
}

/** The `explain` command. */
function addExplainCommand(program: Command): void {
  program
    .command('explain')
    .description('show where in an image a trained run looked to classify it (Grad-CAM heatmap)')
    .argument('<run-folder>', 'a run folder written by `train`')
    .argument('<images...>', 'one or more image files (several: the model is loaded once for all)')
    .option('--class <name>', 'the class to explain (default: the predicted one)')
    .option('--out <file>', 'write the image with the heatmap blended over it (PNG; one image only)')
    .option('--json', 'print {"path","label","confidence","class","heatmap":{"width","height","values"}} per image')
    .option('--max-side <n>', `the longer side of the heatmap in values (default ${MAX_HEATMAP_SIDE})`, intOption(1))
    .option('--backend <name>', `backend: ${BACKEND_PREFERENCES.join(', ')}`, backendOption, 'auto')
    .option('--native-dir <dir>', 'folder where `install-backend` put the native tfjs backends')
    .action(explain);
}

type ExplainCliOptions = { class?: string; out?: string; json?: boolean; maxSide?: number; backend: BackendPreference; nativeDir?: string };

/** `explain`: one image (with `--out` if asked) or a batch, one line per image; an unreadable image of a batch is a line, not the end. */
async function explain(runDir: string, images: string[], o: ExplainCliOptions): Promise<void> {
  if (o.out && images.length > 1) {
    console.error(`--out draws one image; ${images.length} were given (leave out --out, or explain them one at a time)`);
    process.exitCode = 1;
    return;
  }
  const { tf } = await initBackend({ preference: o.backend, nativeModulePaths: nativePaths(o.nativeDir) });
  const dir = path.resolve(runDir);
  // A heatmap is a long line, and runCli exits as soon as this returns: wait until the pipe has it.
  const print = (line: string) => new Promise<void>((resolve) => process.stdout.write(`${line}\n`, () => resolve()));
  let failures = 0;
  try {
    const batch =
      images.length === 1 && o.out
        ? oneExplanation(tf, dir, images[0]!, o)
        : explainRunImages(tf, dir, images, { className: o.class, maxSide: o.maxSide });
    for await (const e of batch) {
      if ('error' in e) {
        failures++;
        if (o.json) await print(JSON.stringify({ path: e.path, error: e.error }));
        else console.error(`${e.path}: ${e.error}`);
      } else if (o.json) await print(explanationJson(e));
      else
        console.log(
          `${e.path}: ${e.label} ${(100 * e.confidence).toFixed(1)}%; heatmap of ${e.class}${o.out ? ` written to ${path.resolve(o.out)}` : ''}`,
        );
    }
  } catch (err) {
    if (!(err instanceof RunFolderProblem)) throw err;
    console.error(`Run folder problem: ${oneLine(err.message)} (run folder: ${dir})`);
    process.exitCode = 1;
    return;
  }
  if (failures > 0 && failures === images.length) process.exitCode = 1;
}

/** The single-image form with `--out`: a failure to read or draw it ends the command with its own message. */
async function* oneExplanation(tf: Tf, dir: string, image: string, o: ExplainCliOptions): AsyncGenerator<Explanation> {
  yield await explainRunImage(tf, dir, image, { className: o.class, out: o.out, maxSide: o.maxSide });
}

/** The `runs` command. */
function addRunsCommand(program: Command): void {
  program
    .command('runs')
    .description('list the runs in a runs folder with their state (a run whose process died reads as interrupted)')
    .argument('[runs-folder]', 'a runs folder (default: .image-trainer/runs under the current folder)')
    .option('--json', 'one JSON object per run: {"runDir","name","state","bestEpoch","valAccuracy","hasCheckpoint",…}')
    .action(async (runsFolder: string | undefined, o: { json?: boolean }) => {
      const runsDir = path.resolve(runsFolder ?? path.join('.image-trainer', 'runs'));
      const runs = await listRunFolders(runsDir);
      if (o.json) {
        for (const run of runs) console.log(JSON.stringify(runJson(run)));
        return;
      }
      if (runs.length === 0) console.error(`No runs in ${runsDir}`);
      for (const run of runs) console.log(runLine(run));
    });
}

/** A run as `runs --json` prints it: status.json as reconciled with the model folder. */
function runJson(run: RunListing): Record<string, unknown> {
  const s = run.status;
  return {
    runDir: run.runDir,
    name: run.name,
    state: run.state,
    datasetRoot: s.datasetRoot,
    startedAt: s.startedAt,
    hasCheckpoint: s.hasCheckpoint,
    bestEpoch: s.bestEpoch,
    valAccuracy: s.valAccuracy,
    message: s.message,
    correctedFromModel: run.correctedFromModel,
  };
}

/** `leaves-20250101-120000  interrupted  best epoch 2, val 87.5%  (checkpoint kept)`. */
function runLine(run: RunListing): string {
  const s = run.status;
  const figures =
    s.hasCheckpoint && s.bestEpoch !== undefined
      ? `best epoch ${s.bestEpoch}${s.valAccuracy !== undefined ? `, val ${(100 * s.valAccuracy).toFixed(1)}%` : ''}`
      : s.hasCheckpoint
        ? 'model saved'
        : 'no model';
  const note =
    run.state === 'interrupted' ? (s.hasCheckpoint ? ' (its process died; the checkpoint can be used)' : ' (its process died)') : '';
  return `${run.name}  ${run.state}  ${figures}${note}`;
}

/** The `compare` command. */
function addCompareCommand(program: Command): void {
  program
    .command('compare')
    .description('compare two runs: settings, dataset changes, figures, and the validation images whose prediction flipped')
    .argument('<run-a>', 'the earlier run folder (before)')
    .argument('<run-b>', 'the later run folder (after)')
    .option(
      '--json',
      'print {"settings":[…],"dataset":{…},"metrics":{…},"validation":{…},"flips":{"fixed":[…],"broken":[…],"changed":[…]}}',
    )
    .action(async (runA: string, runB: string, o: { json?: boolean }) => {
      const runs: ComparableRun[] = [];
      for (const dir of [path.resolve(runA), path.resolve(runB)]) {
        try {
          runs.push(await readComparableRun(dir));
        } catch (err) {
          if (!(err instanceof RunFolderProblem)) throw err;
          console.error(`Run folder problem: ${oneLine(err.message)} (run folder: ${dir})`);
          process.exitCode = 1;
          return;
        }
      }
      const comparison = compareRuns(runs[0]!, runs[1]!);
      const text = o.json ? JSON.stringify(comparison) : comparisonLines(comparison).join('\n');
      // A long comparison, and runCli exits as soon as this returns: wait until the pipe has it.
      await new Promise<void>((resolve) => process.stdout.write(`${text}\n`, () => resolve()));
    });
}

/** The `diagnose` command. */
function addDiagnoseCommand(program: Command): void {
  program
    .command('diagnose')
    .description('show which backend would run and why the faster ones are unavailable')
    .option('--json', 'print the diagnosis as JSON')
    .option('--backend <name>', `backend preference: ${BACKEND_PREFERENCES.join(', ')}`, backendOption, 'auto')
    .option('--native-dir <dir>', 'folder where `install-backend` put the native tfjs backends')
    .action(async (o: { json?: boolean; backend: BackendPreference; nativeDir?: string }) => {
      const info = await diagnoseBackends({ preference: o.backend, nativeModulePaths: nativePaths(o.nativeDir) });
      // What a run would do besides the backend: where the frozen base and the head run.
      if (info.backend === 'wasm' || info.backend === 'cpu') {
        const probe = await probeOnnxRuntime();
        info.featureRuntime = probe.ok
          ? `onnxruntime-node ${probe.version} (CPU, BatchNorm folded)`
          : `tfjs ${info.backend} (${probe.reason})`;
      }
      info.headRuntime = (await chooseHeadRuntime(info.backend)).note;
      if (o.json) {
        console.log(JSON.stringify(info));
        return;
      }
      console.log(info.summary);
      for (const a of info.attempts) console.log(`  ${a.backend}: ${a.status}${a.detail ? ` — ${a.detail}` : ''}`);
      if (info.featureRuntime) console.log(`Features: ${info.featureRuntime}`);
      console.log(`Head: ${info.headRuntime}`);
    });
}

/** The `install-backend` command. */
function addInstallBackendCommand(program: Command): void {
  program
    .command('install-backend')
    .description('install @tensorflow/tfjs-node-gpu (gpu) or @tensorflow/tfjs-node (cpu) with npm into <dir>')
    .argument('<kind>', 'gpu or cpu')
    .requiredOption('--dir <dir>', 'target folder (then pass it to train/predict/diagnose as --native-dir)')
    .action(async (kind: string, o: { dir: string }) => {
      if (kind !== 'gpu' && kind !== 'cpu') throw new TrainerError('options', `kind must be gpu or cpu, got "${kind}"`);
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigint);
      const result = await installNativeBackend(kind, path.resolve(o.dir), {
        onOutput: (line) => console.log(line),
        signal: controller.signal,
      });
      (result.ok ? console.log : console.error)(result.message);
      if (!result.ok) process.exitCode = 1;
    });
}

/** The `export-onnx` command. */
function addExportOnnxCommand(program: Command): void {
  program
    .command('export-onnx')
    .description("export a run's classifier to ONNX (raw RGB 0–255 NHWC pixels in, class probabilities out)")
    .argument('<run-folder>', 'a run folder written by `train`')
    .option('--out <file>', 'output file (default: <run-folder>/model.onnx)')
    .action(async (runDir: string, o: { out?: string }) => {
      const { tf } = await initBackend({ preference: 'wasm' });
      const out = path.resolve(o.out ?? path.join(runDir, 'model.onnx'));
      const meta = await exportClassifierToOnnx(path.join(path.resolve(runDir), RUN_FILES.modelDir), out, tf);
      console.log(`Exported ${meta.labels.length}-class classifier to ${out}`);
    });
}

/** The one line a failure prints: what kind of problem, the reason, and the run folder that records it. */
function cliFailureLine(err: unknown): string {
  const kind = errorKindOf(err);
  const line = failureLine(kind, err instanceof Error ? err.message : String(err), (err as { runDir?: string } | undefined)?.runDir);
  // Without a kind the line needs to say where it comes from.
  return kind === 'internal' ? `image-trainer: ${line}` : line;
}

/** Runs the CLI, then exits: every failure ends with a one-line reason and a non-zero code. */
export async function runCli(argv: string[], extensionRoot: string): Promise<never> {
  try {
    await buildProgram(extensionRoot).exitOverride().parseAsync(argv);
  } catch (err) {
    const code = (err as { exitCode?: number } | undefined)?.exitCode;
    // commander has already printed help, version and argument errors
    if (code === undefined) console.error(cliFailureLine(err));
    process.exitCode = code ?? (errorKindOf(err) === 'cancelled' ? CANCELLED_EXIT_CODE : 1);
  }
  // The threaded WebAssembly backend keeps worker threads alive: leave explicitly.
  process.exit(process.exitCode ?? 0);
}
