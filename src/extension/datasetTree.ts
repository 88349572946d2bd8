// The "Image Datasets" view: every dataset of the workspace, its classes with image counts and
// warnings from a quick health check, the findings of its latest doctor check, and its past runs. Discovery and health checks run in the
// background; file changes refresh the tree, debounced.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readSettings, runLocationsFor } from './configuration';
import { discoverDatasets, isExcludedFolderName } from './datasetDiscovery';
import type { DiscoveredClass, DiscoveredDataset } from './datasetDiscovery';
import { checkDatasetHealth } from './datasetHealth';
import { findingCount, withoutKept } from '../shared/protocol/doctorPanel';
import { isDoctorFolderName, readDoctorReport, readKept } from './doctorFiles';
import type { DatasetHealth } from './datasetHealth';
import { describeRun, isInside, listRuns, runsOfDataset } from './runIndex';
import type { RunEntry } from './runIndex';
import type { TrainingProcessManager } from './trainingProcess';

export type DatasetNode =
  | { kind: 'dataset'; dataset: DiscoveredDataset }
  | { kind: 'class'; dataset: DiscoveredDataset; cls: DiscoveredClass }
  | { kind: 'runs'; dataset: DiscoveredDataset }
  | { kind: 'doctor'; dataset: DiscoveredDataset; check: RunEntry }
  | { kind: 'run'; dataset: DiscoveredDataset; run: RunEntry };

/** Wait after the last file change before looking again. */
const DISCOVERY_DEBOUNCE_MS = 1000;
const RUNS_DEBOUNCE_MS = 300;

const WARNING_ICON = new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'));

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

function escapeMarkdown(text: string): string {
  // Only what would change the rendering of a path or a file name; `.` and `-` stay readable.
  return text.replace(/[\\`*_[\]<>|]/g, '\\$&');
}

/** Tree data for the `imageTrainer.datasets` view. */
export class DatasetTreeProvider implements vscode.TreeDataProvider<DatasetNode>, vscode.Disposable {
  private readonly changeEmitter = new vscode.EventEmitter<DatasetNode | undefined>();
  readonly onDidChangeTreeData = this.changeEmitter.event;
  private readonly discoveredEmitter = new vscode.EventEmitter<readonly DiscoveredDataset[]>();
  /** Fires after each discovery with the datasets found. */
  readonly onDidDiscover = this.discoveredEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];

  private datasetList: DiscoveredDataset[] = [];
  private readonly health = new Map<string, DatasetHealth>();
  private readonly healthPending = new Map<string, Promise<DatasetHealth | undefined>>();
  private runs: RunEntry[] = [];
  /** Doctor checks (run-like folders `doctor-<dataset>-<time>`), newest first. */
  private checks: RunEntry[] = [];
  /** Findings not kept, by check folder (finished checks only). */
  private readonly findingCounts = new Map<string, number>();
  private runsDirs: string[] = [];
  private excluded: string[] = [];
  private discovery: Promise<void> | undefined;
  private discoveryAgain = false;
  private discoveryAbort: AbortController | undefined;
  private discoveryTimer: NodeJS.Timeout | undefined;
  private runsTimer: NodeJS.Timeout | undefined;
  private ready: Promise<void>;
  /** Milliseconds the last discovery took, for the log and tests. */
  lastDiscoveryMs = 0;

  constructor(
    private readonly log: vscode.OutputChannel,
    private readonly manager: TrainingProcessManager,
  ) {
    const watcher = vscode.workspace.createFileSystemWatcher('**/*');
    this.disposables.push(
      watcher,
      watcher.onDidCreate((uri) => this.onFileEvent(uri, 'create')),
      watcher.onDidChange((uri) => this.onFileEvent(uri, 'change')),
      watcher.onDidDelete((uri) => this.onFileEvent(uri, 'delete')),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.refresh()),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('imageTrainer.runsFolder') || e.affectsConfiguration('imageTrainer.cacheFolder')) void this.refresh();
      }),
      manager.onDidStartRun(() => this.changeEmitter.fire(undefined)),
      manager.onDidEndRun(() => this.scheduleRuns()),
      manager.onDidExitRun(() => void this.refreshRuns()),
    );
    this.ready = this.refresh();
  }

  /** The datasets found by the last discovery. */
  get datasets(): readonly DiscoveredDataset[] {
    return this.datasetList;
  }

  /** Resolves when the first discovery (and its run listing) is done. */
  whenReady(): Promise<void> {
    return this.ready;
  }

  /** The dataset that holds `fsPath` (a dataset root, class folder or image), if any. */
  datasetContaining(fsPath: string): DiscoveredDataset | undefined {
    return this.datasetList.filter((d) => isInside(d.root, fsPath)).sort((a, b) => b.root.length - a.root.length)[0];
  }

  /** Past runs of a dataset, newest first. */
  runsOf(datasetRoot: string): RunEntry[] {
    return runsOfDataset(this.runs, datasetRoot);
  }

  /** The newest doctor check of a dataset (running or ended), if any. */
  latestCheckOf(datasetRoot: string): RunEntry | undefined {
    return runsOfDataset(this.checks, datasetRoot)[0];
  }

  /** Findings of a finished check that the user has not kept, when its doctor.json was readable. */
  findingCountOf(checkDir: string): number | undefined {
    return this.findingCounts.get(checkDir);
  }

  /** Every run known, newest first. */
  get allRuns(): readonly RunEntry[] {
    return this.runs;
  }

  /** The health check of a dataset, waiting for it if it is still running. */
  async healthOf(datasetRoot: string): Promise<DatasetHealth | undefined> {
    const cached = this.health.get(datasetRoot);
    if (cached) return cached;
    const dataset = this.datasetList.find((d) => d.root === datasetRoot);
    return dataset ? this.checkHealth(dataset) : undefined;
  }

  /** Looks for datasets again (and re-checks their health); resolves when the tree is up to date. */
  refresh(): Promise<void> {
    this.health.clear();
    this.healthPending.clear();
    if (this.discovery) {
      this.discoveryAgain = true;
      this.discoveryAbort?.abort();
      return this.discovery;
    }
    this.discovery = this.discoverLoop().finally(() => {
      this.discovery = undefined;
    });
    return this.discovery;
  }

  private async discoverLoop(): Promise<void> {
    void vscode.commands.executeCommand('setContext', 'imageTrainer.discovering', true);
    try {
      do {
        this.discoveryAgain = false;
        await this.discoverOnce();
      } while (this.discoveryAgain);
    } finally {
      void vscode.commands.executeCommand('setContext', 'imageTrainer.discovering', false);
    }
  }

  private async discoverOnce(): Promise<void> {
    const folders = vscode.workspace.workspaceFolders ?? [];
    const locations = folders.map((f) => runLocationsFor(path.join(f.uri.fsPath, '_'), readSettings(f.uri).settings));
    this.runsDirs = [...new Set(locations.map((l) => l.runsDir))];
    this.excluded = [...new Set(locations.flatMap((l) => [l.runsDir, l.cacheDir]))];
    const abort = new AbortController();
    this.discoveryAbort = abort;
    const t0 = Date.now();
    const found: DiscoveredDataset[] = [];
    try {
      const results = await Promise.all(
        folders.map((f) => discoverDatasets(f.uri.fsPath, { excludeFolders: this.excluded, signal: abort.signal })),
      );
      for (const r of results) found.push(...r.datasets);
      this.lastDiscoveryMs = Date.now() - t0;
      const files = results.reduce((n, r) => n + r.filesSeen, 0);
      this.log.appendLine(
        `[datasets] ${plural(found.length, 'dataset')} found in ${this.lastDiscoveryMs} ms (${plural(files, 'file')} in ${plural(
          results.reduce((n, r) => n + r.foldersRead, 0),
          'folder',
        )})${results.some((r) => r.truncated) ? '; some folders were too deep to look into' : ''}`,
      );
    } catch (error) {
      if (abort.signal.aborted) return; // a newer discovery replaces this one
      this.log.appendLine(`[datasets] discovery failed: ${(error as Error).message}`);
      return;
    }
    // Unique roots: two workspace folders may hold the same dataset.
    this.datasetList = [...new Map(found.map((d) => [d.root, d])).values()];
    await this.refreshRuns(false);
    this.changeEmitter.fire(undefined);
    this.discoveredEmitter.fire(this.datasetList);
    // Health checks one dataset at a time, in the background.
    void (async () => {
      for (const dataset of this.datasetList) {
        if (this.discoveryAbort !== abort) return;
        await this.checkHealth(dataset);
      }
    })();
  }

  private checkHealth(dataset: DiscoveredDataset): Promise<DatasetHealth | undefined> {
    const pending = this.healthPending.get(dataset.root);
    if (pending) return pending;
    const promise = checkDatasetHealth(dataset)
      .then((health) => {
        if (this.healthPending.get(dataset.root) !== promise) return health; // stale
        this.health.set(dataset.root, health);
        if (health.warnings.length > 0) this.log.appendLine(`[datasets] ${dataset.name}: ${health.warnings.join('; ')}`);
        this.changeEmitter.fire(undefined);
        return health;
      })
      .catch((error: Error) => {
        this.log.appendLine(`[datasets] health check of ${dataset.root} failed: ${error.message}`);
        return undefined;
      });
    this.healthPending.set(dataset.root, promise);
    return promise;
  }

  /** Re-reads the run folders; fires a tree change unless told not to. */
  async refreshRuns(fire = true): Promise<void> {
    const lists = await Promise.all(this.runsDirs.map((dir) => listRuns(dir)));
    const all = lists.flat().sort((a, b) => b.status.startedAt.localeCompare(a.status.startedAt));
    const isCheck = (r: RunEntry) => isDoctorFolderName(r.name, r.status.datasetName);
    this.runs = all.filter((r) => !isCheck(r));
    this.checks = all.filter(isCheck);
    await this.countFindings();
    if (fire) this.changeEmitter.fire(undefined);
  }

  /** Reads the latest finished check of each dataset (its doctor.json, less the kept findings). */
  private async countFindings(): Promise<void> {
    this.findingCounts.clear();
    const latest = new Map<string, RunEntry>();
    for (const check of this.checks) if (!latest.has(check.status.datasetRoot)) latest.set(check.status.datasetRoot, check);
    await Promise.all(
      [...latest.values()]
        .filter((c) => c.status.state === 'finished')
        .map(async (check) => {
          const read = await readDoctorReport(check.runDir);
          if ('problem' in read) return this.log.appendLine(`[datasets] ${read.problem}`);
          const kept = await readKept(path.dirname(check.runDir), check.status.datasetRoot);
          this.findingCounts.set(check.runDir, findingCount(withoutKept(read.report, kept)));
        }),
    );
  }

  private scheduleRuns(): void {
    clearTimeout(this.runsTimer);
    this.runsTimer = setTimeout(() => void this.refreshRuns(), RUNS_DEBOUNCE_MS);
  }

  private onFileEvent(uri: vscode.Uri, kind: 'create' | 'change' | 'delete'): void {
    if (uri.scheme !== 'file') return;
    const file = uri.fsPath;
    if (this.runsDirs.some((dir) => isInside(dir, file))) {
      this.scheduleRuns();
      return;
    }
    if (this.excluded.some((dir) => isInside(dir, file))) return;
    const folder = vscode.workspace.getWorkspaceFolder(uri);
    if (!folder) return;
    const parts = path.relative(folder.uri.fsPath, file).split(path.sep);
    if (parts.some((p) => isExcludedFolderName(p))) return;
    // A change of content matters only inside a dataset (a replaced image); creations and deletions anywhere.
    if (kind === 'change' && !this.datasetContaining(file)) return;
    clearTimeout(this.discoveryTimer);
    this.discoveryTimer = setTimeout(() => void this.refresh(), DISCOVERY_DEBOUNCE_MS);
  }

  getChildren(element?: DatasetNode): DatasetNode[] {
    if (!element) return this.datasetList.map((dataset) => ({ kind: 'dataset', dataset }));
    switch (element.kind) {
      case 'dataset': {
        const children: DatasetNode[] = element.dataset.classes.map((cls) => ({ kind: 'class', dataset: element.dataset, cls }));
        const check = this.latestCheckOf(element.dataset.root);
        if (check) children.push({ kind: 'doctor', dataset: element.dataset, check });
        if (this.runsOf(element.dataset.root).length > 0) children.push({ kind: 'runs', dataset: element.dataset });
        return children;
      }
      case 'runs':
        return this.runsOf(element.dataset.root).map((run) => ({ kind: 'run', dataset: element.dataset, run }));
      default:
        return [];
    }
  }

  getParent(element: DatasetNode): DatasetNode | undefined {
    switch (element.kind) {
      case 'dataset':
        return undefined;
      case 'class':
      case 'runs':
      case 'doctor':
        return { kind: 'dataset', dataset: element.dataset };
      case 'run':
        return { kind: 'runs', dataset: element.dataset };
    }
  }

  getTreeItem(element: DatasetNode): vscode.TreeItem {
    switch (element.kind) {
      case 'dataset':
        return this.datasetItem(element.dataset);
      case 'class':
        return this.classItem(element.dataset, element.cls);
      case 'runs': {
        const item = new vscode.TreeItem('Runs', vscode.TreeItemCollapsibleState.Collapsed);
        item.id = `runs:${element.dataset.root}`;
        item.description = String(this.runsOf(element.dataset.root).length);
        item.iconPath = new vscode.ThemeIcon('history');
        item.contextValue = 'runs';
        return item;
      }
      case 'run':
        return this.runItem(element);
      case 'doctor':
        return this.doctorItem(element);
    }
  }

  private doctorItem(node: DatasetNode & { kind: 'doctor' }): vscode.TreeItem {
    const item = new vscode.TreeItem('Doctor', vscode.TreeItemCollapsibleState.None);
    item.id = `doctor:${node.dataset.root}`;
    const live = this.manager.runFor(node.dataset.root);
    const count = this.findingCountOf(node.check.runDir);
    const state = node.check.interrupted ? 'interrupted' : node.check.status.state;
    item.description =
      live?.kind === 'doctor'
        ? 'checking…'
        : state === 'finished' && count !== undefined
          ? count === 0
            ? 'no findings'
            : plural(count, 'finding')
          : `last check ${state}`;
    item.iconPath = count ? WARNING_ICON : new vscode.ThemeIcon('checklist');
    item.contextValue = 'doctor';
    item.tooltip = `Findings of the latest check (${node.check.name}) that you have not kept. Click to open the Dataset Doctor.`;
    item.command = { command: 'imageTrainer.openDoctorReport', title: 'Open Dataset Doctor', arguments: [node] };
    return item;
  }

  private datasetItem(dataset: DiscoveredDataset): vscode.TreeItem {
    const single = this.datasetList.length === 1;
    const item = new vscode.TreeItem(
      dataset.name,
      single ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed,
    );
    item.id = `dataset:${dataset.root}`;
    const health = this.health.get(dataset.root);
    const live = this.manager.runFor(dataset.root);
    const images = health && !health.truncated ? Object.values(health.imagesPerClass).reduce((a, b) => a + b, 0) : dataset.imageCount;
    const parts = [plural(dataset.classes.length, 'class', 'classes'), plural(images, 'image')];
    if (health && health.warnings.length > 0) parts.push(plural(health.warnings.length, 'warning'));
    if (live) parts.push(live.kind === 'doctor' ? 'checking…' : 'training…');
    item.description = parts.join(' · ');
    item.iconPath = live
      ? new vscode.ThemeIcon('sync~spin')
      : health && health.warnings.length > 0
        ? WARNING_ICON
        : new vscode.ThemeIcon('database');
    item.contextValue = live ? 'dataset-training' : 'dataset';
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**${escapeMarkdown(dataset.name)}**  \n${escapeMarkdown(dataset.root)}\n\n`);
    tooltip.appendMarkdown(
      `${dataset.layout === 'explicit' ? 'Explicit train/val split' : 'Class folders (validation split computed)'}: ${escapeMarkdown(parts.slice(0, 2).join(', '))}\n\n`,
    );
    if (!health) tooltip.appendMarkdown('$(loading~spin) Checking files…');
    else if (health.warnings.length === 0) tooltip.appendMarkdown('$(check) No problems found by the quick check.');
    else for (const w of health.warnings) tooltip.appendMarkdown(`$(warning) ${escapeMarkdown(w)}  \n`);
    item.tooltip = tooltip;
    return item;
  }

  private classItem(dataset: DiscoveredDataset, cls: DiscoveredClass): vscode.TreeItem {
    const item = new vscode.TreeItem(cls.name, vscode.TreeItemCollapsibleState.None);
    item.id = `class:${dataset.root}:${cls.name}`;
    const health = this.health.get(dataset.root);
    const warnings = health?.classWarnings[cls.name] ?? [];
    // Once the quick check has read the bytes, its count replaces the count by file name.
    const images = health && !health.truncated ? (health.imagesPerClass[cls.name] ?? cls.imageCount) : cls.imageCount;
    const problemFiles = health?.fileProblems.filter((p) => p.className === cls.name).length ?? 0;
    item.description = [plural(images, 'image'), problemFiles > 0 ? plural(problemFiles, 'bad file') : undefined]
      .filter(Boolean)
      .join(' · ');
    item.iconPath = warnings.length > 0 ? WARNING_ICON : new vscode.ThemeIcon('folder');
    item.contextValue = 'datasetClass';
    const tooltip = new vscode.MarkdownString(undefined, true);
    tooltip.appendMarkdown(`**${escapeMarkdown(cls.name)}**: ${plural(images, 'image')}${health ? '' : ' (by file name; checking…)'}\n\n`);
    for (const w of warnings.slice(0, 10)) tooltip.appendMarkdown(`$(warning) ${escapeMarkdown(w)}  \n`);
    if (warnings.length > 10) tooltip.appendMarkdown(`…and ${warnings.length - 10} more`);
    item.tooltip = tooltip;
    return item;
  }

  private runItem(node: DatasetNode & { kind: 'run' }): vscode.TreeItem {
    const run = node.run;
    const stamp = /-(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})$/.exec(run.name);
    const label = stamp ? `${stamp[1]}-${stamp[2]}-${stamp[3]} ${stamp[4]}:${stamp[5]}:${stamp[6]}` : run.name;
    const item = new vscode.TreeItem(label, vscode.TreeItemCollapsibleState.None);
    item.id = `run:${run.runDir}`;
    item.description = describeRun(run);
    const state = run.interrupted ? 'interrupted' : run.status.state;
    item.iconPath = {
      finished: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')),
      failed: new vscode.ThemeIcon('error', new vscode.ThemeColor('testing.iconFailed')),
      cancelled: new vscode.ThemeIcon('circle-slash'),
      running: new vscode.ThemeIcon('sync~spin'),
      interrupted: WARNING_ICON,
    }[state];
    item.contextValue = `run-${state}`;
    const tooltip = new vscode.MarkdownString();
    tooltip.appendMarkdown(`**${escapeMarkdown(run.name)}**  \n${escapeMarkdown(run.runDir)}\n\n${escapeMarkdown(item.description)}`);
    if (run.status.message) tooltip.appendMarkdown(`\n\n${escapeMarkdown(run.status.message)}`);
    if (run.interrupted)
      tooltip.appendMarkdown(
        `\n\nThe training process stopped before the run finished. ${run.status.hasCheckpoint ? `Its checkpoint${run.status.bestEpoch ? ` (epoch ${run.status.bestEpoch})` : ''} can still classify images.` : 'It saved no model.'}`,
      );
    item.tooltip = tooltip;
    item.command = { command: 'imageTrainer.openPanel', title: 'Open Training Panel', arguments: [node] };
    return item;
  }

  dispose(): void {
    clearTimeout(this.discoveryTimer);
    clearTimeout(this.runsTimer);
    this.discoveryAbort?.abort();
    for (const d of this.disposables) d.dispose();
    this.changeEmitter.dispose();
    this.discoveredEmitter.dispose();
  }
}
