// What every stage of a run shares: the request, the run folder and its log, progress, the stage
// timer, the cancel signal, what to dispose at the end, and what the earlier stages produced.
// Stages read their inputs with `ctx.need(...)`, so a stage placed before its inputs exist fails
// with a clear internal error instead of working on undefined.
import * as path from 'node:path';
import type { TrainingNotification } from '../../shared/protocol/training';
import type {
  BackendInfo,
  DatasetReport,
  EpochMetrics,
  Evaluation,
  RecipeChoice,
  RunSummary,
  StageTimes,
  TrainOptions,
} from '../../shared/types';
import type { ViewName } from '../../shared/views';
import type { DatasetItem } from '../dataset/datasetScanner';
import type { EmbeddedImages, FeatureExtractor } from '../features/embedding';
import type { CutModel } from '../fit/fineTune';
import type { FeatureSet } from '../fit/head';
import type { LoopResult, StopReason } from '../fit/trainingLoop';
import type { BaseModel } from '../models/baseModel';
import type { ModelEntry } from '../models/modelRegistry';
import type { OnnxBaseModel } from '../onnx/onnxFeatures';
import type { HeadRuntime } from '../onnx/onnxHead';
import type { ModelMetadata, RunConfig } from '../../shared/runFolder';
import { TrainerError } from '../util/errors';
import type { Tf } from '../util/tf';
import type * as tfType from '@tensorflow/tfjs';
import { ProgressThrottle } from './progressThrottle';
import type { RunFolderWriter } from './runFolderWriter';

export interface RunRequest {
  datasetRoot: string;
  runsDir: string;
  cacheDir: string;
  options: TrainOptions;
  /** Folder of the product (holds media/models); found from the bundle's location when absent. */
  extensionRoot?: string;
  /** Extra folders where a native tfjs backend was installed on demand. */
  nativeModulePaths?: string[];
  /** Folder that holds downloaded base models (`<folder>/models/<id>`); default: `cacheDir`. */
  modelCacheDir?: string;
  /** A base model that is not in the registry (a user's own folder, or a test's server); overrides `options.model`. */
  modelEntry?: ModelEntry;
}

/** What each stage leaves for the later ones. */
export interface RunProducts {
  backend: { tf: Tf; info: BackendInfo; onnxReady: boolean };
  scan: { report: DatasetReport; classes: string[]; train: DatasetItem[]; val: DatasetItem[] };
  model: {
    entry: ModelEntry;
    base: BaseModel;
    extractor: FeatureExtractor;
    onnx?: OnnxBaseModel;
    headRuntime: HeadRuntime;
    config: RunConfig;
  };
  features: {
    embedded: EmbeddedImages;
    train: FeatureSet;
    val: FeatureSet;
    /** Relative paths of the validation images, in the rows' order. */
    valPaths: string[];
    cut?: CutModel;
    cache: { hits: number; misses: number };
    /** The views the head trains on and averages (identity first); `trainViews[v]` / `valViews[v]` row i is view v of the image of row i (index 0: `train` / `val`). */
    views: ViewName[];
    trainViews: FeatureSet[];
    valViews: FeatureSet[];
  };
  /** The recipe this run trains with, and why. */
  recipe: RecipeChoice;
  head: { head: tfType.LayersModel; classifier: tfType.LayersModel; metadata: ModelMetadata; result: LoopResult };
  evaluation: Evaluation;
}

export type LogLevel = 'info' | 'warn' | 'error';

/** A stage of the timing table (start-up is measured before the run exists). */
export type TimedStage = Exclude<keyof StageTimes, 'startup'>;

/** Milliseconds per stage, each lap adding the time since the previous one. */
export class StageTimer {
  readonly times: StageTimes;
  private lapStart: number;

  constructor(
    startupMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.times = { startup: startupMs };
    this.lapStart = now();
  }

  /** Adds the time since the previous lap to `stage`. */
  lap(stage: TimedStage): void {
    const t = this.now();
    this.times[stage] = Math.round((this.times[stage] ?? 0) + t - this.lapStart);
    this.lapStart = t;
  }
}

/** One run's shared state; created by `runTraining`, handed to every stage. */
export class RunContext {
  readonly progress: ProgressThrottle;
  readonly history: EpochMetrics[] = [];
  /** Epoch whose weights the model folder holds (0: none yet). */
  bestEpoch = 0;
  /** Why training ended early, when a callback stopped it (e.g. the time limit). */
  stopReason?: StopReason;
  featuresPerSec = 0;
  private readonly products: Partial<RunProducts> = {};
  private readonly cleanups: (() => void)[] = [];

  constructor(
    readonly request: RunRequest,
    readonly datasetRoot: string,
    readonly writer: RunFolderWriter,
    private readonly send: (n: TrainingNotification) => void,
    readonly signal: AbortSignal,
    readonly timer: StageTimer,
    /** When the run started (epoch milliseconds): wall time and the time limit count from here. */
    readonly startedAt: number,
  ) {
    this.progress = new ProgressThrottle((p) => send({ type: 'progress', progress: p }));
  }

  get options(): TrainOptions {
    return this.request.options;
  }

  get runDir(): string {
    return this.writer.dir;
  }

  get datasetName(): string {
    return path.basename(this.datasetRoot);
  }

  /** Sends a notification to whoever drives the run (the CLI or the extension). */
  notify(n: TrainingNotification): void {
    this.send(n);
  }

  /** Writes a line to train.log and sends it as a log notification. */
  log(level: LogLevel, message: string): void {
    this.writer.log(`[${level}] ${message}`);
    this.send({ type: 'log', level, message });
  }

  /** Records what a stage produced. */
  set<K extends keyof RunProducts>(key: K, value: RunProducts[K]): void {
    this.products[key] = value;
  }

  /** What an earlier stage produced, or undefined when it has not run. */
  get<K extends keyof RunProducts>(key: K): RunProducts[K] | undefined {
    return this.products[key];
  }

  /** What an earlier stage produced; a stage that runs before its inputs exist is a bug in the pipeline. */
  need<K extends keyof RunProducts>(key: K): RunProducts[K] {
    const value = this.products[key];
    if (value === undefined) throw new TrainerError('internal', `A stage needs "${key}", which no earlier stage produced.`);
    return value;
  }

  /** Registers clean-up to run when the run ends, however it ends (last registered, first run). */
  defer(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  /** Runs every registered clean-up; one that fails does not stop the others. */
  disposeAll(): void {
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        cleanup();
      } catch {
        // Two wrappers may share one model: whichever disposes it second finds it gone.
      }
    }
  }

  /** The run's summary as the CLI and the panel show it. */
  summary(cancelled: boolean): RunSummary {
    const features = this.get('features');
    return {
      runDir: this.runDir,
      valAccuracy: this.get('evaluation')?.accuracy ?? this.writer.currentStatus.valAccuracy ?? 0,
      bestEpoch: this.bestEpoch,
      epochsRun: this.history.length,
      cache: features?.cache ?? { hits: 0, misses: 0 },
      wallMs: Date.now() - this.startedAt,
      stageMs: { ...this.timer.times },
      featuresPerSec: this.featuresPerSec,
      cancelled,
    };
  }
}

/** A named step of a run: reads what earlier stages produced from the context and leaves its own. */
export interface RunStage {
  /** Its row in the timing table. */
  readonly name: TimedStage;
  /** True when the stage has nothing to do in this run; it is then neither run nor timed. */
  skip?(ctx: RunContext): boolean;
  run(ctx: RunContext): Promise<void>;
}
