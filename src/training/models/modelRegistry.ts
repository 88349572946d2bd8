// The model zoo: one typed registry, one place to add a base model.
// Every entry says where its files come from, what input it takes, which layer gives the
// features, and which layers fine-tuning may unfreeze.

/** `x * scale + offset` applied to RGB values in [0, 255]. */
export interface Preprocessing {
  scale: number;
  offset: number;
}

/** [-1, 1], as Keras `mobilenet_v2.preprocess_input`. */
export const MINUS_ONE_TO_ONE: Preprocessing = { scale: 1 / 127.5, offset: -1 };

export interface ModelEntry {
  id: string;
  name: string;
  family: 'mobilenet_v2' | 'mobilenet_v1' | 'custom';
  /** Where the LayersModel comes from. `embedded`: a folder inside the extension (`media/models/…`). */
  source: { kind: 'embedded'; folder: string } | { kind: 'url'; url: string } | { kind: 'folder'; path: string };
  inputSize: number;
  preprocessing: Preprocessing;
  /** Name of the layer whose output is the feature vector; pooled to a vector if it is 4-D. */
  featureLayer: string;
  featureSize: number;
  /** Layer names at which fine-tuning may cut the network, deepest first (unfreeze everything after it). */
  fineTuneCutPoints: string[];
  /** Known total size of the weight files in bytes and the sha256 of each, where the project knows them. */
  files?: { path: string; bytes?: number; sha256?: string }[];
  /** Approximate multiply-adds per image, for benchmarks. */
  flops?: number;
}

const MOBILENET_V2_CUTS = ['block_16_expand', 'block_15_expand', 'block_14_expand', 'block_13_expand'];

function mobilenetV2(alpha: '0.35' | '0.50' | '0.75' | '1.00'): ModelEntry {
  const id = `mobilenet_v2_${alpha}`;
  const featureSize = 1280;
  return {
    id,
    name: `MobileNetV2 ${alpha} (224 px, ImageNet)`,
    family: 'mobilenet_v2',
    source:
      alpha === '0.35'
        ? { kind: 'embedded', folder: 'media/models/mobilenet_v2_0.35_224_no_top' }
        : {
            kind: 'url',
            url: `https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${alpha}_224_no_top/model.json`,
          },
    inputSize: 224,
    preprocessing: MINUS_ONE_TO_ONE,
    featureLayer: 'global_average_pooling2d',
    featureSize,
    fineTuneCutPoints: MOBILENET_V2_CUTS,
    files:
      alpha === '0.35'
        ? [
            {
              path: 'weights.bin',
              sha256: 'e159deb3afa15bc63a53edb3eb31d0d6de1a25f0d8d72d9b8372b5088a902a8a',
            },
          ]
        : undefined,
    flops: { '0.35': 59e6, '0.50': 97e6, '0.75': 209e6, '1.00': 300e6 }[alpha],
  };
}

function mobilenetV1(alpha: '0.25' | '0.50' | '0.75' | '1.0'): ModelEntry {
  const channels = Math.round(1024 * Number(alpha));
  return {
    id: `mobilenet_v1_${alpha}`,
    name: `MobileNetV1 ${alpha} (224 px, ImageNet)`,
    family: 'mobilenet_v1',
    source: { kind: 'url', url: `https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_${alpha}_224/model.json` },
    inputSize: 224,
    preprocessing: MINUS_ONE_TO_ONE,
    featureLayer: 'conv_pw_13_relu',
    featureSize: channels,
    fineTuneCutPoints: ['conv_dw_13', 'conv_dw_12', 'conv_dw_11'],
    flops: { '0.25': 41e6, '0.50': 149e6, '0.75': 325e6, '1.0': 569e6 }[alpha],
  };
}

/** Every built-in base model, default first. */
export const MODEL_REGISTRY: readonly ModelEntry[] = [
  mobilenetV2('0.35'),
  mobilenetV2('0.50'),
  mobilenetV2('0.75'),
  mobilenetV2('1.00'),
  mobilenetV1('0.25'),
  mobilenetV1('0.50'),
  mobilenetV1('0.75'),
  mobilenetV1('1.0'),
];

export const DEFAULT_MODEL_ID = MODEL_REGISTRY[0].id;

/** The registry entry for `id`, or undefined. */
export function findModel(id: string): ModelEntry | undefined {
  return MODEL_REGISTRY.find((m) => m.id === id);
}
