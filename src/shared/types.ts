// Plain data shared by the training process, the extension host and the webview.
// Numbers only: no tensors, no Node or DOM types cross this boundary.

/** Which engine runs tensor math; `auto` tries GPU, then native CPU, then WebAssembly. */
export type BackendPreference = 'auto' | 'gpu' | 'cpu-native' | 'wasm';
export const BACKEND_PREFERENCES: readonly BackendPreference[] = ['auto', 'gpu', 'cpu-native', 'wasm'];

/**
 * How the head is trained: `plain` on one feature vector per image; `flip` adds the mirror image;
 * `dihedral` the 8 flips/rotations/transposes. Each view's features are cached and the same views
 * are averaged at prediction time (src/shared/views.ts).
 * `auto` chooses among them by cross-validation on the training images.
 */
export type RecipeName = 'auto' | 'plain' | 'flip' | 'dihedral';
export const RECIPE_NAMES: readonly RecipeName[] = ['auto', 'plain', 'flip', 'dihedral'];

/** Every option of a training run. Defaults live in `DEFAULT_TRAIN_OPTIONS`. */
export interface TrainOptions {
  /** Base model id from the model registry (e.g. `mobilenet_v2_0.35`). */
  model: string;
  /** Maximum epochs for the head. */
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** Fraction of each class held out for validation when the dataset has no explicit split. */
  valSplit: number;
  seed: number;
  /** Units of the hidden dense layer of the head. */
  hiddenUnits: number;
  dropout: number;
  /** Weight classes inversely to their frequency in the loss. */
  classWeights: boolean;
  /** Early stopping patience in epochs (0 = off). */
  patience: number;
  /** Reduce-on-plateau: epochs without improvement before the learning rate is multiplied by `lrFactor`. */
  lrPatience: number;
  lrFactor: number;
  /** Number of layers of the base to unfreeze in the fine-tuning stage (0 = no fine-tuning). */
  fineTuneLayers: number;
  fineTuneEpochs: number;
  fineTuneLearningRate: number;
  backend: BackendPreference;
  /** Images larger than this many pixels are refused from their header (decompression bombs). */
  maxPixels: number;
  /** Wall-clock limit of the run in minutes (0 = none): training stops after the epoch in which it passes and keeps the best checkpoint. */
  timeLimitMinutes: number;
  /** Follow symlinks that lead out of the dataset folder (off: they are skipped as `external-symlink`, and nothing outside is opened). */
  followExternalLinks: boolean;
  /** Views and test-time augmentation (see `RecipeName`). */
  recipe: RecipeName;
  /** After the recipe and epoch count are chosen, train the final model on training + validation images. */
  refit: boolean;
}

export const DEFAULT_TRAIN_OPTIONS: TrainOptions = {
  model: 'mobilenet_v2_0.35',
  epochs: 20,
  batchSize: 32,
  learningRate: 1e-3,
  valSplit: 0.2,
  seed: 42,
  hiddenUnits: 128,
  dropout: 0.2,
  classWeights: false,
  patience: 5,
  lrPatience: 3,
  lrFactor: 0.5,
  fineTuneLayers: 0,
  fineTuneEpochs: 5,
  fineTuneLearningRate: 1e-4,
  backend: 'auto',
  maxPixels: 100_000_000,
  timeLimitMinutes: 0,
  followExternalLinks: false,
  recipe: 'auto',
  refit: false,
};

/** Why a file in the dataset folder was not used. */
export type SkipReason =
  'empty' | 'corrupt' | 'not-image' | 'too-many-pixels' | 'unreadable' | 'dangling-symlink' | 'symlink-loop' | 'external-symlink';

export interface SkippedFile {
  /** Path relative to the dataset root, `/`-separated. */
  path: string;
  reason: SkipReason;
  detail: string;
}

export interface ClassSummary {
  name: string;
  train: number;
  val: number;
  test: number;
}

export interface DuplicateGroup {
  sha256: string;
  /** Relative paths of identical files found in different classes. */
  paths: string[];
  classes: string[];
}

/** What the scan found: classes, counts and every problem, for the report and the panel. */
export interface DatasetReport {
  root: string;
  name: string;
  /** `folders`: classes are subfolders and the split is computed; `explicit`: train/ and val/ (and test/) given. */
  layout: 'folders' | 'explicit';
  classes: ClassSummary[];
  emptyClasses: string[];
  /** Skipped files, sorted by path: at most `SKIPPED_LIST_CAP` of each reason, so a link to a system folder cannot swell every report. */
  skipped: SkippedFile[];
  /** Per reason, how many more files were skipped than `skipped` lists (absent: all are listed). */
  skippedUnlisted?: Partial<Record<SkipReason, number>>;
  duplicates: DuplicateGroup[];
  /** Hidden files and OS metadata ignored without a report. */
  ignored: number;
  /** Human-readable warnings (imbalance, tiny classes, …). */
  warnings: string[];
  /** Groups of near-duplicate images (by their feature vectors) the computed split kept on one side; absent before the features are known. */
  nearDuplicateGroupsKept?: number;
}

export type BackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendAttempt {
  backend: BackendName;
  /** `ok`: used; `missing`: module not installed; `failed`: load error; `no-gpu`: loaded but no device; `skipped`: not tried because of the preference. */
  status: 'ok' | 'missing' | 'failed' | 'no-gpu' | 'skipped';
  detail: string;
}

export interface BackendInfo {
  /** The backend the run uses. */
  backend: BackendName;
  /** One line for the user: what runs and why not something faster. */
  summary: string;
  attempts: BackendAttempt[];
  /** Runtime used for the frozen base's features when it differs from `backend` (e.g. onnxruntime). */
  featureRuntime?: string;
  /** Runtime the head's optimizer steps run on when it differs from `backend` (e.g. onnxruntime). */
  headRuntime?: string;
  threads?: number;
}

export type Stage = 'download' | 'scan' | 'features' | 'head' | 'fine-tune' | 'evaluate' | 'save';

export interface Progress {
  stage: Stage;
  /** Units done and total in this stage (bytes for download, images for features/evaluate, batches for training). */
  done: number;
  total: number;
  epoch?: number;
  epochs?: number;
  imagesPerSec?: number;
  etaSec?: number;
}

export interface EpochMetrics {
  stage: 'head' | 'fine-tune';
  /** 1-based epoch index over the whole run (fine-tuning continues the count). */
  epoch: number;
  loss: number;
  acc: number;
  valLoss: number;
  valAcc: number;
  lr: number;
  durationMs: number;
}

export interface ClassMetrics {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface ConfusedPair {
  actual: number;
  predicted: number;
  count: number;
}

/** One validation image's prediction. Class fields are indices into `Evaluation.classes`. */
export interface Prediction {
  /** Relative to the dataset root, `/`-separated. */
  path: string;
  actual: number;
  predicted: number;
  /** Probability of `predicted`. */
  confidence: number;
  /** Probability of every class, rounded to 4 decimals. */
  probs: number[];
  /** The image's novelty score (distance to the nearest class in feature space, 2 decimals), once unknown detection ran. */
  novelty?: number;
  /** True when `novelty` is above the run's threshold (`Evaluation.novelty.threshold`): unlike every class. */
  unknown?: boolean;
}

export interface Evaluation {
  classes: string[];
  /** matrix[actual][predicted] = count. */
  matrix: number[][];
  accuracy: number;
  perClass: ClassMetrics[];
  macro: { precision: number; recall: number; f1: number };
  weighted: { precision: number; recall: number; f1: number };
  mostConfused: ConfusedPair[];
  predictions: Prediction[];
  /** 1-based epoch whose weights were kept (early stopping's best). */
  bestEpoch: number;
  /** Temperature scaling of the confidences (the probabilities above are already scaled). */
  calibration?: Calibration;
  /** How "unknown" is decided for images unlike every class. */
  novelty?: NoveltyFit;
  /** The recipe the model was trained with, and for `--recipe auto` the candidates' cross-validated scores. */
  recipe?: RecipeChoice;
}

/** One candidate recipe's cross-validated accuracy on the training images (test-time averaging over its views). */
export interface RecipeCandidate {
  recipe: Exclude<RecipeName, 'auto'>;
  views: number;
  accuracy: number;
  /** Against plain on the same held-out images: how many this candidate got right and plain wrong (`better`), and the reverse (`worse`). */
  paired?: { better: number; worse: number };
}

/**
 * The recipe a run trained with and why: `requested` is the option; for `auto` the candidates were
 * compared by `folds`-fold cross-validation on `images` training images (never a validation image).
 */
export interface RecipeChoice {
  requested: RecipeName;
  chosen: Exclude<RecipeName, 'auto'>;
  views: number;
  candidates: RecipeCandidate[];
  images: number;
  folds: number;
  /** One sentence: "8 views + TTA chose over plain: 92.6% vs 90.5%". */
  reason: string;
  /** With `refit`: the model was trained on training + validation images for `epochs` epochs; `accuracy` above is then the cross-validated estimate. */
  refit?: { epochs: number; images: number };
}

/** Temperature scaling fitted on the validation predictions, and what it gained. */
export interface Calibration {
  /** softmax(logits / temperature); 1 when scaling did not lower the validation NLL, or when the fit was not trusted (`fallback`). */
  temperature: number;
  /** Why the temperature is 1 although scaling might have lowered the NLL: too few validation images, none misclassified, or a fit at the end of its range. */
  fallback?: string;
  /** Expected calibration error on the held-out half of the validation set, before and after scaling. */
  eceBefore: number;
  eceAfter: number;
  /** Validation images the ECE was measured on (the temperature of that figure was fitted on the others). */
  heldOut: number;
  /** Equal-width confidence bins of the ECE. */
  bins: number;
  /** The reliability diagram of the held-out half, before and after scaling: per bin, images, mean confidence and accuracy. */
  reliability?: { before: ReliabilityBin[]; after: ReliabilityBin[] };
}

/** One confidence bin of a reliability diagram (`count` 0: no image fell in it; then confidence and accuracy are 0). */
export interface ReliabilityBin {
  count: number;
  confidence: number;
  accuracy: number;
}

/** The unknown-image detector of a model: Mahalanobis distance to the nearest class mean, with its threshold. */
export interface NoveltyFit {
  method: 'mahalanobis-nearest-mean';
  /** Ledoit–Wolf shrinkage of the shared covariance towards a multiple of the identity (0–1). */
  shrinkage: number;
  /** A score above this is "unknown". */
  threshold: number;
  /** The percentile of the validation images' scores the threshold sits at. */
  percentile: number;
  trainImages: number;
  valImages: number;
  /** Validation images whose score is above the threshold. */
  valFlagged: number;
}

export interface RunSummary {
  runDir: string;
  valAccuracy: number;
  bestEpoch: number;
  epochsRun: number;
  cache: { hits: number; misses: number };
  wallMs: number;
  /** Where the time went, in milliseconds: process start-up before the run began, then each stage. */
  stageMs?: StageTimes;
  featuresPerSec: number;
  cancelled: boolean;
}

/** Milliseconds per part of a run (absent: the run did not get there, or skipped it). */
export interface StageTimes {
  /** From the process's start to the run's (loading Node and the bundle). */
  startup?: number;
  backend?: number;
  scan?: number;
  /** Loading or downloading the base model and preparing its feature runtime. */
  model?: number;
  /** Choosing the recipe: embedding a sample's views and cross-validating the candidates. */
  recipe?: number;
  features?: number;
  /** Keeping near-duplicate groups on one side of the split. */
  split?: number;
  head?: number;
  fineTune?: number;
  evaluate?: number;
  calibrate?: number;
  unknown?: number;
  /** Projecting the feature vectors to the 2-D feature map. */
  map?: number;
  /** The dataset doctor's cross-validation and findings (doctor runs only). */
  doctor?: number;
  /** With `refit`: the final head trained again on training + validation images. */
  refit?: number;
  /** The final model, status and report (checkpoints are counted in their training stage). */
  save?: number;
  modelCard?: number;
}

/**
 * What kind of failure ended a run, so the host can offer the action that fits it: open the
 * dataset report (`dataset`), open settings (`options`), retry (`model-download`), check the model
 * folder (`model`), show diagnostics (`backend`), free or change a folder (`disk`).
 */
export type ErrorKind = 'dataset' | 'options' | 'model' | 'model-download' | 'backend' | 'disk' | 'cancelled' | 'internal';
export const ERROR_KINDS: readonly ErrorKind[] = [
  'dataset',
  'options',
  'model',
  'model-download',
  'backend',
  'disk',
  'cancelled',
  'internal',
];
