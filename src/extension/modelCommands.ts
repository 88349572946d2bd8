// Commands around models and engines: install a native tfjs backend on demand, and export a
// trained classifier to ONNX. Both run in the training bundle's CLI, never in the extension host.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { RUN_FILES } from '../shared/runFolder';
import { runTrainingCli } from './trainingCli';
import { runDirFrom, type CommandServices } from './trainingCommands';

/** Install GPU Backend: npm-installs tfjs-node-gpu (or tfjs-node) into the extension's storage, with npm's output in the log. */
export async function installNativeBackend(services: CommandServices, bundlePath: string): Promise<boolean> {
  const choice = await vscode.window.showQuickPick(
    [
      {
        label: 'GPU (CUDA)',
        description: '@tensorflow/tfjs-node-gpu 4.22 — needs an NVIDIA driver, CUDA 11.x and cuDNN 8',
        backend: 'gpu' as const,
      },
      { label: 'Native CPU', description: '@tensorflow/tfjs-node 4.22 — faster than WebAssembly on most CPUs', backend: 'cpu' as const },
    ],
    { title: 'Install a native TensorFlow backend', placeHolder: 'Which backend?' },
  );
  if (!choice) return false;
  const dir = services.storage.nativeBackendsDir;
  services.log.show(true);
  services.log.appendLine(`[install-backend] installing ${choice.label} into ${dir}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Installing the ${choice.label} backend (npm)…`, cancellable: true },
    (_progress, token) => {
      const abort = new AbortController();
      token.onCancellationRequested(() => abort.abort());
      return runTrainingCli(bundlePath, ['install-backend', choice.backend, '--dir', dir], {
        signal: abort.signal,
        onOutput: (line) => services.log.appendLine(`[install-backend] ${line}`),
      });
    },
  );
  const lastLine = (result.code === 0 ? result.stdout : result.stderr || result.stdout).trim().split(/\r?\n/).pop() ?? '';
  if (result.code === 0) {
    void services.notices.info(`${choice.label} backend installed. ${lastLine}`, 'Show Backend Diagnostics').then((next) => {
      if (next) void vscode.commands.executeCommand('imageTrainer.showBackendDiagnostics');
    });
    return true;
  }
  void services.notices
    .error(`Installing the ${choice.label} backend failed: ${lastLine || `npm exited with ${result.signal ?? result.code}`}`, 'Show Log')
    .then((c) => {
      if (c) services.log.show();
    });
  return false;
}

/** Export to ONNX: writes `<run>/model.onnx` (raw RGB pixels in, class probabilities out); returns its path. */
export async function exportOnnx(services: CommandServices, bundlePath: string, arg?: unknown): Promise<string | undefined> {
  const runDir = await runDirFrom(services, arg, 'Export Classifier to ONNX');
  if (!runDir) return undefined;
  if (!fs.existsSync(path.join(runDir, RUN_FILES.modelDir, 'model.json'))) {
    void services.notices.warn(`${path.basename(runDir)} has no trained model to export.`);
    return undefined;
  }
  const out = path.join(runDir, 'model.onnx');
  const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'Exporting to ONNX…' }, () =>
    runTrainingCli(bundlePath, ['export-onnx', runDir, '--out', out], { timeoutMs: 300_000 }),
  );
  services.log.appendLine(`[export-onnx] exit ${result.signal ?? result.code}\n${result.stdout}${result.stderr}`);
  if (result.code !== 0) {
    void services.notices.error(`Export to ONNX failed: ${result.stderr.trim().split(/\r?\n/).pop() ?? 'see the log'}`);
    return undefined;
  }
  void vscode.window.showInformationMessage(`Exported to ${out}`, 'Reveal in Explorer').then((c) => {
    if (c) void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out));
  });
  return out;
}
