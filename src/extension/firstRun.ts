// First run: the Getting Started walkthrough, and *Try with Sample Dataset*, which copies the
// shipped sample (samples/leaves, 4 classes of apple leaves) where the user says and trains on it.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { trainClassifier, type CommandServices } from './trainingCommands';

export const WALKTHROUGH_ID = 'image-trainer.image-trainer#imageTrainer.gettingStarted';
const WALKTHROUGH_SHOWN_KEY = 'imageTrainer.walkthroughShown';
// A sample copied into a folder that was not open yet: the window reopens on that folder (which
// restarts the extension host), and the next activation starts the training.
const PENDING_SAMPLE_KEY = 'imageTrainer.pendingSample';
const SAMPLE_NAME = 'leaves-sample';

/** Opens the walkthrough on the first activation, unless the user turned walkthroughs-on-install off. */
export async function openWalkthroughOnFirstRun(context: vscode.ExtensionContext): Promise<void> {
  if (context.globalState.get<boolean>(WALKTHROUGH_SHOWN_KEY)) return;
  await context.globalState.update(WALKTHROUGH_SHOWN_KEY, true);
  if (vscode.workspace.getConfiguration('workbench.welcomePage').get<boolean>('walkthroughs.openOnInstall') === false) return;
  await vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false);
}

/**
 * *Try with Sample Dataset*: asks for a folder (or takes `target`, for tests and links), copies
 * the sample into it as `leaves-sample`, and trains on the copy. A folder outside the workspace is
 * opened first; training then starts when the extension activates in that window.
 */
export async function trySampleDataset(context: vscode.ExtensionContext, services: CommandServices, target?: unknown): Promise<void> {
  const parent = target instanceof vscode.Uri ? target : await pickParentFolder();
  if (!parent) return;
  const dest = await freeChild(parent, SAMPLE_NAME);
  await vscode.workspace.fs.copy(vscode.Uri.joinPath(context.extensionUri, 'samples', 'leaves'), dest);
  services.log.appendLine(`Copied the sample dataset to ${dest.fsPath}`);
  if (vscode.workspace.getWorkspaceFolder(dest)) {
    await trainOnSample(services, dest);
    return;
  }
  await context.globalState.update(PENDING_SAMPLE_KEY, dest.fsPath);
  // The runs folder goes beside the dataset, in the opened folder, never inside the dataset.
  await vscode.commands.executeCommand('vscode.openFolder', parent, { forceReuseWindow: true });
}

/** Starts the training a *Try with Sample Dataset* left pending before the window reopened. */
export async function resumePendingSample(context: vscode.ExtensionContext, services: CommandServices): Promise<void> {
  const pending = context.globalState.get<string>(PENDING_SAMPLE_KEY);
  if (!pending) return;
  const dest = vscode.Uri.file(pending);
  if (!vscode.workspace.getWorkspaceFolder(dest)) return;
  await context.globalState.update(PENDING_SAMPLE_KEY, undefined);
  await trainOnSample(services, dest);
}

async function trainOnSample(services: CommandServices, dest: vscode.Uri): Promise<void> {
  services.datasets.refresh();
  await vscode.commands.executeCommand('revealInExplorer', dest);
  await trainClassifier(services, dest.fsPath);
}

async function pickParentFolder(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    openLabel: 'Copy Sample Here',
    title: `Image Trainer: choose where to put the sample dataset (a ${SAMPLE_NAME} folder is created there)`,
  });
  return picked?.[0];
}

/** `parent/name`, or `parent/name-2`, `-3` … when that exists: a copy never overwrites anything. */
async function freeChild(parent: vscode.Uri, name: string): Promise<vscode.Uri> {
  for (let i = 1; ; i++) {
    const candidate = vscode.Uri.joinPath(parent, i === 1 ? name : `${name}-${i}`);
    try {
      await vscode.workspace.fs.stat(candidate);
    } catch {
      return candidate;
    }
    if (i > 1000) throw new Error(`Too many ${path.join(parent.fsPath, name)} folders`);
  }
}
