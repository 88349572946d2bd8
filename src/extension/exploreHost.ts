// The host side of the panel's exploring views: Compare with… (a quick pick of the dataset's other
// runs, then `image-trainer compare --json` in the training bundle), the Runs table and the
// feature map. Everything sent is checked first; every image path the views may act on is added
// to the panel's path guard, which still checks it against the dataset folder.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isRunComparison, type RunComparison } from '../shared/compare';
import type { FeatureMapFile } from '../shared/featureMap';
import type { ExploreCommand, ExploreNotification } from '../shared/protocol/explore';
import { readRunFolder } from './panelState';
import { comparableRuns, comparisonView, readDoctorMarks, readFeatureMap, readRunOptions, runRows } from './runHistory';
import { describeRun, listRuns, runsOfDataset, type RunEntry } from './runIndex';
import { runTrainingCli } from './trainingCli';

const COMPARE_TIMEOUT_MS = 60_000;

export interface ExploreHostDeps {
  log: vscode.OutputChannel;
  /** The training bundle that runs `compare`. */
  bundlePath?: string;
  datasetRoot: string;
  /** The run folder the panel shows, once known. */
  runDir(): string | undefined;
  post(notification: ExploreNotification): void;
  /** Lets the panel's file actions touch these dataset-relative paths (still checked against the dataset folder). */
  allowPaths(paths: readonly string[]): void;
  /** Moves images (each from its class on the map) to `toClass`: checked, confirmed once, one undoable edit. */
  moveImages(moves: { path: string; fromClass: string }[], toClass: string, classes: readonly string[]): Promise<void>;
}

/** Serves one panel's Compare, Runs and map views. */
export class ExploreHost {
  /** The map last sent: a lasso move may only name its images, in the classes it shows. */
  private map: FeatureMapFile | undefined;

  constructor(private readonly deps: ExploreHostDeps) {}

  async handle(command: ExploreCommand): Promise<void> {
    switch (command.type) {
      case 'compare/pick':
        return this.pickAndCompare();
      case 'compare/runs':
        return this.compareByName(command.a, command.b);
      case 'runs/show':
        return this.showRuns();
      case 'map/show':
        return this.showMap();
      case 'map/move':
        return this.moveSelection(command.paths, command.toClass);
    }
  }

  private async moveSelection(paths: readonly string[], toClass: string): Promise<void> {
    const map = this.map;
    const index = new Map(map?.paths.map((p, i) => [p, i]));
    const unknown = paths.filter((p) => !index.has(p));
    if (!map || unknown.length > 0 || !map.classes.includes(toClass)) {
      this.deps.log.appendLine(
        `[panel] refused map/move of ${paths.length} images to ${JSON.stringify(toClass.slice(0, 100))}: ${!map ? 'no map shown' : unknown.length ? `${unknown.length} are not images of the map` : 'not a class of the map'}`,
      );
      return;
    }
    const moves = paths
      .map((p) => ({ path: p, fromClass: map.classes[map.labels[index.get(p)!]!]! }))
      .filter((m) => m.fromClass !== toClass);
    if (moves.length > 0) await this.deps.moveImages(moves, toClass, map.classes);
  }

  /** The runs of this panel's dataset in its run's runs folder, newest first. */
  private async datasetRuns(): Promise<RunEntry[]> {
    const runDir = this.deps.runDir();
    if (!runDir) return [];
    return runsOfDataset(await listRuns(path.dirname(runDir)), this.deps.datasetRoot);
  }

  /** Compare with…: the user picks another run of the dataset (date, accuracy, main settings). */
  async pickAndCompare(): Promise<void> {
    const runDir = this.deps.runDir();
    if (!runDir) return;
    const others = comparableRuns(await this.datasetRuns(), runDir);
    if (others.length === 0) {
      this.problem('compare', 'No other finished run of this dataset to compare with: train again with other settings first.');
      return;
    }
    const items = await Promise.all(
      others.map(async (run) => ({
        label: run.name,
        description: describeRun(run),
        detail: (await readRunOptions(run.runDir))?.model,
        run,
      })),
    );
    const picked = await vscode.window.showQuickPick(items, {
      title: `Compare ${path.basename(runDir)} with…`,
      placeHolder: 'A run of the same dataset',
      // The panel opening beside it takes the focus a moment later: the list must stay open.
      ignoreFocusOut: true,
    });
    if (picked) await this.compare(runDir, picked.run.runDir);
  }

  private async compareByName(a: string, b: string): Promise<void> {
    const runs = await this.datasetRuns();
    const find = (name: string) => runs.find((r) => r.name === name);
    const runA = find(a);
    const runB = find(b);
    if (!runA || !runB) {
      this.deps.log.appendLine(
        `[panel] refused compare/runs ${JSON.stringify([a.slice(0, 100), b.slice(0, 100)])}: not runs of this dataset`,
      );
      return;
    }
    await this.compare(runA.runDir, runB.runDir);
  }

  /** Compares two run folders, the older as A (before), and shows the result. */
  async compare(one: string, two: string): Promise<void> {
    const [x, y] = await Promise.all([readRunFolder(one), readRunFolder(two)]);
    if (!x || !y) return this.problem('compare', 'A run folder can no longer be read.');
    const [a, b] = x.status.startedAt <= y.status.startedAt ? [x, y] : [y, x];
    const comparison = await this.runCompare(a.runDir, b.runDir);
    if (!comparison) return;
    const evaluationA = a.evaluation;
    const evaluationB = b.evaluation;
    if (!evaluationA || !evaluationB) return this.problem('compare', 'A run has no evaluation.');
    const flips = comparison.flips;
    this.deps.allowPaths([...flips.fixed, ...flips.broken, ...flips.changed].map((f) => f.path));
    const view = comparisonView(comparison, { epochs: a.epochs, evaluation: evaluationA }, { epochs: b.epochs, evaluation: evaluationB });
    this.deps.post({ type: 'comparison', view });
  }

  private async runCompare(a: string, b: string): Promise<RunComparison | undefined> {
    if (!this.deps.bundlePath) {
      this.problem('compare', 'The training bundle is not available.');
      return undefined;
    }
    const result = await runTrainingCli(this.deps.bundlePath, ['compare', a, b, '--json'], { timeoutMs: COMPARE_TIMEOUT_MS });
    let parsed: unknown;
    try {
      parsed = JSON.parse(result.stdout);
    } catch {
      parsed = undefined;
    }
    if (result.code !== 0 || !isRunComparison(parsed)) {
      const reason = result.stderr.trim().split('\n').at(-1) || `compare exited with ${result.code ?? result.signal}`;
      this.deps.log.appendLine(`[panel] compare ${a} ${b}: ${reason}`);
      this.problem('compare', reason);
      return undefined;
    }
    return parsed;
  }

  private async showRuns(): Promise<void> {
    const runs = await this.datasetRuns();
    const options = new Map(await Promise.all(runs.map(async (r) => [r.runDir, await readRunOptions(r.runDir)] as const)));
    this.deps.post({ type: 'runs', runs: runRows(runs, options, this.deps.runDir()) });
  }

  private async showMap(): Promise<void> {
    const runDir = this.deps.runDir();
    const map = runDir ? await readFeatureMap(runDir) : undefined;
    if (!runDir || !map) {
      this.problem('map', 'This run has no feature map (runs made before the map existed, or it could not be computed: see train.log).');
      return;
    }
    this.deps.allowPaths(map.paths);
    this.map = map;
    const marks = await readDoctorMarks(path.dirname(runDir), this.deps.datasetRoot);
    this.deps.post({ type: 'featureMap', map, marks });
  }

  private problem(view: 'compare' | 'runs' | 'map', message: string): void {
    this.deps.post({ type: 'exploreProblem', view, message });
  }
}
