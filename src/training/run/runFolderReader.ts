// Reading run folders for the CLI (`image-trainer runs`, `predict`, `compare`): status.json reconciled with
// the model folder's own record, and a `running` run whose process is gone read as interrupted.
// The extension reads the same way (src/extension/runIndex.ts) with the same shared rules.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isArrayOf, isNumber, isObject, isString } from '../../shared/protocol/guards';
import { parseMetricsLines } from '../../shared/metricsLines';
import { RUN_FILES, type ImageList, type ModelFolderRecord, type RunConfig, type RunStatus } from '../../shared/runFolder';
import type { EpochMetrics, Evaluation } from '../../shared/types';
import { readJsonFile, RunFolderProblem } from '../models/predict';
import { readImageList } from './imageList';
import {
  isRunProcessAlive,
  isRunStatus,
  MODEL_JSON_HEAD_BYTES,
  parseModelCheckpoint,
  reconcileRunStatus,
  type RunReading,
} from '../../shared/runState';

/** One run folder as a listing shows it. */
export interface RunListing extends RunReading {
  runDir: string;
  name: string;
}

/** What `model/model.json` of a run folder says about itself (its first bytes only). */
export async function readModelRecord(runDir: string): Promise<ModelFolderRecord> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(path.join(runDir, RUN_FILES.modelDir, 'model.json'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return { hasModel: false };
  }
  try {
    if (!(await handle.stat()).isFile()) return { hasModel: false };
    const buffer = Buffer.alloc(MODEL_JSON_HEAD_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return { hasModel: true, checkpoint: parseModelCheckpoint(buffer.subarray(0, bytesRead).toString('utf8')) };
  } finally {
    await handle.close();
  }
}

/** True if a process with this id exists (signal 0 probes without signalling). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * When the process `pid` started (epoch ms), where the system says (Linux /proc); undefined
 * elsewhere. Assumes the usual 100 clock ticks a second of /proc/<pid>/stat.
 */
export function processStartMs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const btime = /^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'))?.[1];
    if (!Number.isFinite(ticks) || btime === undefined) return undefined;
    return Number(btime) * 1000 + ticks * 10;
  } catch {
    return undefined;
  }
}

/** Whether the process a `running` status names is still that run's (see isRunProcessAlive). */
export function runProcessAlive(status: RunStatus): boolean {
  if (status.pid === undefined) return false;
  return isRunProcessAlive(status, pidExists(status.pid), processStartMs(status.pid));
}

/** One run folder, reconciled; undefined when it has no readable status.json. */
export async function readRunListing(runDir: string): Promise<RunListing | undefined> {
  let status: unknown;
  try {
    status = JSON.parse(await fs.promises.readFile(path.join(runDir, RUN_FILES.status), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isRunStatus(status)) return undefined;
  const model = await readModelRecord(runDir);
  const alive = status.state === 'running' && runProcessAlive(status);
  return { runDir, name: path.basename(runDir), ...reconcileRunStatus(status, model, alive) };
}

/** Every run folder under `runsDir` with a readable status, newest first. */
export async function listRunFolders(runsDir: string): Promise<RunListing[]> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(runsDir, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name);
  } catch {
    return [];
  }
  const runs = await Promise.all(names.map((name) => readRunListing(path.join(runsDir, name))));
  return runs
    .filter((r): r is RunListing => r !== undefined)
    .sort((a, b) => b.status.startedAt.localeCompare(a.status.startedAt) || b.name.localeCompare(a.name));
}

/** A finished run folder, verified, with what a comparison reads. */
export interface ComparableRun {
  runDir: string;
  name: string;
  status: RunStatus;
  config: RunConfig;
  evaluation: Evaluation;
  /** Every image the run used (absent: a run folder written before images.json existed). */
  images?: ImageList;
  epochs: EpochMetrics[];
}

/**
 * Reads a run folder for `compare` and checks it: a finished (or cancelled, with a model) run whose
 * config, evaluation and image list are well-formed and agree with each other. Throws a
 * RunFolderProblem naming the file and what is wrong.
 */
export async function readComparableRun(runDir: string): Promise<ComparableRun> {
  const listing = await readRunListing(runDir);
  if (!listing) throw new RunFolderProblem(`${RUN_FILES.status} is missing or not a run status: not a run folder`);
  if (!(listing.state === 'finished' || (listing.state === 'cancelled' && listing.status.hasCheckpoint)))
    throw new RunFolderProblem(`the run is ${listing.state}, not finished: there is no evaluation to compare`);
  const config = await readJsonFile(runDir, RUN_FILES.config);
  if (!isRunConfig(config)) throw new RunFolderProblem(`${RUN_FILES.config} is missing or holds no run options`);
  const evaluation = checkEvaluation(await readJsonFile(runDir, RUN_FILES.evaluation));
  let images: ImageList | undefined;
  try {
    images = await readImageList(path.join(runDir, RUN_FILES.images));
  } catch (err) {
    throw new RunFolderProblem(`${RUN_FILES.images} is damaged: ${(err as Error).message}`);
  }
  if (images) checkValidatedImagesListed(evaluation, images);
  const metricsText = await fs.promises.readFile(path.join(runDir, RUN_FILES.metrics), 'utf8').catch(() => '');
  return { runDir, name: listing.name, status: listing.status, config, evaluation, images, epochs: parseMetricsLines(metricsText) };
}

function isRunConfig(v: unknown): v is RunConfig {
  return isObject(v) && isObject(v.options) && isObject(v.model) && isString(v.model.id) && isString(v.datasetRoot);
}

/** evaluation.json, checked: class names, and each prediction's path, classes in range and probabilities. */
function checkEvaluation(v: unknown): Evaluation {
  const rel = RUN_FILES.evaluation;
  if (v === undefined) throw new RunFolderProblem(`${rel} is missing`);
  if (!isObject(v) || !isArrayOf(v.classes, isString) || !isNumber(v.accuracy) || !isArrayOf(v.predictions, isObject))
    throw new RunFolderProblem(`${rel} is not an evaluation (classes, accuracy, predictions)`);
  const n = v.classes.length;
  const inRange = (c: unknown) => isNumber(c) && Number.isInteger(c) && c >= 0 && c < n;
  const seen = new Set<string>();
  v.predictions.forEach((p, i) => {
    if (!isString(p.path) || !inRange(p.actual) || !inRange(p.predicted) || !isNumber(p.confidence))
      throw new RunFolderProblem(`${rel}: prediction ${i + 1} is malformed (path, actual, predicted, confidence)`);
    if (seen.has(p.path)) throw new RunFolderProblem(`${rel}: ${p.path} is listed twice`);
    seen.add(p.path);
  });
  if (!isArrayOf(v.perClass, isObject)) throw new RunFolderProblem(`${rel} has no per-class figures`);
  return v as unknown as Evaluation;
}

/** Every validated image must be in images.json, on the validation side, in the same class. */
function checkValidatedImagesListed(evaluation: Evaluation, images: ImageList): void {
  const byPath = new Map(images.images.map((r) => [r[0], r]));
  for (const p of evaluation.predictions) {
    const row = byPath.get(p.path);
    if (!row || row[2] !== 'val' || images.classes[row[1]] !== evaluation.classes[p.actual])
      throw new RunFolderProblem(
        `${RUN_FILES.evaluation} and ${RUN_FILES.images} disagree about ${p.path}: they are not from the same run`,
      );
  }
}
