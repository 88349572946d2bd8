// Progress of live runs in the editor: a cancellable notification per run (stage, epoch, ETA) and
// one status bar item while any run is going; clicking it opens the panel.
import * as vscode from 'vscode';
import { describeProgress, overallPercent } from './progressText';
import type { TrainingProcessManager, TrainingRun } from './trainingProcess';

/** Shows the progress of every run the manager starts. */
export class TrainingProgressReporter implements vscode.Disposable {
  private readonly statusBar = vscode.window.createStatusBarItem('imageTrainer.training', vscode.StatusBarAlignment.Left, 50);
  private readonly disposables: vscode.Disposable[] = [];
  private readonly lines = new Map<string, string>();

  constructor(private readonly manager: TrainingProcessManager) {
    this.statusBar.name = 'Image Trainer';
    this.statusBar.command = 'imageTrainer.openPanel';
    this.disposables.push(
      this.statusBar,
      manager.onDidStartRun((run) => this.track(run)),
      manager.onDidEndRun(() => this.updateStatusBar()),
      manager.onDidExitRun(() => this.updateStatusBar()),
    );
  }

  private track(run: TrainingRun): void {
    this.lines.set(run.id, 'Starting…');
    this.updateStatusBar();
    void vscode.commands.executeCommand('setContext', 'imageTrainer.trainingActive', true);
    void vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: run.kind === 'doctor' ? `Checking ${run.datasetName}` : `Training on ${run.datasetName}`,
        cancellable: true,
      },
      (progress, token) =>
        new Promise<void>((resolve) => {
          let reported = 0;
          const subscriptions: vscode.Disposable[] = [];
          const finish = (): void => {
            for (const s of subscriptions) s.dispose();
            resolve();
          };
          subscriptions.push(
            token.onCancellationRequested(() => {
              run.cancel();
              progress.report({
                message:
                  run.kind === 'doctor'
                    ? 'Cancelling the check…'
                    : 'Cancelling: finishing the current batch and keeping the best checkpoint…',
              });
            }),
            run.onDidNotify((message) => {
              if (message.type !== 'progress' && message.type !== 'started') return;
              const line =
                message.type === 'started'
                  ? `${message.backend.backend} backend, ${message.model.name}`
                  : describeProgress(message.progress, run.kind);
              const percent = message.type === 'progress' ? overallPercent(message.progress) : reported;
              // `increment` adds up; never go backwards.
              const increment = Math.max(0, percent - reported);
              reported += increment;
              progress.report({ message: line, increment });
              this.lines.set(run.id, line);
              this.updateStatusBar();
            }),
            run.onDidEnd(finish),
          );
          if (run.isEnded) finish();
          // A process that dies silently still ends the notification.
          void run.exited.then(finish);
        }),
    );
    void run.exited.then(() => {
      this.lines.delete(run.id);
      this.updateStatusBar();
    });
  }

  private updateStatusBar(): void {
    const runs = this.manager.activeRuns.filter((r) => !r.isEnded);
    void vscode.commands.executeCommand('setContext', 'imageTrainer.trainingActive', runs.length > 0);
    if (runs.length === 0) {
      this.statusBar.hide();
      return;
    }
    if (runs.length === 1) {
      const [run] = runs;
      this.statusBar.text = `$(sync~spin) ${run.datasetName}: ${this.lines.get(run.id) ?? 'starting…'}`;
      this.statusBar.tooltip = `Image Trainer is training on ${run.datasetRoot}. Click to open the training panel.`;
    } else {
      this.statusBar.text = `$(sync~spin) Training ${runs.length} classifiers`;
      this.statusBar.tooltip = runs.map((r) => `${r.datasetName}: ${this.lines.get(r.id) ?? 'starting…'}`).join('\n');
    }
    this.statusBar.show();
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}
