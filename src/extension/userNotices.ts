// Messages to the user, also written to the "Image Trainer" output channel and kept in a list, so
// the log tells the whole story and the host tests can see what the user was told.
import * as vscode from 'vscode';

export interface Notice {
  level: 'info' | 'warning' | 'error';
  message: string;
  at: number;
}

/** Shows notifications and records them. */
export class UserNotices {
  private readonly list: Notice[] = [];
  private readonly emitter = new vscode.EventEmitter<Notice>();
  /** Fires for every notice shown. */
  readonly onDidNotify = this.emitter.event;

  constructor(private readonly log: vscode.OutputChannel) {}

  /** Every notice shown this session, oldest first. */
  get shown(): readonly Notice[] {
    return this.list;
  }

  /** An information message; resolves with the chosen item. */
  info<T extends string>(message: string, ...items: T[]): Thenable<T | undefined> {
    this.record('info', message);
    return vscode.window.showInformationMessage(message, ...items);
  }

  /** A warning message; resolves with the chosen item. */
  warn<T extends string>(message: string, ...items: T[]): Thenable<T | undefined> {
    this.record('warning', message);
    return vscode.window.showWarningMessage(message, ...items);
  }

  /** An error message with "Show Log" added; resolves with the chosen item (the log is shown by itself). */
  error<T extends string>(message: string, ...items: T[]): Thenable<T | 'Show Log' | undefined> {
    this.record('error', message);
    return vscode.window.showErrorMessage<T | 'Show Log'>(message, ...items, 'Show Log').then((choice) => {
      if (choice === 'Show Log') this.log.show(true);
      return choice;
    });
  }

  private record(level: Notice['level'], message: string): void {
    const notice = { level, message, at: Date.now() };
    this.list.push(notice);
    this.log.appendLine(`[${level}] ${message}`);
    this.emitter.fire(notice);
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
