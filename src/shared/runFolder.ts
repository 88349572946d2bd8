// The files of a run folder (`<runsDir>/<dataset>-<timestamp>/`), written by the training process
// and read by the extension (tree view, panel restore, Classify Image) and the CLI `predict`.
import type { BackendInfo, ErrorKind, RunSummary, TrainOptions } from './types';
import type { ViewName } from './views';

export const RUN_FILES = {
  /** RunStatus, rewritten atomically at every state change. */
  status: 'status.json',
  /** RunConfig: everything needed to reproduce the run. */
  config: 'config.json',
  /** Class names in output order: string[]. */
  labels: 'labels.json',
  /** One EpochMetrics JSON object per line, appended as epochs end. */
  metrics: 'metrics.jsonl',
  /** Evaluation of the validation set with the kept weights. */
  evaluation: 'evaluation.json',
  /** DatasetReport of the scan. */
  datasetReport: 'dataset-report.json',
  /** Human-readable summary. */
  report: 'report.md',
  /** The best checkpoint so far: TF.js LayersModel taking raw RGB pixels (model.json + weights.bin). */
  modelDir: 'model',
  /** ModelMetadata: input size, preprocessing, labels; inside `modelDir`. */
  metadata: 'metadata.json',
  /** NoveltyFile: the unknown-image detector's statistics; inside `modelDir`. */
  novelty: 'novelty.json',
  /** What the model is for, what it was trained on and how well it does, from the run's own files. */
  modelCard: 'MODEL_CARD.md',
  /** Full log of the training process. */
  log: 'train.log',
  /** ImageList: every image the run used, by path, class, side and content hash (what `compare` diffs). */
  images: 'images.json',
  /** FeatureMapFile: the 2-D map of every image's feature vector (src/shared/featureMap.ts). */
  featureMap: 'feature-map.json',
} as const;

/** `images.json`: each image of the run as [path relative to the dataset root, class index, side, sha256 of its bytes]. */
export interface ImageList {
  format: 'image-trainer/images@1';
  classes: string[];
  images: [path: string, classIndex: number, side: 'train' | 'val' | 'test', sha256: string][];
}

export type RunStateOnDisk = 'running' | 'finished' | 'failed' | 'cancelled';

/**
 * A run's state as a reader reports it: what status.json says, except that a `running` run whose
 * process is gone reads as `interrupted` (it was killed and will never finish).
 */
export type RunStateReading = RunStateOnDisk | 'interrupted';

/** Key of the checkpoint record inside model.json's `userDefinedMetadata`. */
export const CHECKPOINT_KEY = 'imageTrainerCheckpoint';

/**
 * Which weights the model folder holds, recorded inside model.json (the file whose rename commits a
 * checkpoint), so the folder describes itself at every instant, whatever status.json says.
 */
export interface ModelCheckpoint {
  /** The epoch whose weights these are (0: saved without a training epoch). */
  epoch: number;
  /** Validation accuracy and loss at that epoch (as the training loop measured them). */
  valAccuracy?: number;
  valLoss?: number;
  stage?: 'head' | 'fine-tune';
  savedAt: string;
}

/** What a reader found in a run's model folder. */
export interface ModelFolderRecord {
  /** True if `model/model.json` exists (the folder holds a complete model). */
  hasModel: boolean;
  /** The checkpoint record model.json carries (absent in folders written before it existed). */
  checkpoint?: ModelCheckpoint;
}

export interface RunStatus {
  state: RunStateOnDisk;
  datasetRoot: string;
  datasetName: string;
  startedAt: string;
  updatedAt: string;
  message?: string;
  /** What kind of failure ended the run (`failed` runs only). */
  errorKind?: ErrorKind;
  /** Validation accuracy of the best checkpoint so far (or of the final model). */
  valAccuracy?: number;
  bestEpoch?: number;
  /** True once `modelDir` holds a complete checkpoint. */
  hasCheckpoint: boolean;
  /** Process id of the training process while `running`; lets a reader detect a dead run. */
  pid?: number;
  summary?: Omit<RunSummary, 'runDir'>;
}

export interface RunConfig {
  datasetRoot: string;
  options: TrainOptions;
  backend: BackendInfo;
  model: { id: string; name: string; inputSize: number; featureSize: number };
  versions: Record<string, string>;
  createdAt: string;
}

/** How to turn an image into the model's input; stored in `model/metadata.json`. */
export interface ModelMetadata {
  format: 'image-trainer/classifier@1';
  labels: string[];
  inputSize: number;
  /** The model takes raw RGB 0–255 pixels; it applies `x * scale + offset` itself (a Rescaling step). */
  input: { channels: 3; range: [0, 255]; resize: 'cover-center'; scale: number; offset: number; preprocessingInside: boolean };
  baseModel: string;
  /** Temperature the confidences were calibrated with; the model's last layer already divides its logits by it. */
  temperature?: number;
  /** A score above `threshold` in `novelty.json` is "unknown". */
  unknownThreshold?: number;
  /**
   * Test-time augmentation (absent: one view). The model is run on each of these views of the input
   * (src/shared/views.ts: reverse rows if `v`, columns if `h`, then transpose if `t`), and the answer
   * is softmax(mean over the views of log max(p, 1e-30)); the unknown score reads the mean of the
   * views' head inputs. The ONNX export does all of it inside its graph.
   */
  views?: ViewName[];
}

/**
 * `model/novelty.json`: x · whitening (the head's input features) minus the nearest of `means`,
 * its length is the novelty score; above `threshold` the image is "unknown". Matrices are
 * row-major float32, base64.
 */
export interface NoveltyFile {
  format: 'image-trainer/novelty@1';
  featureSize: number;
  classes: number;
  threshold: number;
  whitening: string;
  means: string;
}
