// The contract between the training process manager and the panel controller: one live run.
import type * as vscode from 'vscode';
import type { TrainingNotification } from '../shared/protocol/training';

export type LiveRunState = 'starting' | 'running' | 'finished' | 'failed' | 'cancelled';

/** A training run the extension started; the panel subscribes to it. */
export interface TrainingRunHandle {
  /** Unique per extension session. */
  readonly id: string;
  readonly datasetRoot: string;
  /** Known once the child reported `started`. */
  readonly runDir: string | undefined;
  readonly state: LiveRunState;
  /** Every notification received so far except `progress` (and `log`), in order, plus the latest progress. */
  readonly history: readonly TrainingNotification[];
  readonly onDidNotify: vscode.Event<TrainingNotification>;
  /** Fires once when the run ends (finished, failed, cancelled or the process died). */
  readonly onDidEnd: vscode.Event<LiveRunState>;
  /** Cooperative cancel: the child stops after the current batch and keeps the best checkpoint. */
  cancel(): void;
}
