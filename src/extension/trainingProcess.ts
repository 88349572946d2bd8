// The training process manager: forks the training bundle once per run (a training run or a
// dataset doctor check), speaks the typed IPC protocol (src/shared/protocol/training.ts), allows one
// process per dataset at a time, cancels
// cooperatively then by signal, repairs the run folder of a process that died, and stops every
// child on deactivation.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isTrainingNotification } from '../shared/protocol/training';
import type { CancelCommand, DoctorCommand, StartCommand, TrainingNotification } from '../shared/protocol/training';
import type { ErrorKind, TrainOptions } from '../shared/types';
import { closeInterruptedRun, listRuns, samePath } from './runIndex';
import { stopChildProcess } from './trainingCli';
import type { LiveRunState, TrainingRunHandle } from './trainingRunHandle';

export interface StartRequest {
  datasetRoot: string;
  runsDir: string;
  cacheDir: string;
  options: TrainOptions;
  /** Working folder of the child (the dataset's workspace folder). */
  cwd?: string;
  modelCacheDir?: string;
  nativeBackendsDir?: string;
  /** Set for a dataset doctor check (read-only) instead of a training run: its cross-validation folds. */
  doctorFolds?: number;
}

/** What a forked process does: train, or check the dataset (the doctor). */
export type ProcessKind = 'train' | 'doctor';

/** Grace periods of a cancel: the child's own stop, then SIGTERM, then SIGKILL. */
export interface StopTimings {
  askMs: number;
  termMs: number;
}

/** A user's cancel: the child gets 10 s to finish its batch and save, as the contract promises. */
export const CANCEL_TIMINGS: StopTimings = { askMs: 10_000, termMs: 5_000 };
/** Deactivation: VS Code waits only a few seconds for an extension to stop. */
export const SHUTDOWN_TIMINGS: StopTimings = { askMs: 2_000, termMs: 1_500 };

/** Thrown by `start` when the dataset already has a run going. */
export class RunInProgressError extends Error {
  constructor(readonly run: TrainingRun) {
    super(`${run.kind === 'doctor' ? 'A dataset check' : 'A training run'} for ${path.basename(run.datasetRoot)} is already going.`);
    this.name = 'RunInProgressError';
  }
}

let nextRunNumber = 1;

/** One forked training process and what it has said. */
export class TrainingRun implements TrainingRunHandle, vscode.Disposable {
  readonly id = `run-${process.pid}-${nextRunNumber++}`;
  readonly datasetRoot: string;
  readonly datasetName: string;
  readonly startedAt = Date.now();
  /** Resolves once the process has exited (and the run folder is consistent). */
  readonly exited: Promise<void>;
  /** Why the run failed, in words, when it did. */
  failureMessage: string | undefined;
  /** What kind of failure it was (the host offers the action that fits); `internal` when the process died. */
  failureKind: ErrorKind | undefined;

  private _runDir: string | undefined;
  private _state: LiveRunState = 'starting';
  private readonly events: TrainingNotification[] = [];
  private latestProgress: TrainingNotification | undefined;
  private cancelRequested = false;
  private stopping: Promise<unknown> | undefined;
  private readonly notifyEmitter = new vscode.EventEmitter<TrainingNotification>();
  private readonly endEmitter = new vscode.EventEmitter<LiveRunState>();
  readonly onDidNotify = this.notifyEmitter.event;
  readonly onDidEnd = this.endEmitter.event;

  private constructor(
    private readonly child: ChildProcess,
    private readonly request: StartRequest,
    private readonly log: vscode.OutputChannel,
  ) {
    this.datasetRoot = request.datasetRoot;
    this.datasetName = path.basename(request.datasetRoot);
    this.exited = new Promise((resolve) => {
      let settled = false;
      const onGone = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
        if (settled) return;
        settled = true;
        void this.handleExit(code, signal, spawnError).finally(resolve);
      };
      child.once('exit', (code, signal) => onGone(code, signal));
      child.once('error', (error) => {
        // `error` without a process (spawn failure) never gets an `exit`.
        if (child.pid === undefined) onGone(null, null, error);
        else this.log.appendLine(`[${this.datasetName}] process error: ${error.message}`);
      });
    });
    child.on('message', (message: unknown) => this.handleMessage(message));
    const pipe = (stream: NodeJS.ReadableStream | null, name: string): void => {
      stream?.setEncoding('utf8');
      let pending = '';
      stream?.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split(/\r?\n/);
        pending = lines.pop() ?? '';
        for (const line of lines) this.log.appendLine(`[${this.datasetName} ${name}] ${line}`);
      });
      stream?.on('end', () => {
        if (pending) this.log.appendLine(`[${this.datasetName} ${name}] ${pending}`);
      });
    };
    pipe(child.stdout, 'stdout');
    pipe(child.stderr, 'stderr');
  }

  /** Forks the training bundle and sends it the start command. */
  static start(bundlePath: string, request: StartRequest, log: vscode.OutputChannel): TrainingRun {
    const child = fork(bundlePath, [], {
      cwd: request.cwd,
      // The extension host's own flags (--inspect…) must not leak into the child.
      execArgv: [],
      serialization: 'json',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const run = new TrainingRun(child, request, log);
    log.appendLine(
      `[${run.datasetName}] training process ${child.pid ?? '(not started)'} for ${request.datasetRoot}, runs in ${request.runsDir}`,
    );
    const common = {
      datasetRoot: request.datasetRoot,
      runsDir: request.runsDir,
      cacheDir: request.cacheDir,
      options: request.options,
      modelCacheDir: request.modelCacheDir,
      nativeBackendsDir: request.nativeBackendsDir,
    };
    run.send(request.doctorFolds === undefined ? { type: 'start', ...common } : { type: 'doctor', ...common, folds: request.doctorFolds });
    return run;
  }

  /** A training run, or a doctor check of the dataset. */
  get kind(): ProcessKind {
    return this.request.doctorFolds === undefined ? 'train' : 'doctor';
  }

  get runDir(): string | undefined {
    return this._runDir;
  }

  /** The options the run was started with, so a retry trains the same way. */
  get options(): TrainOptions {
    return this.request.options;
  }

  get state(): LiveRunState {
    return this._state;
  }

  get history(): readonly TrainingNotification[] {
    return this.latestProgress ? [...this.events, this.latestProgress] : [...this.events];
  }

  /** The latest progress message, if any. */
  get progress(): TrainingNotification | undefined {
    return this.latestProgress;
  }

  /** Process id of the training process (undefined if it could not start). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until the process has exited. */
  get isAlive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null && this.child.pid !== undefined;
  }

  get isEnded(): boolean {
    return this._state === 'finished' || this._state === 'failed' || this._state === 'cancelled';
  }

  cancel(): void {
    void this.stop(CANCEL_TIMINGS);
  }

  /** Asks the child to stop (keeping its best checkpoint), escalating to signals; resolves when it is gone. */
  stop(timings: StopTimings): Promise<void> {
    if (!this.isAlive) return this.exited;
    if (!this.isEnded) this.cancelRequested = true;
    this.stopping ??= stopChildProcess(this.child, {
      ...timings,
      ask: () => {
        const cancel: CancelCommand = { type: 'cancel' };
        this.send(cancel);
      },
    }).then((how) => {
      if (how !== 'exited')
        this.log.appendLine(`[${this.datasetName}] the training process did not stop when asked; it was ${how} by signal`);
    });
    return this.exited;
  }

  dispose(): void {
    this.notifyEmitter.dispose();
    this.endEmitter.dispose();
  }

  private send(command: StartCommand | DoctorCommand | CancelCommand): void {
    if (!this.child.connected) return;
    this.child.send(command, (error) => {
      if (error) this.log.appendLine(`[${this.datasetName}] could not send ${command.type}: ${error.message}`);
    });
  }

  private handleMessage(message: unknown): void {
    if (!isTrainingNotification(message)) {
      this.log.appendLine(
        `[${this.datasetName}] ignored a message that is not a training notification: ${JSON.stringify(message)?.slice(0, 200)}`,
      );
      return;
    }
    switch (message.type) {
      case 'progress':
        this.latestProgress = message;
        break;
      case 'log':
        this.log.appendLine(`[${this.datasetName} ${message.level}] ${message.message}`);
        break;
      case 'started':
        this._runDir = message.runDir;
        this._state = 'running';
        this.events.push(message);
        this.log.appendLine(
          `[${this.datasetName}] started: ${message.runDir}; backend ${message.backend.backend} (${message.backend.summary}); model ${message.model.id}`,
        );
        break;
      case 'epochEnd':
        this.events.push(message);
        break;
      case 'evaluation':
        this.events.push(message);
        break;
      case 'doctorFinished':
        this.events.push(message);
        this._runDir ??= message.runDir;
        this.log.appendLine(`[${this.datasetName}] dataset check finished: ${message.runDir}`);
        this.end('finished');
        break;
      case 'finished':
        this.events.push(message);
        this._runDir ??= message.summary.runDir;
        this.log.appendLine(
          `[${this.datasetName}] ${message.summary.cancelled ? 'cancelled' : 'finished'}: validation accuracy ${(message.summary.valAccuracy * 100).toFixed(1)}% (best epoch ${message.summary.bestEpoch})`,
        );
        this.end(message.summary.cancelled ? 'cancelled' : 'finished');
        break;
      case 'failed':
        this.events.push(message);
        this._runDir ??= message.runDir;
        if (message.kind === 'cancelled') {
          // A cancel that surfaced as an error is still the cancel the user asked for.
          this.log.appendLine(`[${this.datasetName}] cancelled: ${message.message}`);
          this.end('cancelled');
          break;
        }
        this.failureMessage = message.message;
        this.failureKind = message.kind;
        this.log.appendLine(`[${this.datasetName}] failed (${message.kind}): ${message.message}`);
        this.end('failed');
        break;
      default: {
        const unreachable: never = message;
        void unreachable;
      }
    }
    this.notifyEmitter.fire(message);
  }

  private end(state: LiveRunState): void {
    if (this.isEnded) return;
    this._state = state;
    this.endEmitter.fire(state);
  }

  private async handleExit(code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): Promise<void> {
    this.log.appendLine(`[${this.datasetName}] training process exited (${signal ? `signal ${signal}` : `code ${code}`})`);
    if (this.isEnded) return;
    const how = spawnError ? `could not start: ${spawnError.message}` : signal ? `was killed (${signal})` : `exited with code ${code}`;
    const state: 'failed' | 'cancelled' = this.cancelRequested ? 'cancelled' : 'failed';
    const message =
      state === 'cancelled'
        ? `${this.kind === 'doctor' ? 'The dataset check' : 'Training'} was cancelled; the training process ${how} before saying so.`
        : `The training process ${how} before the ${this.kind === 'doctor' ? 'dataset check' : 'run'} ended.`;
    try {
      // The child dies before `started` only rarely; find its folder by the pid it wrote.
      this._runDir ??= (await listRuns(this.request.runsDir)).find(
        (r) => r.status.pid === this.child.pid && samePath(r.status.datasetRoot, this.datasetRoot),
      )?.runDir;
      if (this._runDir && (await closeInterruptedRun(this._runDir, state, message))) {
        this.log.appendLine(`[${this.datasetName}] marked ${this._runDir} as ${state}`);
      }
    } catch (error) {
      this.log.appendLine(`[${this.datasetName}] could not update the run folder: ${(error as Error).message}`);
    }
    if (state === 'failed') {
      this.failureMessage = message;
      this.failureKind = 'internal';
    }
    this.log.appendLine(`[${this.datasetName}] ${message}`);
    const notification: TrainingNotification = { type: 'failed', message, kind: 'internal', runDir: this._runDir };
    if (state === 'failed') {
      this.events.push(notification);
      this.notifyEmitter.fire(notification);
    }
    this.end(state);
  }
}

/** Owns every training process of the session. */
export class TrainingProcessManager implements vscode.Disposable {
  private readonly runs = new Set<TrainingRun>();
  private readonly startEmitter = new vscode.EventEmitter<TrainingRun>();
  private readonly endEmitter = new vscode.EventEmitter<TrainingRun>();
  private readonly exitEmitter = new vscode.EventEmitter<TrainingRun>();
  /** A run was started. */
  readonly onDidStartRun = this.startEmitter.event;
  /** A run ended (finished, failed, cancelled, or its process died). */
  readonly onDidEndRun = this.endEmitter.event;
  /** A run's process is gone and its run folder is consistent. */
  readonly onDidExitRun = this.exitEmitter.event;
  private stopAllPromise: Promise<void> | undefined;

  constructor(
    private readonly bundlePath: string,
    private readonly log: vscode.OutputChannel,
  ) {}

  /** Runs whose process is still alive, oldest first. */
  get activeRuns(): TrainingRun[] {
    return [...this.runs];
  }

  /** The live run of a dataset, if any. */
  runFor(datasetRoot: string): TrainingRun | undefined {
    return this.activeRuns.find((r) => samePath(r.datasetRoot, datasetRoot));
  }

  /** The live run with this id, if any. */
  runById(id: string): TrainingRun | undefined {
    return this.activeRuns.find((r) => r.id === id);
  }

  /** Starts a run; throws RunInProgressError when the dataset already has one. */
  start(request: StartRequest): TrainingRun {
    if (this.stopAllPromise) throw new Error('Image Trainer is shutting down.');
    const existing = this.runFor(request.datasetRoot);
    if (existing) throw new RunInProgressError(existing);
    const run = TrainingRun.start(this.bundlePath, request, this.log);
    this.runs.add(run);
    run.onDidEnd(() => this.endEmitter.fire(run));
    void run.exited.then(() => {
      this.runs.delete(run);
      this.exitEmitter.fire(run);
    });
    this.startEmitter.fire(run);
    return run;
  }

  /** Stops every child (cancel, then signals) and resolves when all have exited. */
  stopAll(timings: StopTimings = SHUTDOWN_TIMINGS): Promise<void> {
    this.stopAllPromise ??= Promise.all(this.activeRuns.map((r) => r.stop(timings))).then(() => undefined);
    return this.stopAllPromise;
  }

  dispose(): void {
    void this.stopAll();
    this.startEmitter.dispose();
    this.endEmitter.dispose();
  }
}
