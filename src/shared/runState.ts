// How a reader (the CLI, the tree, the panel) reads a run's state: status.json reconciled with the
// model folder's own record. status.json is rewritten after the model is committed, so a process
// killed in between leaves a status that names older weights than the folder holds; the model
// folder's record is committed by the same rename as the model, so it wins.
import { CHECKPOINT_KEY, type ModelCheckpoint, type ModelFolderRecord, type RunStateReading, type RunStatus } from './runFolder';

/** A run as a reader shows it. */
export interface RunReading {
  state: RunStateReading;
  /** status.json with the model folder's epoch, accuracy and checkpoint flag where they differed. */
  status: RunStatus;
  /** True when status.json disagreed with the model folder and the folder's record was used. */
  correctedFromModel: boolean;
}

/**
 * How much later than the run's start a live process with the run's pid may have started and still
 * be the run's own. The run's process starts before it writes `startedAt`, so its start time is
 * earlier; a process that started later got the pid after the run's process died. The slack covers
 * the coarse clocks start times are read with (seconds since boot on Linux).
 */
/** True for a parsed status.json a reader can use: a known state, the dataset folder and the start time. */
export function isRunStatus(value: unknown): value is RunStatus {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.state === 'string' &&
    ['running', 'finished', 'failed', 'cancelled'].includes(v.state) &&
    typeof v.datasetRoot === 'string' &&
    typeof v.startedAt === 'string'
  );
}

export const PID_START_SLACK_MS = 2000;

/**
 * Whether the process recorded in a `running` status is still the run's: its pid exists and, where
 * the process's start time is known, it did not start after the run did (else the pid was reused).
 */
export function isRunProcessAlive(status: Pick<RunStatus, 'pid' | 'startedAt'>, alive: boolean, processStartMs?: number): boolean {
  if (status.pid === undefined || !alive) return false;
  if (processStartMs === undefined) return true;
  const runStart = Date.parse(status.startedAt);
  return !Number.isFinite(runStart) || processStartMs <= runStart + PID_START_SLACK_MS;
}

/** The state a reader shows, and the status with the model folder's figures where status.json is behind. */
export function reconcileRunStatus(status: RunStatus, model: ModelFolderRecord, processAlive: boolean): RunReading {
  const state: RunStateReading = status.state === 'running' && !processAlive ? 'interrupted' : status.state;
  const next: RunStatus = { ...status };
  let corrected = false;
  if (!model.hasModel) {
    // The figures stay (the run did reach them) but there is no model to load any more.
    if (status.hasCheckpoint) {
      next.hasCheckpoint = false;
      corrected = true;
    }
    return { state, status: next, correctedFromModel: corrected };
  }
  if (!status.hasCheckpoint) {
    next.hasCheckpoint = true;
    corrected = true;
  }
  const cp = model.checkpoint;
  if (cp) {
    const sameWeights = status.bestEpoch === cp.epoch;
    // A run that ended records the evaluation of the kept weights, which may differ from the
    // accuracy measured during training (test-time views): keep it when it names the same epoch.
    const evaluated = sameWeights && (status.state === 'finished' || status.state === 'cancelled');
    if (!sameWeights || (!evaluated && status.valAccuracy !== cp.valAccuracy)) {
      next.bestEpoch = cp.epoch;
      if (cp.valAccuracy === undefined) delete next.valAccuracy;
      else next.valAccuracy = cp.valAccuracy;
      corrected = true;
    }
  }
  return { state, status: next, correctedFromModel: corrected };
}

/**
 * The checkpoint record in the text of model.json, or in its first few kilobytes: the writer puts
 * the record ahead of the topology so a listing of many runs never parses whole models.
 */
export function parseModelCheckpoint(modelJsonHead: string): ModelCheckpoint | undefined {
  const key = modelJsonHead.indexOf(`"${CHECKPOINT_KEY}"`);
  if (key < 0) return undefined;
  const open = modelJsonHead.indexOf('{', key);
  const close = modelJsonHead.indexOf('}', open);
  if (open < 0 || close < 0) return undefined;
  try {
    const value: unknown = JSON.parse(modelJsonHead.slice(open, close + 1));
    if (typeof value !== 'object' || value === null) return undefined;
    const v = value as Record<string, unknown>;
    if (typeof v.epoch !== 'number' || !Number.isInteger(v.epoch) || v.epoch < 0 || typeof v.savedAt !== 'string') return undefined;
    const record: ModelCheckpoint = { epoch: v.epoch, savedAt: v.savedAt };
    if (typeof v.valAccuracy === 'number') record.valAccuracy = v.valAccuracy;
    if (typeof v.valLoss === 'number') record.valLoss = v.valLoss;
    if (v.stage === 'head' || v.stage === 'fine-tune') record.stage = v.stage;
    return record;
  } catch {
    return undefined;
  }
}

/** How many leading bytes of model.json a reader reads to find the checkpoint record. */
export const MODEL_JSON_HEAD_BYTES = 4096;
