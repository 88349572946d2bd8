// The training process as a child of the extension host: waits for a StartCommand (a training run)
// or a DoctorCommand (the dataset doctor) over IPC, streams TrainingNotifications back, and stops
// cooperatively on a CancelCommand.
import { isTrainingCommand, type DoctorCommand, type StartCommand, type TrainingNotification } from '../shared/protocol/training';
import { nativeModuleSearchPaths } from './backend/nativeBackendInstall';
import { runDoctor } from './doctor/runDoctor';
import { runTraining } from './run/runTraining';
import { errorKindOf } from './util/errors';

/** Serves one training run over the IPC channel of a forked process, then exits. */
export function serveChildProcess(extensionRoot: string): void {
  const cancel = new AbortController();
  let started = false;
  const send = (n: TrainingNotification) => {
    if (process.connected) process.send?.(n);
  };

  process.on('message', (msg: unknown) => {
    if (!isTrainingCommand(msg)) {
      send({ type: 'log', level: 'warn', message: `Ignored an unknown message: ${JSON.stringify(msg).slice(0, 200)}` });
      return;
    }
    if (msg.type === 'cancel') {
      cancel.abort();
      send({ type: 'log', level: 'info', message: 'Cancel requested: stopping after the current batch.' });
      return;
    }
    if (started) return;
    started = true;
    void run(msg, send, cancel, extensionRoot);
  });
  // A parent that goes away must not leave the training running as an orphan.
  process.on('disconnect', () => {
    cancel.abort();
    setTimeout(() => process.exit(0), 5000).unref();
  });
}

async function run(
  cmd: StartCommand | DoctorCommand,
  send: (n: TrainingNotification) => void,
  cancel: AbortController,
  extensionRoot: string,
): Promise<never> {
  let code = 0;
  const request = {
    datasetRoot: cmd.datasetRoot,
    runsDir: cmd.runsDir,
    cacheDir: cmd.cacheDir,
    options: cmd.options,
    extensionRoot,
    modelCacheDir: cmd.modelCacheDir,
    nativeModulePaths: cmd.nativeBackendsDir ? nativeModuleSearchPaths(cmd.nativeBackendsDir) : undefined,
  };
  try {
    if (cmd.type === 'doctor') {
      const { runDir, report } = await runDoctor({ ...request, folds: cmd.folds }, send, cancel.signal);
      await sendLast({ type: 'doctorFinished', runDir, report });
    } else {
      await sendLast({ type: 'finished', summary: await runTraining(request, send, cancel.signal) });
    }
  } catch (err) {
    code = 1;
    await sendLast({
      type: 'failed',
      message: err instanceof Error ? err.message : String(err),
      kind: errorKindOf(err),
      runDir: (err as { runDir?: string } | undefined)?.runDir,
    });
  }
  process.exit(code);
}

/** Sends the final message and resolves once it has been handed to the IPC channel. */
function sendLast(n: TrainingNotification): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(n, undefined, {}, () => resolve());
  });
}
