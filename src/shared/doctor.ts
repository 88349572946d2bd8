// What the dataset doctor finds, as `image-trainer doctor --json` prints it, `doctor.json` holds it
// and the panel's Doctor view shows it. Paths are relative to the dataset root, `/`-separated; every
// list is ordered most-likely (worst) first.

/** An image whose given label the out-of-sample predictions disagree with. */
export interface LabelIssue {
  path: string;
  /** The class folder it is in. */
  label: string;
  /** The class the out-of-sample predictions point to. */
  suggested: string;
  /** Higher is more likely mislabelled, in [0, 1]. */
  score: number;
}

/** Images that are the same photo (resized, recompressed, slightly cropped) by their feature vectors. */
export interface NearDuplicateGroup {
  paths: string[];
  /** The class of each path, in the same order. */
  classes: string[];
  /** Smallest cosine similarity between the group's members (a group is linked pair by pair). */
  similarity: number;
  /** True when the group has members on both sides of the training/validation split. */
  crossesSplit: boolean;
}

/** An image far from every class (a screenshot, a placeholder, another subject). */
export interface Outlier {
  path: string;
  label: string;
  /** Higher is farther; comparable within one report. */
  score: number;
}

export type WeakImageProblem = 'dark' | 'bright' | 'low-contrast' | 'blurred' | 'upscaled';

/** An image whose pixels teach little: too dark or bright, flat, blurred, or a tiny original scaled up. */
export interface WeakImage {
  path: string;
  problem: WeakImageProblem;
  /** The measured statistic behind the problem (mean brightness, contrast, Laplacian variance, original side). */
  value: number;
}

/** A trivial property of the files (size, brightness, aspect ratio) that predicts the label on its own. */
export interface Shortcut {
  property: string;
  /** Cross-validated accuracy of predicting the class from this property alone. */
  accuracy: number;
  /** Accuracy of always guessing the largest class, for comparison. */
  baseline: number;
  /** One sentence for the user. */
  detail: string;
}

export interface DoctorReport {
  /** Absolute path of the dataset folder. */
  dataset: string;
  images: number;
  classes: string[];
  labelIssues: LabelIssue[];
  nearDuplicates: NearDuplicateGroup[];
  outliers: Outlier[];
  weakImages: WeakImage[];
  shortcuts: Shortcut[];
}

/** Every finding kind, in the order the Doctor view lists them. */
export const DOCTOR_FINDING_KINDS = ['labelIssues', 'nearDuplicates', 'outliers', 'weakImages', 'shortcuts'] as const;
export type DoctorFindingKind = (typeof DOCTOR_FINDING_KINDS)[number];

/** Name of the doctor's result inside its run-like folder. */
export const DOCTOR_FILE = 'doctor.json';
