// The training panel controller: one WebviewPanel per run, a ready handshake, live updates from a
// TrainingRunHandle, restore from a run folder (past runs and after a window reload), and the file
// actions the panel asks for, each path checked by ImagePathGuard first.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isPanelCommand, type PanelCommand, type PanelNotification, type PanelState } from '../shared/protocol/panel';
import type { TrainingNotification } from '../shared/protocol/training';
import { ImagePathGuard } from './imagePathGuard';
import { checkImagesToExplain, type HeatmapService } from './panelHeatmaps';
import { createNonce, panelHtml } from './panelHtml';
import {
  applyTrainingNotification,
  datasetRootOf,
  panelStateFromHistory,
  panelStateFromRunFolder,
  readRunFolder,
  retrainRequest,
  withModelChoices,
} from './panelState';
import { isProcessAlive } from './runIndex';
import type { TrainingRunHandle } from './trainingRunHandle';

export const TRAINING_PANEL_VIEW_TYPE = 'imageTrainer.trainingPanel';
/** workspaceState key: panel run id → run folder, so the serializer can restore without the webview ever holding a path. */
const RESTORE_KEY = 'imageTrainer.panelRunDirs';
const RESTORE_LIMIT = 50;
const FOLDER_POLL_MS = 2000;

export interface TrainingPanelDeps {
  log: vscode.OutputChannel;
  /** Starts a new run on the dataset; `model` (a listed base model id) overrides the setting. */
  retrain(datasetRoot: string, model?: string): void;
  /** The dataset roots the workspace's discovery knows: the only roots file actions of a reopened run may touch. */
  knownDatasetRoots(): Promise<readonly string[]>;
  /** Computes the gallery's heatmaps and draws an opened image's overlay (the training bundle's `explain`). */
  heatmaps: HeatmapService;
}

type RestoreMap = Record<string, string>;

/** Opens and keeps track of training panels; registers the serializer that restores them after a reload. */
export class TrainingPanelManager implements vscode.Disposable {
  private readonly panels = new Set<RunPanel>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly deps: TrainingPanelDeps,
  ) {
    this.disposables.push(
      vscode.window.registerWebviewPanelSerializer(TRAINING_PANEL_VIEW_TYPE, {
        deserializeWebviewPanel: (panel, state) => this.restore(panel, state),
      }),
    );
  }

  /** Shows the live panel of `run` (revealing it if it is already open). */
  showLive(run: TrainingRunHandle): void {
    const existing = this.find(run.id, run.runDir);
    if (existing) {
      existing.attach(run);
      existing.reveal();
      return;
    }
    const panel = this.createWebviewPanel(path.basename(run.runDir ?? run.datasetRoot), run.datasetRoot);
    this.track(new RunPanel(panel, this.context, this.deps, run.datasetRoot, (id, dir) => this.remember(id, dir), { kind: 'live', run }));
  }

  /** Shows a run from its folder: a past run (finished, failed or cancelled) or one running elsewhere. */
  async showRunFolder(runDir: string): Promise<void> {
    const existing = this.find(undefined, runDir);
    if (existing) {
      existing.reveal();
      return;
    }
    const contents = await readRunFolder(runDir);
    if (!contents) {
      void vscode.window.showErrorMessage(`${runDir} is not a training run folder (no readable status.json).`);
      return;
    }
    const panel = this.createWebviewPanel(path.basename(runDir), datasetRootOf(contents));
    const runPanel = new RunPanel(panel, this.context, this.deps, datasetRootOf(contents), (id, dir) => this.remember(id, dir), {
      kind: 'folder',
      runDir,
    });
    this.track(runPanel);
    await runPanel.loadFolder();
  }

  dispose(): void {
    for (const panel of [...this.panels]) panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }

  private async restore(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
    const runId = typeof state === 'object' && state !== null ? (state as { panel?: { runId?: unknown } }).panel?.runId : undefined;
    const runDir = typeof runId === 'string' ? this.context.workspaceState.get<RestoreMap>(RESTORE_KEY, {})[runId] : undefined;
    const contents = runDir ? await readRunFolder(runDir) : undefined;
    if (!runDir || !contents) {
      this.deps.log.appendLine(`[panel] could not restore a training panel (run ${String(runId)}): its run folder is gone`);
      panel.dispose();
      return;
    }
    const runPanel = new RunPanel(panel, this.context, this.deps, datasetRootOf(contents), (id, dir) => this.remember(id, dir), {
      kind: 'folder',
      runDir,
    });
    this.track(runPanel);
    await runPanel.loadFolder();
  }

  private createWebviewPanel(title: string, datasetRoot: string): vscode.WebviewPanel {
    return vscode.window.createWebviewPanel(
      TRAINING_PANEL_VIEW_TYPE,
      `Training: ${title}`,
      vscode.ViewColumn.Active,
      webviewOptions(this.context, datasetRoot),
    );
  }

  private track(panel: RunPanel): void {
    this.panels.add(panel);
    panel.onDidDispose(() => this.panels.delete(panel));
  }

  private find(runId: string | undefined, runDir: string | undefined): RunPanel | undefined {
    for (const panel of this.panels) if (panel.matches(runId, runDir)) return panel;
    return undefined;
  }

  private remember(runId: string, runDir: string): void {
    const map = { ...this.context.workspaceState.get<RestoreMap>(RESTORE_KEY, {}) };
    if (Object.keys(map).at(-1) === runId && map[runId] === runDir) return;
    delete map[runId];
    map[runId] = runDir;
    const keys = Object.keys(map);
    for (const key of keys.slice(0, Math.max(0, keys.length - RESTORE_LIMIT))) delete map[key];
    void this.context.workspaceState.update(RESTORE_KEY, map);
  }
}

function webviewOptions(context: vscode.ExtensionContext, datasetRoot: string): vscode.WebviewPanelOptions & vscode.WebviewOptions {
  return {
    enableScripts: true,
    // The panel restores itself from setState when shown again, so its context need not be kept.
    retainContextWhenHidden: false,
    enableFindWidget: true,
    localResourceRoots: [
      vscode.Uri.joinPath(context.extensionUri, 'dist'),
      vscode.Uri.joinPath(context.extensionUri, 'media'),
      ...(datasetRoot ? [vscode.Uri.file(datasetRoot)] : []),
    ],
  };
}

type PanelSource = { kind: 'live'; run: TrainingRunHandle } | { kind: 'folder'; runDir: string };

/** One panel showing one run. */
class RunPanel implements vscode.Disposable {
  private state: PanelState;
  private ready = false;
  private readonly guard: ImagePathGuard;
  private readonly disposables: vscode.Disposable[] = [];
  private runSubscriptions: vscode.Disposable[] = [];
  private live: TrainingRunHandle | undefined;
  private runDir: string | undefined;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  private disposed = false;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;
  private lastFolderSnapshot = '';

  constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly context: vscode.ExtensionContext,
    private readonly deps: TrainingPanelDeps,
    private readonly datasetRoot: string,
    private readonly remember: (runId: string, runDir: string) => void,
    source: PanelSource,
  ) {
    // A live run's root is the folder the user just chose; a reopened run's root is read from its
    // folder's files, so it counts only when it is one of the workspace's datasets.
    const chosenRoot = source.kind === 'live' ? [source.run.datasetRoot] : [];
    this.guard = new ImagePathGuard(datasetRoot, [], async () => [...chosenRoot, ...(await deps.knownDatasetRoots())]);
    const imageBaseUri = this.imageBaseUri();
    if (source.kind === 'live') {
      this.state = panelStateFromHistory(source.run, imageBaseUri);
    } else {
      this.runDir = source.runDir;
      this.state = {
        runId: path.basename(source.runDir),
        runName: path.basename(source.runDir),
        state: 'starting',
        datasetName: path.basename(datasetRoot),
        imageBaseUri,
        epochs: [],
        moved: [],
      };
    }
    panel.webview.options = webviewOptions(context, datasetRoot);
    panel.webview.html = this.html();
    this.disposables.push(
      panel.webview.onDidReceiveMessage((message: unknown) => void this.onMessage(message)),
      panel.onDidDispose(() => this.dispose()),
      vscode.workspace.onDidRenameFiles((event) => this.onFilesRenamed(event.files)),
      // Without retainContextWhenHidden a hidden webview is gone; it says `ready` again when shown.
      panel.onDidChangeViewState((event) => {
        if (!event.webviewPanel.visible) this.ready = false;
      }),
      this.disposeEmitter,
    );
    if (source.kind === 'live') this.attach(source.run);
  }

  /** True if this panel shows the run with this handle id or folder. */
  matches(runId: string | undefined, runDir: string | undefined): boolean {
    if (runId !== undefined && this.live?.id === runId) return true;
    const mine = this.live?.runDir ?? this.runDir;
    return runDir !== undefined && mine !== undefined && path.resolve(mine) === path.resolve(runDir);
  }

  reveal(): void {
    this.panel.reveal();
  }

  /** Follows a live run: its history now, its notifications from here on. */
  attach(run: TrainingRunHandle): void {
    if (this.live === run) return;
    for (const d of this.runSubscriptions.splice(0)) d.dispose();
    this.live = run;
    this.state = panelStateFromHistory(run, this.imageBaseUri(), this.state.moved);
    this.afterRunDirKnown(run.runDir);
    this.guard.setKnownPaths(this.state.evaluation?.predictions.map((p) => p.path) ?? []);
    this.runSubscriptions.push(
      run.onDidNotify((n) => this.onNotification(n)),
      run.onDidEnd((end) => {
        this.state = { ...this.state, state: end };
        this.post({ type: 'state', state: this.state });
      }),
    );
    this.postState();
  }

  /** Reads the run folder and shows it. */
  async loadFolder(): Promise<void> {
    if (!this.runDir) return;
    const contents = await readRunFolder(this.runDir);
    if (this.disposed) return;
    if (!contents) {
      this.state = { ...this.state, state: 'failed', message: 'The run folder can no longer be read.' };
    } else {
      this.state = panelStateFromRunFolder(contents, this.imageBaseUri(), isProcessAlive, this.state.moved);
      this.guard.setKnownPaths(contents.evaluation?.predictions.map((p) => p.path) ?? []);
    }
    for (const m of this.state.moved) if (m.newPath) this.guard.allow(m.newPath);
    this.afterRunDirKnown(this.runDir);
    const snapshot = JSON.stringify(this.state);
    if (snapshot !== this.lastFolderSnapshot) this.postState();
    this.lastFolderSnapshot = snapshot;
    // A run still going on in another window or process: follow its folder until it ends.
    if (this.state.state === 'running' && !this.disposed) this.pollTimer = setTimeout(() => void this.loadFolder(), FOLDER_POLL_MS);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    for (const d of this.runSubscriptions.splice(0)) d.dispose();
    this.disposeEmitter.fire();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private onNotification(notification: TrainingNotification): void {
    if (notification.type === 'log') return;
    this.state = applyTrainingNotification(this.state, notification);
    switch (notification.type) {
      case 'progress':
        this.post({ type: 'progress', progress: notification.progress });
        return;
      case 'epochEnd':
        this.post({ type: 'epoch', metrics: notification.metrics });
        return;
      case 'started':
        this.afterRunDirKnown(notification.runDir);
        break;
      case 'evaluation':
        this.guard.setKnownPaths(notification.evaluation.predictions.map((p) => p.path));
        for (const m of this.state.moved) if (m.newPath) this.guard.allow(m.newPath);
        break;
      default:
        break;
    }
    this.postState();
  }

  private afterRunDirKnown(runDir: string | undefined): void {
    if (!runDir) return;
    if (!this.live) this.runDir = runDir;
    this.panel.title = `Training: ${path.basename(runDir)}`;
    this.remember(this.state.runId, runDir);
  }

  private postState(): void {
    this.post({ type: 'state', state: this.state });
  }

  /** Nothing is posted before the webview said `ready` (it would be lost); `ready` gets the full state. */
  private post(notification: PanelNotification): void {
    if (!this.ready || this.disposed) return;
    void this.panel.webview.postMessage(
      notification.type === 'state' ? { ...notification, state: withModelChoices(notification.state) } : notification,
    );
  }

  private async onMessage(message: unknown): Promise<void> {
    if (!isPanelCommand(message)) {
      this.deps.log.appendLine(`[panel] ignored a malformed message from the webview: ${safeDescribe(message)}`);
      return;
    }
    const command: PanelCommand = message;
    switch (command.type) {
      case 'ready':
        this.ready = true;
        this.postState();
        return;
      case 'cancel':
        if (this.live && (this.live.state === 'running' || this.live.state === 'starting')) this.live.cancel();
        return;
      case 'retrain': {
        const request = retrainRequest(command);
        if (!request.ok) {
          this.deps.log.appendLine(`[panel] refused retrain: ${request.reason}`);
          return;
        }
        this.deps.retrain(this.datasetRoot, request.model);
        return;
      }
      case 'openImage': {
        const file = await this.checked(command.path, command.type);
        if (!file) return;
        // With the heatmap toggle on: the image with its heatmap, drawn outside the dataset (the image itself if that fails).
        const runDir = command.heatmap ? this.modelRunDir() : undefined;
        const drawing = runDir ? this.deps.heatmaps.drawOverlay(runDir, file) : Promise.resolve(undefined);
        if (runDir) vscode.window.setStatusBarMessage(`$(sync~spin) Drawing the heatmap of ${path.basename(file)}…`, drawing);
        const shown = (await drawing) ?? file;
        await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(shown), {
          viewColumn: vscode.ViewColumn.Beside,
          preview: true,
        });
        return;
      }
      case 'explainImages':
        await this.explainImages(command.paths);
        return;
      case 'revealImage': {
        const file = await this.checked(command.path, command.type);
        if (file) await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(file));
        return;
      }
      case 'moveImage':
        await this.move(command.path, command.toClass);
        return;
    }
  }

  /** The run folder whose model explains images: the live run's or the one read from disk. */
  private modelRunDir(): string | undefined {
    return this.live?.runDir ?? this.runDir;
  }

  /** Heatmaps of the gallery's images: each path checked by the guard, then one `explain` batch for the ones it lets through. */
  private async explainImages(paths: readonly string[]): Promise<void> {
    const { images, refused } = await checkImagesToExplain(this.guard, paths);
    for (const r of refused)
      this.deps.log.appendLine(`[panel] refused explainImages for ${JSON.stringify(r.path.slice(0, 200))}: ${r.reason}`);
    const runDir = this.modelRunDir();
    const result =
      runDir && images.length > 0
        ? await this.deps.heatmaps.explain(runDir, images)
        : {
            type: 'heatmaps' as const,
            heatmaps: [],
            failed: images.map((i) => ({ path: i.relativePath, reason: 'the run has no model yet' })),
          };
    if (this.disposed) return;
    this.post({ ...result, failed: [...result.failed, ...refused.map((r) => ({ path: r.path.slice(0, 4096), reason: r.reason }))] });
  }

  private async checked(candidate: string, action: string): Promise<string | undefined> {
    const result = await this.guard.resolve(candidate);
    if (result.ok) return result.absolutePath;
    this.deps.log.appendLine(`[panel] refused ${action} for ${JSON.stringify(candidate.slice(0, 200))}: ${result.reason}`);
    return undefined;
  }

  private async move(relativePath: string, toClass: string): Promise<void> {
    const evaluation = this.state.evaluation;
    const prediction = evaluation?.predictions.find((p) => p.path === relativePath);
    if (!evaluation || !prediction || this.state.moved.some((m) => m.path === relativePath)) {
      this.deps.log.appendLine(
        `[panel] refused moveImage for ${JSON.stringify(relativePath.slice(0, 200))}: not a movable image of this run`,
      );
      return;
    }
    const fromClass = evaluation.classes[prediction.actual] ?? '';
    const planned = await this.guard.planMove(relativePath, fromClass, toClass, evaluation.classes);
    if (!planned.ok) {
      this.deps.log.appendLine(`[panel] cannot move ${relativePath} to ${toClass}: ${planned.reason}`);
      void vscode.window.showErrorMessage(`Cannot move ${path.posix.basename(relativePath)} to class "${toClass}": ${planned.reason}.`);
      return;
    }
    const choice = await vscode.window.showWarningMessage(
      `Move ${path.posix.basename(relativePath)} from class "${fromClass}" to class "${toClass}"?`,
      {
        modal: true,
        detail: `The file is renamed to ${planned.plan.target.relativePath} inside the dataset folder. Undo (Edit > Undo in the Explorer) puts it back.`,
      },
      'Move',
    );
    if (choice !== 'Move' || this.disposed) return;
    // The dialog may have stayed open for minutes: check again what the paths lead to now.
    const target = await this.guard.recheckMove(planned.plan, fromClass, toClass, evaluation.classes);
    if (!target.ok) {
      this.deps.log.appendLine(`[panel] refused moveImage for ${relativePath}: ${target.reason}`);
      void vscode.window.showErrorMessage(`Did not move ${path.posix.basename(relativePath)}: ${target.reason}.`);
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.renameFile(vscode.Uri.file(planned.plan.from), vscode.Uri.file(target.absolutePath), { overwrite: false, ignoreIfExists: false });
    const applied = await vscode.workspace.applyEdit(edit);
    if (!applied) {
      void vscode.window.showErrorMessage(`Could not move ${relativePath} to ${target.relativePath}.`);
      return;
    }
    this.deps.log.appendLine(`[panel] moved ${relativePath} → ${target.relativePath}`);
    this.guard.allow(target.relativePath);
    this.state = { ...this.state, moved: [...this.state.moved, { path: relativePath, toClass, newPath: target.relativePath }] };
    this.post({ type: 'imageMoved', path: relativePath, toClass, newPath: target.relativePath });
  }

  /** An Undo of a move renames the file back: the image is no longer moved. */
  private onFilesRenamed(files: readonly { oldUri: vscode.Uri; newUri: vscode.Uri }[]): void {
    const absolute = (relative: string): string => path.resolve(this.datasetRoot, ...relative.split('/'));
    const undone = this.state.moved.filter((m) =>
      files.some(
        (f) =>
          m.newPath !== undefined &&
          path.resolve(f.oldUri.fsPath) === absolute(m.newPath) &&
          path.resolve(f.newUri.fsPath) === absolute(m.path),
      ),
    );
    if (undone.length === 0) return;
    this.state = { ...this.state, moved: this.state.moved.filter((m) => !undone.includes(m)) };
    this.deps.log.appendLine(`[panel] move undone: ${undone.map((m) => m.path).join(', ')}`);
    this.postState();
  }

  private imageBaseUri(): string {
    return this.datasetRoot ? this.panel.webview.asWebviewUri(vscode.Uri.file(this.datasetRoot)).toString() : '';
  }

  private html(): string {
    const webview = this.panel.webview;
    return panelHtml({
      cspSource: webview.cspSource,
      nonce: createNonce(),
      scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'webview.js')).toString(),
      styleUri: webview.asWebviewUri(vscode.Uri.joinPath(this.context.extensionUri, 'media', 'panel.css')).toString(),
      title: this.panel.title,
    });
  }
}

function safeDescribe(value: unknown): string {
  try {
    return JSON.stringify(value)?.slice(0, 200) ?? String(value);
  } catch {
    return typeof value;
  }
}
