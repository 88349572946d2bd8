import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type * as tfType from '@tensorflow/tfjs';
import { initBackend } from '../../../../src/training/backend/backend';
import type { Tf } from '../../../../src/training/util/tf';
import { loadBaseModel, loadLayersModelFromDir, type BaseModel } from '../../../../src/training/models/baseModel';
import { buildFoldedGraph } from '../../../../src/training/models/foldedGraph';
import { findModel, MODEL_REGISTRY, type ModelEntry } from '../../../../src/training/models/modelRegistry';

const repoRoot = path.resolve(__dirname, '../../../..');
const photosDir = path.join(repoRoot, 'test/fixtures/photos');
const PHOTOS = ['chelsea', 'coffee', 'motorcycle_left', 'motorcycle_right'];
const EMBEDDED = MODEL_REGISTRY[0];
const SIZE = EMBEDDED.inputSize;

let tf: Tf;
let tmp: string;
let pixels: Uint8Array;
let fused: BaseModel;
let layers: BaseModel;

/** The fixture photos as raw 224x224 RGB, the way the decoder hands them over. */
async function loadPhotos(): Promise<Uint8Array> {
  const out = new Uint8Array(PHOTOS.length * SIZE * SIZE * 3);
  for (let i = 0; i < PHOTOS.length; i++) {
    const raw = await sharp(path.join(photosDir, `${PHOTOS[i]}.jpg`))
      .resize(SIZE, SIZE, { fit: 'cover' })
      .removeAlpha()
      .raw()
      .toBuffer();
    out.set(raw, i * SIZE * SIZE * 3);
  }
  return out;
}

function vectorOf(features: Float32Array, i: number, size: number): Float32Array {
  return features.subarray(i * size, (i + 1) * size);
}

function cosineDistance(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / Math.sqrt(na * nb);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

before(async () => {
  ({ tf } = await initBackend({ preference: 'wasm', wasmThreads: 1 }));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'base-model-test-'));
  pixels = await loadPhotos();
  fused = await loadBaseModel(tf, EMBEDDED);
  layers = await loadBaseModel(tf, EMBEDDED, { route: 'layers' });
});

after(() => {
  fused?.dispose();
  layers?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the embedded MobileNetV2 0.35 base', () => {
  it('loads from the extension folder and runs the folded graph', () => {
    assert.equal(fused.route, 'fused', fused.routeNote);
    assert.equal(fused.featureSize, 1280);
    assert.equal(fused.inputSize, 224);
    assert.equal(fused.layersModel.layers[fused.layersModel.layers.length - 1].name, 'global_average_pooling2d');
  });

  it('gives 1280 features per photo, with the two views of the moped closer to each other than to the cat', async () => {
    const features = await fused.extract(pixels, PHOTOS.length);
    assert.equal(features.length, PHOTOS.length * 1280);
    const [cat, , left, right] = [0, 1, 2, 3].map((i) => vectorOf(features, i, 1280));
    const motoPair = cosineDistance(left, right);
    assert.ok(motoPair < cosineDistance(left, cat), `moped views ${motoPair} vs left–cat ${cosineDistance(left, cat)}`);
    assert.ok(motoPair < cosineDistance(right, cat), `moped views ${motoPair} vs right–cat ${cosineDistance(right, cat)}`);
  });

  it('matches the layers model as loaded within 1e-4 on real photos', async () => {
    assert.equal(layers.route, 'layers');
    const a = await fused.extract(pixels, PHOTOS.length);
    const b = await layers.extract(pixels, PHOTOS.length);
    const diff = maxAbsDiff(a, b);
    assert.ok(diff < 1e-4, `max abs difference ${diff}`);
    assert.ok(Math.max(...b) > 1, 'the features are not trivially small');
  });

  it('gives the same features whatever the batch size', async () => {
    const small = await loadBaseModel(tf, EMBEDDED, { batchSize: 3 });
    try {
      assert.ok(maxAbsDiff(await small.extract(pixels, PHOTOS.length), await fused.extract(pixels, PHOTOS.length)) < 1e-5);
    } finally {
      small.dispose();
    }
  });

  it('leaks no tensors while extracting', async () => {
    await fused.extract(pixels, PHOTOS.length);
    const before = tf.memory().numTensors;
    await fused.extract(pixels, PHOTOS.length);
    await layers.extract(pixels.subarray(0, SIZE * SIZE * 3), 1);
    assert.equal(tf.memory().numTensors, before);
  });

  it('keys the feature cache by model, weights, preprocessing and route', () => {
    assert.match(
      fused.cacheKey,
      /^mobilenet_v2_0\.35\|[0-9a-f]{16}\|224px\|x\*0\.00784313725490196\+-1\|global_average_pooling2d\|fused-v1$/,
    );
    assert.notEqual(fused.cacheKey, layers.cacheKey);
  });

  it('refuses pixel buffers of the wrong size', async () => {
    await assert.rejects(fused.extract(pixels.subarray(1), PHOTOS.length), /expected 4 images of 224x224x3 bytes/);
  });
});

describe('loading model files', () => {
  it('refuses weights whose sha256 differs from the pinned one', async () => {
    const dir = path.join(tmp, 'tampered');
    fs.cpSync(path.join(repoRoot, EMBEDDED.source.kind === 'embedded' ? EMBEDDED.source.folder : ''), dir, { recursive: true });
    const weights = path.join(dir, 'weights.bin');
    const data = fs.readFileSync(weights);
    data[1000] ^= 0xff;
    fs.writeFileSync(weights, data);
    await assert.rejects(
      loadBaseModel(tf, EMBEDDED, { modelDir: dir }),
      /sha256 mismatch for weights\.bin \(got [0-9a-f]{64}, expected e159deb3/,
    );
  });

  it('says which weight shard is missing', async () => {
    const dir = path.join(tmp, 'no-shard');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top/model.json'), path.join(dir, 'model.json'));
    await assert.rejects(loadLayersModelFromDir(tf, dir), /Weight file weights\.bin listed in .*model\.json is missing/);
  });

  it('falls back to the layers model, truncated at the feature layer, for a topology the folded graph does not know', async () => {
    const { model, entry } = await savedUnfoldableModel('custom');
    const base = await loadBaseModel(tf, entry);
    try {
      assert.equal(base.route, 'layers');
      assert.match(base.routeNote ?? '', /MaxPooling2D/);
      assert.match(base.cacheKey, /\|layers-v1$/);
      const px = new Uint8Array(2 * 32 * 32 * 3).map((_, i) => (i * 37) % 256);
      const features = await base.extract(px, 2);
      // The reference: c2's output averaged over space, computed through the full model's layers.
      const expected = tf.tidy(() => {
        const x = tf.tensor4d(
          Float32Array.from(px, (v) => v / 255),
          [2, 32, 32, 3],
        );
        const trunk = tf.model({ inputs: model.inputs, outputs: model.getLayer('c2').output as tfType.SymbolicTensor });
        return tf.mean(trunk.predict(x) as tfType.Tensor, [1, 2]).dataSync() as Float32Array;
      });
      assert.ok(maxAbsDiff(features, expected) < 1e-5);
    } finally {
      base.dispose();
      model.dispose();
    }
  });

  it('runs a Sequential model whose layers all fold on the fused route, agreeing with its layers', async () => {
    const dir = path.join(tmp, 'sequential');
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 8, kernelSize: 3, strides: 2, activation: 'relu', name: 'c1' }),
        tf.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, activation: 'relu', name: 'c2' }),
        tf.layers.globalAveragePooling2d({ name: 'gap' }),
      ],
    });
    await saveToDir(model, dir);
    model.dispose();
    const entry: ModelEntry = {
      id: 'custom_sequential',
      name: 'sequential test model',
      family: 'custom',
      source: { kind: 'folder', path: dir },
      inputSize: 32,
      preprocessing: { scale: 1 / 255, offset: 0 },
      featureLayer: 'gap',
      featureSize: 6,
      fineTuneCutPoints: [],
    };
    const base = await loadBaseModel(tf, entry);
    const reference = await loadBaseModel(tf, entry, { route: 'layers' });
    try {
      assert.equal(base.route, 'fused', base.routeNote);
      const px = new Uint8Array(2 * 32 * 32 * 3).map((_, i) => (i * 53) % 256);
      assert.ok(maxAbsDiff(await base.extract(px, 2), await reference.extract(px, 2)) < 1e-5);
    } finally {
      base.dispose();
      reference.dispose();
    }
  });

  it('falls back to the layers model, saying why, when the folded graph builds but fails its self-check', async () => {
    const { model, entry } = await savedUnfoldableModel('custom-broken-graph');
    model.dispose();
    const foldable = { ...entry, featureLayer: 'c1', featureSize: 4 };
    const before = tf.memory().numTensors;
    // What a misread topology gave before: a graph that builds, then cannot find its input.
    const base = await loadBaseModel(tf, foldable, {
      buildGraph: (t, m, layer) => {
        const built = buildFoldedGraph(t, m, layer);
        if ('unsupported' in built) assert.fail(built.unsupported);
        return {
          ...built,
          run: () => {
            throw new Error("fused graph: value 'c1_input' missing");
          },
        };
      },
    });
    try {
      assert.equal(base.route, 'layers');
      assert.equal(base.routeNote, "fused route failed its self-check (fused graph: value 'c1_input' missing); using the layers model");
      assert.equal((await base.extract(new Uint8Array(32 * 32 * 3).fill(100), 1)).length, 4);
    } finally {
      base.dispose();
    }
    assert.equal(tf.memory().numTensors, before, 'the failed graph and the model are freed');
  });

  it('refuses a required fused route for a topology the folded graph does not know, saying why, and keeps no tensors', async () => {
    const { model, entry } = await savedUnfoldableModel('custom-fused');
    try {
      const before = tf.memory().numTensors;
      await assert.rejects(loadBaseModel(tf, entry, { route: 'fused' }), /Model custom_test: fused route unavailable: .*MaxPooling2D/);
      assert.equal(tf.memory().numTensors, before);
    } finally {
      model.dispose();
    }
  });

  it('refuses a feature layer whose size differs from the registry, and keeps no tensors', async () => {
    const { model, entry } = await savedUnfoldableModel('custom-size');
    try {
      const before = tf.memory().numTensors;
      await assert.rejects(
        loadBaseModel(tf, { ...entry, featureSize: 7 }),
        /Model custom_test: feature layer 'c2' gives 6 values, the registry says 7/,
      );
      assert.equal(tf.memory().numTensors, before);
    } finally {
      model.dispose();
    }
  });

  it('runs MobileNetV1 (ReLU6 activations, pooled conv_pw_13_relu) through the folded graph too', async () => {
    const v1Dir = path.resolve(repoRoot, '../shared/models/mobilenet_v1_0.25_224_imagenet');
    const entry = findModel('mobilenet_v1_0.25')!;
    const v1 = await loadBaseModel(tf, entry, { modelDir: v1Dir });
    const v1Layers = await loadBaseModel(tf, entry, { modelDir: v1Dir, route: 'layers' });
    try {
      assert.equal(v1.route, 'fused', v1.routeNote);
      assert.equal(v1.featureSize, 256);
      const diff = maxAbsDiff(await v1.extract(pixels, PHOTOS.length), await v1Layers.extract(pixels, PHOTOS.length));
      assert.ok(diff < 1e-4, `max abs difference ${diff}`);
    } finally {
      v1.dispose();
      v1Layers.dispose();
    }
  });
});

/** A small CNN with a MaxPooling2D (which the folded graph does not handle) saved in `tmp/<name>`, and its registry entry (features: c2, 6 values). */
async function savedUnfoldableModel(name: string): Promise<{ model: tfType.LayersModel; entry: ModelEntry }> {
  const dir = path.join(tmp, name);
  const model = tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [32, 32, 3], filters: 4, kernelSize: 3, activation: 'relu', name: 'c1' }),
      tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }),
      tf.layers.conv2d({ filters: 6, kernelSize: 3, name: 'c2' }),
      tf.layers.globalAveragePooling2d({ name: 'gap' }),
      tf.layers.dense({ units: 2, activation: 'softmax', name: 'top' }),
    ],
  });
  await saveToDir(model, dir);
  const entry: ModelEntry = {
    id: 'custom_test',
    name: 'test model',
    family: 'custom',
    source: { kind: 'folder', path: dir },
    inputSize: 32,
    preprocessing: { scale: 1 / 255, offset: 0 },
    featureLayer: 'c2',
    featureSize: 6,
    fineTuneCutPoints: [],
  };
  return { model, entry };
}

/** Writes a model as model.json + weights.bin, as a user's own exported model would be. */
async function saveToDir(model: tfType.LayersModel, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData as ArrayBuffer;
      fs.writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(data));
      const json = {
        format: 'layers-model',
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      };
      fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
}
