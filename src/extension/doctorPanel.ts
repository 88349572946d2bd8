// The Dataset Doctor panel controller: one WebviewPanel per dataset showing its latest check (live
// from the doctor process, or read from a check folder's doctor.json), and the fixes it offers.
// Every message from the webview is shape-checked (isDoctorPanelCommand), every finding key must be
// one of the report's and every path goes through ImagePathGuard (a plain relative path, an image
// of the report, inside the dataset after resolving links) before a file is touched. Each fix is one
// WorkspaceEdit (Undo in the Explorer reverts it); Keep is remembered in the runs folder.
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { DoctorReport } from '../shared/doctor';
import {
  findingCount,
  findingsOf,
  isDoctorPanelCommand,
  withoutKept,
  type AppliedFix,
  type DoctorPanelCommand,
  type DoctorPanelNotification,
  type DoctorPanelState,
  type FindingRef,
} from '../shared/protocol/doctorPanel';
import type { TrainingNotification } from '../shared/protocol/training';
import { addKept, readDoctorReport, readKept } from './doctorFiles';
import { ImagePathGuard } from './imagePathGuard';
import { safeDescribe, webviewPageHtml } from './webviewPage';
import type { TrainingRunHandle } from './trainingRunHandle';

export const DOCTOR_PANEL_VIEW_TYPE = 'imageTrainer.doctorPanel';

export interface DoctorPanelDeps {
  log: vscode.OutputChannel;
  /** The dataset roots the workspace's discovery knows: the only roots a fix may touch. */
  knownDatasetRoots(): Promise<readonly string[]>;
  /** Runs folder of a dataset (its checks and the kept findings live there). */
  runsDirOf(datasetRoot: string): string;
  /** Starts a training run on the dataset (Retrain after fixes). */
  retrain(datasetRoot: string): Promise<TrainingRunHandle | undefined>;
  /** Validation accuracy of the dataset's latest finished training run, before the fixes. */
  latestAccuracy(datasetRoot: string): number | undefined;
  /** The user kept a finding: the tree's count changes. */
  onKept(): void;
}

/** A fix as the host remembers it, to recognise its Undo. */
interface FixRecord extends AppliedFix {
  from: string;
  /** Where the file went (rename), absent for the trash. */
  to?: string;
  /** The bytes of a file sent to the trash, so that the panel's Undo can put it back. */
  contents?: Uint8Array;
}

/** Opens and keeps track of one Doctor panel per dataset. */
export class DoctorPanelManager implements vscode.Disposable {
  private readonly panels = new Map<string, DoctorPanel>();

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly deps: DoctorPanelDeps,
  ) {}

  /** Shows the live check `run` in the dataset's Doctor panel. */
  showLive(run: TrainingRunHandle): DoctorPanel {
    const panel = this.panelOf(run.datasetRoot);
    panel.attach(run);
    panel.reveal();
    return panel;
  }

  /** Shows a finished check from its folder. */
  async showCheckFolder(datasetRoot: string, checkDir: string): Promise<DoctorPanel> {
    const panel = this.panelOf(datasetRoot);
    await panel.loadFolder(checkDir);
    panel.reveal();
    return panel;
  }

  /** The open Doctor panel of a dataset, if any. */
  panelFor(datasetRoot: string): DoctorPanel | undefined {
    return this.panels.get(path.resolve(datasetRoot));
  }

  dispose(): void {
    for (const panel of [...this.panels.values()]) panel.dispose();
  }

  private panelOf(datasetRoot: string): DoctorPanel {
    const key = path.resolve(datasetRoot);
    const existing = this.panels.get(key);
    if (existing) return existing;
    const webviewPanel = vscode.window.createWebviewPanel(
      DOCTOR_PANEL_VIEW_TYPE,
      `Dataset Doctor: ${path.basename(datasetRoot)}`,
      vscode.ViewColumn.Active,
      {
        enableScripts: true,
        retainContextWhenHidden: false,
        enableFindWidget: true,
        localResourceRoots: [
          vscode.Uri.joinPath(this.context.extensionUri, 'dist'),
          vscode.Uri.joinPath(this.context.extensionUri, 'media'),
          vscode.Uri.file(key),
        ],
      },
    );
    const panel = new DoctorPanel(webviewPanel, this.context, this.deps, key);
    this.panels.set(key, panel);
    panel.onDidDispose(() => this.panels.delete(key));
    return panel;
  }
}

/** One panel showing the checks of one dataset. */
export class DoctorPanel implements vscode.Disposable {
  private state: DoctorPanelState;
  private report: Omit<DoctorReport, 'dataset'> | undefined;
  private findings = new Map<string, FindingRef>();
  private readonly fixes: FixRecord[] = [];
  private ready = false;
  private disposed = false;
  private readonly guard: ImagePathGuard;
  private readonly disposables: vscode.Disposable[] = [];
  private runSubscriptions: vscode.Disposable[] = [];
  private live: TrainingRunHandle | undefined;
  private readonly disposeEmitter = new vscode.EventEmitter<void>();
  readonly onDidDispose = this.disposeEmitter.event;
  /** What the host refused, newest last (for tests and the log). */
  readonly refusals: string[] = [];

  constructor(
    private readonly panel: vscode.WebviewPanel,
    private readonly context: vscode.ExtensionContext,
    private readonly deps: DoctorPanelDeps,
    readonly datasetRoot: string,
  ) {
    this.guard = new ImagePathGuard(datasetRoot, [], () => deps.knownDatasetRoots());
    this.state = {
      datasetName: path.basename(datasetRoot),
      imageBaseUri: panel.webview.asWebviewUri(vscode.Uri.file(datasetRoot)).toString(),
      state: 'running',
      keptCount: 0,
      fixes: [],
    };
    panel.webview.html = this.html();
    this.disposables.push(
      panel.webview.onDidReceiveMessage((message: unknown) => void this.handleMessage(message)),
      panel.onDidDispose(() => this.dispose()),
      panel.onDidChangeViewState((event) => {
        if (!event.webviewPanel.visible) this.ready = false;
      }),
      vscode.workspace.onDidRenameFiles((event) => this.onUndo(event.files.map((f) => ({ from: f.oldUri.fsPath, to: f.newUri.fsPath })))),
      vscode.workspace.onDidCreateFiles((event) => this.onUndo(event.files.map((f) => ({ to: f.fsPath })))),
      this.disposeEmitter,
    );
  }

  /** The state the panel shows now. */
  get current(): DoctorPanelState {
    return this.state;
  }

  reveal(): void {
    this.panel.reveal();
  }

  /** Follows a live doctor check. */
  attach(run: TrainingRunHandle): void {
    for (const d of this.runSubscriptions.splice(0)) d.dispose();
    this.live = run;
    this.report = undefined;
    this.findings.clear();
    this.state = { ...this.state, state: 'running', progress: undefined, report: undefined, message: undefined, checkName: undefined };
    for (const n of run.history) void this.onNotification(n);
    this.runSubscriptions.push(
      run.onDidNotify((n) => void this.onNotification(n)),
      run.onDidEnd((end) => {
        // `finished` comes with the report (doctorFinished, notified right after); a process that
        // died without one ends as `failed`.
        if (end === 'finished') return;
        const failed = [...run.history].reverse().find((n) => n.type === 'failed');
        this.state = {
          ...this.state,
          state: end === 'starting' || end === 'running' ? 'running' : end,
          message: end === 'cancelled' ? 'The check was cancelled.' : failed?.type === 'failed' ? failed.message : this.state.message,
          progress: undefined,
        };
        this.postState();
      }),
    );
    this.postState();
  }

  /** Shows the check stored in `checkDir`. */
  async loadFolder(checkDir: string): Promise<void> {
    for (const d of this.runSubscriptions.splice(0)) d.dispose();
    this.live = undefined;
    const read = await readDoctorReport(checkDir);
    if ('problem' in read) {
      this.state = { ...this.state, state: 'failed', message: read.problem, report: undefined, checkName: path.basename(checkDir) };
      this.postState();
      return;
    }
    await this.showReport(read.report, path.basename(checkDir));
  }

  /** Handles one message from the webview (public for the host tests, which play an untrusted webview). */
  async handleMessage(message: unknown): Promise<void> {
    if (!isDoctorPanelCommand(message)) return this.refuse(`a malformed message: ${safeDescribe(message)}`);
    const command: DoctorPanelCommand = message;
    switch (command.type) {
      case 'ready':
        this.ready = true;
        this.postState();
        return;
      case 'cancel':
        if (this.live && (this.live.state === 'running' || this.live.state === 'starting')) this.live.cancel();
        return;
      case 'retrain':
        return this.retrain();
      case 'openImage': {
        const file = await this.guard.resolve(command.path);
        if (!file.ok) return this.refuse(`openImage ${JSON.stringify(command.path.slice(0, 200))}: ${file.reason}`);
        await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(file.absolutePath), {
          viewColumn: vscode.ViewColumn.Beside,
          preview: true,
        });
        return;
      }
      case 'moveToClass':
        return this.moveToClass(command.key, command.path, command.toClass);
      case 'moveOut':
        return this.moveOut(command.key, command.path, command.to);
      case 'keep':
        return this.keep(command.key);
      case 'undoFix':
        return this.undoFix(command.path);
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.runSubscriptions.splice(0)) d.dispose();
    this.disposeEmitter.fire();
    for (const d of this.disposables.splice(0)) d.dispose();
    this.panel.dispose();
  }

  private async onNotification(n: TrainingNotification): Promise<void> {
    switch (n.type) {
      case 'started':
        this.state = { ...this.state, checkName: path.basename(n.runDir) };
        this.postState();
        return;
      case 'progress':
        this.state = { ...this.state, progress: n.progress };
        this.post({ type: 'progress', progress: n.progress });
        return;
      case 'doctorFinished':
        await this.showReport(n.report, path.basename(n.runDir));
        return;
      case 'failed':
        this.state = { ...this.state, state: n.kind === 'cancelled' ? 'cancelled' : 'failed', message: n.message, progress: undefined };
        this.postState();
        return;
      default:
        return;
    }
  }

  private async showReport(report: DoctorReport, checkName: string): Promise<void> {
    const { dataset: _absolute, ...relative } = report;
    this.report = relative;
    this.guard.setKnownPaths(findingsOf(relative).flatMap((f) => f.paths));
    this.fixes.splice(0);
    await this.applyKept(checkName);
  }

  /** Rebuilds the shown report without the kept findings. */
  private async applyKept(checkName = this.state.checkName): Promise<void> {
    if (!this.report) return;
    const kept = await readKept(this.deps.runsDirOf(this.datasetRoot), this.datasetRoot);
    const shown = withoutKept(this.report, kept);
    this.findings = new Map(findingsOf(shown).map((f) => [f.key, f]));
    this.state = {
      ...this.state,
      state: 'finished',
      checkName,
      progress: undefined,
      message: undefined,
      report: shown,
      keptCount: findingCount(this.report) - findingCount(shown),
      fixes: this.fixes.map(publicFix),
    };
    this.postState();
  }

  private finding(key: string, imagePath?: string): FindingRef | undefined {
    const finding = this.findings.get(key);
    if (!finding || (imagePath !== undefined && !finding.paths.includes(imagePath))) return undefined;
    if (imagePath !== undefined && this.fixes.some((f) => f.path === imagePath)) return undefined;
    return finding;
  }

  private async moveToClass(key: string, imagePath: string, toClass: string): Promise<void> {
    const name = path.posix.basename(imagePath);
    const finding = this.finding(key, imagePath);
    const issue = this.report?.labelIssues.find((x) => x.path === imagePath);
    if (!finding || finding.kind !== 'labelIssues' || !issue || !this.report)
      return this.refuse(`moveToClass ${JSON.stringify(imagePath.slice(0, 200))}: not an open label issue of this check`);
    const classes = this.report.classes;
    const planned = await this.guard.planMove(imagePath, issue.label, toClass, classes);
    if (!planned.ok)
      return this.refuse(
        `moveToClass ${imagePath} → ${toClass}: ${planned.reason}`,
        `Cannot move ${name} to class "${toClass}": ${planned.reason}.`,
      );
    const choice = await vscode.window.showWarningMessage(
      `Move ${name} from class "${issue.label}" to class "${toClass}"?`,
      {
        modal: true,
        detail: `The file is renamed to ${planned.plan.target.relativePath} inside the dataset folder. Undo (Edit > Undo in the Explorer) puts it back.`,
      },
      'Move',
    );
    if (choice !== 'Move' || this.disposed) return;
    const target = await this.guard.recheckMove(planned.plan, issue.label, toClass, classes);
    if (!target.ok) return this.refuse(`moveToClass ${imagePath}: ${target.reason}`, `Did not move ${name}: ${target.reason}.`);
    const edit = new vscode.WorkspaceEdit();
    edit.renameFile(vscode.Uri.file(planned.plan.from), vscode.Uri.file(target.absolutePath), { overwrite: false });
    if (!(await vscode.workspace.applyEdit(edit)))
      return this.refuse(`moveToClass ${imagePath}: the edit was not applied`, `Could not move ${imagePath} to ${target.relativePath}.`);
    this.guard.allow(target.relativePath);
    this.recordFix({
      key,
      path: imagePath,
      action: 'class',
      toClass,
      newPath: target.relativePath,
      from: planned.plan.from,
      to: target.absolutePath,
    });
  }

  private async moveOut(key: string, imagePath: string, to: 'trash' | 'folder'): Promise<void> {
    const name = path.posix.basename(imagePath);
    if (!this.finding(key, imagePath))
      return this.refuse(`moveOut ${JSON.stringify(imagePath.slice(0, 200))}: not an open finding of this check`);
    const file = await this.guard.resolve(imagePath);
    if (!file.ok) return this.refuse(`moveOut ${imagePath}: ${file.reason}`, `Cannot move ${name} out of the dataset: ${file.reason}.`);
    if (to === 'trash') {
      const choice = await vscode.window.showWarningMessage(
        `Move ${name} out of the dataset, to the trash?`,
        { modal: true, detail: 'Undo (Edit > Undo in the Explorer) restores it.' },
        'Move to Trash',
      );
      if (choice !== 'Move to Trash' || this.disposed) return;
      const again = await this.guard.resolve(imagePath);
      if (!again.ok || again.absolutePath !== file.absolutePath)
        return this.refuse(
          `moveOut ${imagePath}: changed since it was confirmed`,
          `Did not move ${name}: it changed since the move was confirmed.`,
        );
      // A WorkspaceEdit delete goes to the trash (files.enableTrash, where the file system has one)
      // and VS Code can undo it; the bytes are kept too, for the panel's own Undo.
      const contents = await fs.readFile(file.absolutePath);
      const edit = new vscode.WorkspaceEdit();
      edit.deleteFile(vscode.Uri.file(file.absolutePath), { ignoreIfNotExists: false });
      if (!(await vscode.workspace.applyEdit(edit)))
        return this.refuse(`moveOut ${imagePath}: the edit was not applied`, `Could not move ${imagePath} to the trash.`);
      this.recordFix({ key, path: imagePath, action: 'trash', from: file.absolutePath, contents });
      return;
    }
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      openLabel: 'Move Here',
      title: `Move ${name} out of the dataset, to…`,
    });
    const folder = picked?.[0]?.fsPath;
    if (!folder || this.disposed) return;
    const target = await this.guard.moveOutTarget(imagePath, folder);
    if (!target.ok || !target.from)
      return this.refuse(
        `moveOut ${imagePath} → ${folder}: ${target.ok ? 'no source' : target.reason}`,
        `Cannot move ${name} there: ${target.ok ? 'no source' : target.reason}.`,
      );
    const edit = new vscode.WorkspaceEdit();
    edit.renameFile(vscode.Uri.file(target.from), vscode.Uri.file(target.absolutePath), { overwrite: false });
    if (!(await vscode.workspace.applyEdit(edit)))
      return this.refuse(`moveOut ${imagePath}: the edit was not applied`, `Could not move ${imagePath} to ${folder}.`);
    this.recordFix({ key, path: imagePath, action: 'folder', from: target.from, to: target.absolutePath });
  }

  private async keep(key: string): Promise<void> {
    if (!this.finding(key)) return this.refuse(`keep ${JSON.stringify(key.slice(0, 200))}: not a finding of this check`);
    await addKept(this.deps.runsDirOf(this.datasetRoot), this.datasetRoot, key);
    this.deps.log.appendLine(`[doctor] kept ${key} (not shown again)`);
    this.deps.onKept();
    await this.applyKept();
  }

  /** The panel's Undo of a fix: the reverse WorkspaceEdit (rename back, or re-create the trashed file), if the paths still allow it. */
  private async undoFix(imagePath: string): Promise<void> {
    const fix = this.fixes.find((f) => f.path === imagePath);
    if (!fix) return this.refuse(`undoFix ${JSON.stringify(imagePath.slice(0, 200))}: no fix of this image to undo`);
    const exists = (file: string) =>
      fs.lstat(file).then(
        () => true,
        () => false,
      );
    const name = path.posix.basename(imagePath);
    if (await exists(fix.from))
      return this.refuse(`undoFix ${imagePath}: ${fix.from} exists again`, `Cannot put ${name} back: a file of that name is there again.`);
    const edit = new vscode.WorkspaceEdit();
    if (fix.to !== undefined) {
      if (!(await exists(fix.to)))
        return this.refuse(`undoFix ${imagePath}: ${fix.to} is gone`, `Cannot put ${name} back: it is no longer where it was moved.`);
      edit.renameFile(vscode.Uri.file(fix.to), vscode.Uri.file(fix.from), { overwrite: false });
    } else if (fix.contents) {
      edit.createFile(vscode.Uri.file(fix.from), { overwrite: false, contents: fix.contents });
    } else return this.refuse(`undoFix ${imagePath}: nothing kept to restore`);
    if (!(await vscode.workspace.applyEdit(edit)))
      return this.refuse(`undoFix ${imagePath}: the edit was not applied`, `Could not put ${name} back.`);
    this.forgetFixes([fix]);
  }

  private recordFix(fix: FixRecord): void {
    this.fixes.push(fix);
    this.deps.log.appendLine(
      `[doctor] ${fix.action === 'class' ? `moved ${fix.path} → ${fix.newPath}` : `moved ${fix.path} out (${fix.to ?? 'trash'})`}`,
    );
    this.state = { ...this.state, fixes: this.fixes.map(publicFix) };
    this.postState();
  }

  /** A rename back (Undo of a move) or a re-creation (Undo of a delete) reverts the fix. */
  private onUndo(files: readonly { from?: string; to: string }[]): void {
    const same = (a: string | undefined, b: string | undefined) =>
      a !== undefined && b !== undefined && path.resolve(a) === path.resolve(b);
    const undone = this.fixes.filter((fix) =>
      files.some((f) => same(f.to, fix.from) && (fix.to === undefined ? f.from === undefined : same(f.from, fix.to))),
    );
    this.forgetFixes(undone);
  }

  private forgetFixes(undone: readonly FixRecord[]): void {
    const gone = undone.filter((fix) => this.fixes.includes(fix));
    if (gone.length === 0) return;
    for (const fix of gone) this.fixes.splice(this.fixes.indexOf(fix), 1);
    this.deps.log.appendLine(`[doctor] fix undone: ${gone.map((f) => f.path).join(', ')}`);
    this.state = { ...this.state, fixes: this.fixes.map(publicFix) };
    this.postState();
  }

  private async retrain(): Promise<void> {
    if (this.state.retrain?.state === 'running') return this.refuse('retrain: a retrain is already going');
    const before = this.deps.latestAccuracy(this.datasetRoot);
    const run = await this.deps.retrain(this.datasetRoot);
    if (!run || this.disposed) return;
    this.state = { ...this.state, retrain: { state: 'running', before } };
    this.postState();
    const finish = (): void => {
      const finished = [...run.history].reverse().find((n) => n.type === 'finished');
      const after = finished?.type === 'finished' ? finished.summary.valAccuracy : undefined;
      const state = run.state === 'starting' || run.state === 'running' ? 'failed' : run.state;
      this.state = {
        ...this.state,
        retrain: {
          state,
          before,
          ...(after !== undefined ? { after } : {}),
          ...(run.runDir ? { runName: path.basename(run.runDir) } : {}),
        },
      };
      this.postState();
    };
    this.runSubscriptions.push(run.onDidEnd(finish));
  }

  /** Logs (and records) a refused message; a fix the user asked for that could not be applied is also shown, with why. */
  private refuse(what: string, tellUser?: string): void {
    this.refusals.push(what);
    this.deps.log.appendLine(`[doctor] refused ${what}`);
    if (tellUser) void vscode.window.showErrorMessage(tellUser);
  }

  private postState(): void {
    this.post({ type: 'state', state: this.state });
  }

  /** Nothing is posted before the webview said `ready`; `ready` gets the full state. */
  private post(notification: DoctorPanelNotification): void {
    if (!this.ready || this.disposed) return;
    void this.panel.webview.postMessage(notification);
  }

  private html(): string {
    return webviewPageHtml(this.panel.webview, this.context.extensionUri, this.panel.title, 'doctor');
  }
}

function publicFix(fix: FixRecord): AppliedFix {
  return {
    key: fix.key,
    path: fix.path,
    action: fix.action,
    ...(fix.toClass !== undefined ? { toClass: fix.toClass } : {}),
    ...(fix.newPath !== undefined ? { newPath: fix.newPath } : {}),
  };
}
