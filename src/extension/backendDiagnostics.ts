// Show Backend Diagnostics: asks the training bundle which backend would run (`diagnose --json`)
// and shows why the faster ones are unavailable and what to do, as a Markdown page.
import * as vscode from 'vscode';
import type { BackendInfo } from '../shared/types';
import { readSettings, type StorageLocations } from './configuration';
import { formatBackendReport, parseDiagnoseOutput, runTrainingCli } from './trainingCli';
import type { UserNotices } from './userNotices';

/** Runs the diagnosis and opens the report; returns what the training process said. */
export async function showBackendDiagnostics(
  context: vscode.ExtensionContext,
  bundlePath: string,
  log: vscode.OutputChannel,
  notices: UserNotices,
  storage: StorageLocations,
): Promise<BackendInfo | undefined> {
  const preference = readSettings().settings.train.backend;
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'Checking the training backends…' },
    () =>
      runTrainingCli(bundlePath, ['diagnose', '--json', '--backend', preference, '--native-dir', storage.nativeBackendsDir], {
        timeoutMs: 120_000,
      }),
  );
  log.appendLine(`[diagnose] exit ${result.signal ?? result.code}\n${result.stdout}${result.stderr}`);
  const info = parseDiagnoseOutput(result.stdout);
  if (!info) {
    const why = result.stderr.trim().split(/\r?\n/).pop() || `the training process exited with ${result.signal ?? `code ${result.code}`}`;
    void notices.error(`Backend diagnostics failed: ${why}`);
    return undefined;
  }
  const page = vscode.Uri.joinPath(context.globalStorageUri, 'backend-diagnostics.md');
  // Through workspace.fs: the storage folder is not always a `file:` Uri (remote, web).
  await vscode.workspace.fs.createDirectory(context.globalStorageUri);
  await vscode.workspace.fs.writeFile(page, new TextEncoder().encode(formatBackendReport(info, preference)));
  await vscode.commands.executeCommand('markdown.showPreview', page);
  void notices.info(info.summary);
  return info;
}
