// The dataset doctor: out-of-sample predictions for every image, then label issues, near-duplicates,
// outliers, weak images and shortcuts, written to `doctor.json` in a run-like folder.
// (Interface fixed first so the engine and the extension can be built in parallel; the body is
// being written on branch i17-engine.)
import type { DoctorReport } from '../../shared/doctor';
import type { TrainingNotification } from '../../shared/protocol/training';
import type { TrainOptions } from '../../shared/types';

export interface DoctorRequest {
  datasetRoot: string;
  /** Parent of the doctor's run-like folder. */
  runsDir: string;
  cacheDir: string;
  /** Base model, seed, validation split (for `crossesSplit`), backend, limits. */
  options: TrainOptions;
  /** Cross-validation folds (default 5). */
  folds: number;
  extensionRoot?: string;
  modelCacheDir?: string;
  nativeModulePaths?: string[];
}

export interface DoctorResult {
  /** The folder that holds doctor.json (and the log). */
  runDir: string;
  report: DoctorReport;
}

/** Runs the doctor; progress and log lines go to `notify` as during training. */
export async function runDoctor(req: DoctorRequest, notify: (n: TrainingNotification) => void, signal: AbortSignal): Promise<DoctorResult> {
  void req;
  void notify;
  void signal;
  throw new Error('runDoctor: not built yet (branch i17-engine)');
}
