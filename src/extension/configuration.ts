// Typed access to the `imageTrainer.*` settings: values validated by settingsSchema.ts, problems
// reported once per distinct message, and the runs/cache folders resolved for a dataset.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SETTINGS_SECTION, validateSettings } from './settingsSchema';
import type { ValidatedSettings } from './settingsSchema';

/** The settings that apply to `scope` (a dataset folder or file), validated. */
export function readSettings(scope?: vscode.Uri): ValidatedSettings {
  const config = vscode.workspace.getConfiguration(SETTINGS_SECTION, scope);
  return validateSettings((name) => {
    // `inspect` tells an unset value from one set to the default; only set values are validated.
    const inspected = config.inspect(name);
    if (!inspected) return undefined;
    return (
      inspected.workspaceFolderLanguageValue ??
      inspected.workspaceFolderValue ??
      inspected.workspaceLanguageValue ??
      inspected.workspaceValue ??
      inspected.globalLanguageValue ??
      inspected.globalValue
    );
  });
}

/** Folders the extension owns in its global storage (on the machine that trains, under Remote). */
export interface StorageLocations {
  /** Downloaded base models: `<modelCacheDir>/models/<id>/`. */
  modelCacheDir: string;
  /** Native tfjs backends installed by "Install GPU Backend". */
  nativeBackendsDir: string;
}

/** The global-storage folders of this extension. */
export function storageLocations(context: vscode.ExtensionContext): StorageLocations {
  const root = context.globalStorageUri.fsPath;
  return { modelCacheDir: path.join(root, 'model-cache'), nativeBackendsDir: path.join(root, 'native-backends') };
}

export interface RunLocations {
  runsDir: string;
  cacheDir: string;
  /** The workspace folder the defaults and relative paths are resolved against. */
  base: string;
}

/** Where runs and the feature cache of a dataset go (contracts.md: `<workspace>/.image-trainer/…` by default). */
export function runLocationsFor(datasetRoot: string, settings: ValidatedSettings['settings']): RunLocations {
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(datasetRoot));
  // A dataset outside the workspace keeps its runs beside itself, never inside it.
  const base = folder?.uri.fsPath ?? path.dirname(datasetRoot);
  const resolve = (value: string, fallback: string): string =>
    value === '' ? path.join(base, '.image-trainer', fallback) : path.resolve(base, value);
  return { runsDir: resolve(settings.runsFolder, 'runs'), cacheDir: resolve(settings.cacheFolder, 'cache'), base };
}

/** Every runs folder the workspace's settings point to (one per workspace folder, deduplicated). */
export function allRunsFolders(): string[] {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const dirs = folders.map((f) => runLocationsFor(path.join(f.uri.fsPath, '_'), readSettings(f.uri).settings).runsDir);
  return [...new Set(dirs)];
}

/** Shows each distinct settings problem once per session, with a button that opens the setting. */
export class SettingsProblemReporter implements vscode.Disposable {
  private readonly shown = new Set<string>();
  private readonly listener: vscode.Disposable;

  constructor(private readonly log: vscode.OutputChannel) {
    this.listener = vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration(SETTINGS_SECTION)) this.check();
    });
  }

  /** Validates the current settings and warns about new problems; returns every current problem. */
  check(scope?: vscode.Uri): ValidatedSettings {
    const validated = readSettings(scope);
    for (const problem of validated.problems) {
      if (this.shown.has(problem.message)) continue;
      this.shown.add(problem.message);
      this.log.appendLine(`[settings] ${problem.message}`);
      void vscode.window.showWarningMessage(problem.message, 'Open Setting').then((choice) => {
        if (choice) void vscode.commands.executeCommand('workbench.action.openSettings', problem.key);
      });
    }
    return validated;
  }

  dispose(): void {
    this.listener.dispose();
  }
}
