// The `imageTrainer.*` settings: one typed description of every setting, its default and its
// bounds, and the validation that turns raw configuration values into TrainOptions.
// No `vscode` import, so the rules are unit-tested; `configuration.ts` feeds it VS Code's values.
import { BACKEND_PREFERENCES, DEFAULT_TRAIN_OPTIONS, RECIPE_NAMES } from '../shared/types';
import type { TrainOptions } from '../shared/types';

export const SETTINGS_SECTION = 'imageTrainer';

type NumberSpec = { kind: 'integer' | 'number'; minimum: number; maximum: number; description: string };
type BooleanSpec = { kind: 'boolean'; description: string };
type EnumSpec = { kind: 'enum'; values: readonly string[]; description: string; enumDescriptions: readonly string[] };
type StringSpec = { kind: 'string'; description: string; pattern?: RegExp };
export type SettingSpec = NumberSpec | BooleanSpec | EnumSpec | StringSpec;

/** One entry per TrainOptions field: the setting `imageTrainer.<field>` has the engine's default. */
export const TRAIN_OPTION_SPECS: { readonly [K in keyof TrainOptions]: SettingSpec } = {
  model: {
    kind: 'string',
    pattern: /\S/,
    description:
      'Base model the classifier is built on (frozen, features extracted once): a model id or the folder of your own TF.js LayersModel. `mobilenet_v2_0.35` is embedded; `mobilenet_v2_0.50`, `mobilenet_v2_0.75`, `mobilenet_v2_1.00`, `mobilenet_v1_0.25` … `mobilenet_v1_1.0` are downloaded on first use.',
  },
  epochs: {
    kind: 'integer',
    minimum: 1,
    maximum: 1000,
    description: 'Maximum number of epochs for training the classifier head (early stopping may end sooner).',
  },
  batchSize: { kind: 'integer', minimum: 1, maximum: 4096, description: 'Images per training batch.' },
  learningRate: { kind: 'number', minimum: 1e-7, maximum: 1, description: 'Learning rate of the head (Adam).' },
  valSplit: {
    kind: 'number',
    minimum: 0.01,
    maximum: 0.9,
    description: 'Fraction of each class held out for validation, when the dataset has no explicit `train/` + `val/` folders.',
  },
  seed: {
    kind: 'integer',
    minimum: 0,
    maximum: 2147483647,
    description:
      'Random seed of the split, the shuffles, the weight initialisation and the dropout masks: the same data, settings and seed give the same split and the same epochs.',
  },
  hiddenUnits: { kind: 'integer', minimum: 1, maximum: 4096, description: 'Units of the hidden dense layer of the classifier head.' },
  dropout: { kind: 'number', minimum: 0, maximum: 0.9, description: 'Dropout rate before the output layer of the head.' },
  classWeights: {
    kind: 'boolean',
    description: 'Weight each class inversely to its number of images in the loss (helps imbalanced datasets).',
  },
  patience: {
    kind: 'integer',
    minimum: 0,
    maximum: 1000,
    description: 'Early stopping: epochs without validation improvement before training stops and the best weights are restored (0 = off).',
  },
  lrPatience: {
    kind: 'integer',
    minimum: 0,
    maximum: 1000,
    description: 'Epochs without improvement before the learning rate is multiplied by `#imageTrainer.lrFactor#` (0 = off).',
  },
  lrFactor: { kind: 'number', minimum: 0.01, maximum: 1, description: 'Factor applied to the learning rate on a plateau.' },
  fineTuneLayers: {
    kind: 'integer',
    minimum: 0,
    maximum: 1000,
    description:
      'Layers at the top of the base model to unfreeze for a fine-tuning stage after the head is trained (0 = no fine-tuning; slower, needs more images).',
  },
  fineTuneEpochs: { kind: 'integer', minimum: 0, maximum: 1000, description: 'Epochs of the fine-tuning stage.' },
  fineTuneLearningRate: {
    kind: 'number',
    minimum: 1e-10,
    maximum: 0.1,
    description: 'Learning rate of the fine-tuning stage (keep it small).',
  },
  backend: {
    kind: 'enum',
    values: BACKEND_PREFERENCES,
    description:
      'Which engine runs the tensor math. Run **Image Trainer: Show Backend Diagnostics** to see which one is available and why.',
    enumDescriptions: [
      'Try the GPU (`@tensorflow/tfjs-node-gpu`), then native CPU (`@tensorflow/tfjs-node`), then WebAssembly.',
      'NVIDIA GPU through `@tensorflow/tfjs-node-gpu` (CUDA); the run fails, saying why, when it cannot load (`auto` falls back instead).',
      'Native TensorFlow on the CPU through `@tensorflow/tfjs-node`; the run fails, saying why, when it cannot load.',
      'WebAssembly (always available, slowest).',
    ],
  },
  maxPixels: {
    kind: 'integer',
    minimum: 10_000,
    maximum: 2_000_000_000,
    description: 'Images with more pixels than this are skipped from their header, before decoding (protects against decompression bombs).',
  },
  timeLimitMinutes: {
    kind: 'number',
    minimum: 0,
    maximum: 10_080,
    description:
      'Wall-clock limit of a run in minutes (0 = none). Training stops after the epoch in which the limit passes and keeps the best checkpoint; at least one epoch always runs.',
  },
  followExternalLinks: {
    kind: 'boolean',
    description:
      'Follow symlinks that lead out of the dataset folder. Off: such links are skipped (and listed in the dataset report as outside the dataset), and nothing outside the dataset folder is opened.',
  },
  recipe: {
    kind: 'enum',
    values: RECIPE_NAMES,
    description: 'Augmented views of each image (features cached per view) and test-time averaging over the same views.',
    enumDescriptions: [
      'Chosen per dataset by cross-validation on the training images; the report says which and why.',
      'One view per image, no test-time augmentation.',
      'The image and its mirror image.',
      'The 8 flips, rotations by 90° and transposes: for leaves, microscopy, aerial photos — not for upright scenes or text.',
    ],
  },
  refit: {
    kind: 'boolean',
    description:
      'After the recipe and the number of epochs are chosen, train the final model on the training and validation images together; the reported accuracy is then the cross-validated estimate.',
  },
};

/** Settings of the extension that are not engine options. */
export const FOLDER_SETTING_SPECS = {
  runsFolder: {
    kind: 'string',
    description:
      'Folder for run folders (models, metrics, reports). Empty: `.image-trainer/runs` in the workspace folder of the dataset. A relative path is resolved against that workspace folder.',
  },
  cacheFolder: {
    kind: 'string',
    description:
      'Folder for the feature cache (so a second run does not decode or embed images again). Empty: `.image-trainer/cache` in the workspace folder of the dataset. A relative path is resolved against that workspace folder.',
  },
} as const satisfies Record<string, StringSpec>;

export interface ExtensionSettings {
  train: TrainOptions;
  /** As set by the user; empty means the default location. */
  runsFolder: string;
  cacheFolder: string;
}

/** A setting whose value was refused; the default is used instead. */
export interface SettingProblem {
  /** Full key, e.g. `imageTrainer.epochs`. */
  key: string;
  message: string;
}

export interface ValidatedSettings {
  settings: ExtensionSettings;
  problems: SettingProblem[];
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function expectation(spec: SettingSpec): string {
  switch (spec.kind) {
    case 'integer':
      return `a whole number from ${spec.minimum} to ${spec.maximum}`;
    case 'number':
      return `a number from ${spec.minimum} to ${spec.maximum}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.map((v) => `"${v}"`).join(', ')}`;
    case 'string':
      return spec.pattern ? 'a non-empty name' : 'a string';
  }
}

/** Checks one raw value against its spec: the value to use, or why it is refused. */
export function checkSettingValue(spec: SettingSpec, value: unknown): { ok: true; value: unknown } | { ok: false; expected: string } {
  const refuse = { ok: false as const, expected: expectation(spec) };
  switch (spec.kind) {
    case 'integer':
    case 'number': {
      // settings.json can hold numbers as strings when written by hand; accept "20" but not "20 epochs".
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isFinite(n)) return refuse;
      if (spec.kind === 'integer' && !Number.isInteger(n)) return refuse;
      if (n < spec.minimum || n > spec.maximum) return refuse;
      return { ok: true, value: n };
    }
    case 'boolean':
      return typeof value === 'boolean' ? { ok: true, value } : refuse;
    case 'enum':
      return typeof value === 'string' && spec.values.includes(value) ? { ok: true, value } : refuse;
    case 'string': {
      if (typeof value !== 'string') return refuse;
      const trimmed = value.trim();
      if (spec.pattern && !spec.pattern.test(trimmed)) return refuse;
      return { ok: true, value: trimmed };
    }
  }
}

/**
 * Reads every `imageTrainer.*` setting through `get` (which returns the raw configured value, or
 * undefined when unset), validates it, and falls back to the default for each refused value.
 */
export function validateSettings(get: (name: string) => unknown): ValidatedSettings {
  const problems: SettingProblem[] = [];
  const train = { ...DEFAULT_TRAIN_OPTIONS } as Record<keyof TrainOptions, unknown>;
  for (const name of Object.keys(TRAIN_OPTION_SPECS) as (keyof TrainOptions)[]) {
    const raw = get(name);
    if (raw === undefined) continue;
    const spec = TRAIN_OPTION_SPECS[name];
    const checked = checkSettingValue(spec, raw);
    if (checked.ok) {
      train[name] = checked.value;
    } else {
      const key = `${SETTINGS_SECTION}.${name}`;
      problems.push({
        key,
        message: `Setting "${key}" is ${describeValue(raw)}; it must be ${checked.expected}. Using the default, ${describeValue(DEFAULT_TRAIN_OPTIONS[name])}.`,
      });
    }
  }
  const folders = { runsFolder: '', cacheFolder: '' };
  for (const name of Object.keys(FOLDER_SETTING_SPECS) as (keyof typeof FOLDER_SETTING_SPECS)[]) {
    const raw = get(name);
    if (raw === undefined || raw === null) continue;
    if (typeof raw !== 'string') {
      const key = `${SETTINGS_SECTION}.${name}`;
      problems.push({
        key,
        message: `Setting "${key}" is ${describeValue(raw)}; it must be a folder path (a string). Using the default location.`,
      });
      continue;
    }
    folders[name] = raw.trim();
  }
  return { settings: { train: train as unknown as TrainOptions, ...folders }, problems };
}

/** The `contributes.configuration.properties` entries these specs describe (kept in package.json; a test compares). */
export function configurationProperties(): Record<string, Record<string, unknown>> {
  const props: Record<string, Record<string, unknown>> = {};
  let order = 0;
  for (const name of Object.keys(TRAIN_OPTION_SPECS) as (keyof TrainOptions)[]) {
    const spec = TRAIN_OPTION_SPECS[name];
    const entry: Record<string, unknown> = { order: order++ };
    switch (spec.kind) {
      case 'integer':
      case 'number':
        Object.assign(entry, { type: spec.kind, minimum: spec.minimum, maximum: spec.maximum });
        break;
      case 'boolean':
        entry.type = 'boolean';
        break;
      case 'enum':
        Object.assign(entry, { type: 'string', enum: [...spec.values], enumDescriptions: [...spec.enumDescriptions] });
        break;
      case 'string':
        entry.type = 'string';
        if (spec.pattern) Object.assign(entry, { pattern: spec.pattern.source, patternErrorMessage: 'Must not be empty.' });
        break;
    }
    entry.default = DEFAULT_TRAIN_OPTIONS[name];
    entry.scope = 'resource';
    entry.markdownDescription = spec.description;
    props[`${SETTINGS_SECTION}.${name}`] = entry;
  }
  for (const name of Object.keys(FOLDER_SETTING_SPECS) as (keyof typeof FOLDER_SETTING_SPECS)[]) {
    props[`${SETTINGS_SECTION}.${name}`] = {
      order: order++,
      type: 'string',
      default: '',
      scope: 'resource',
      markdownDescription: FOLDER_SETTING_SPECS[name].description,
    };
  }
  return props;
}
