import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { MODEL_CHOICES } from '../../../../src/shared/modelChoices';
import { DEFAULT_MODEL_ID, findModel, MODEL_REGISTRY } from '../../../../src/training/models/modelRegistry';
import { loadLayersModelFromFolder } from '../../../support/modelFileServer';

const repoRoot = path.resolve(__dirname, '../../../..');
const sharedModels = path.resolve(repoRoot, '../shared/models');

function layerNames(modelJsonPath: string): string[] {
  const json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8')) as { modelTopology: { model_config?: unknown; config: unknown } };
  const root = (json.modelTopology.model_config ?? json.modelTopology) as {
    config: { layers: { name?: string; config: { name: string } }[] };
  };
  return root.config.layers.map((l) => l.name ?? l.config.name);
}

test('model ids are unique and the default is the first entry', () => {
  const ids = MODEL_REGISTRY.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(DEFAULT_MODEL_ID, ids[0]);
  assert.equal(findModel(DEFAULT_MODEL_ID), MODEL_REGISTRY[0]);
  assert.equal(findModel('no_such_model'), undefined);
});

test("the panel's model choices (src/shared/modelChoices.ts) are the registry's ids and names, in order", () => {
  assert.deepEqual(
    MODEL_CHOICES.map((c) => ({ id: c.id, name: c.name })),
    MODEL_REGISTRY.map((m) => ({ id: m.id, name: m.name })),
  );
});

test('every entry states a 224 px input, [-1, 1] preprocessing, a feature layer, its feature size and fine-tuning cut points', () => {
  for (const m of MODEL_REGISTRY) {
    assert.equal(m.inputSize, 224, m.id);
    assert.deepEqual(m.preprocessing, { scale: 1 / 127.5, offset: -1 }, m.id);
    assert.ok(m.featureLayer.length > 0, m.id);
    assert.ok(m.fineTuneCutPoints.length >= 3, m.id);
    assert.ok(m.flops !== undefined && m.flops > 0, m.id);
  }
  const v2 = MODEL_REGISTRY.filter((m) => m.family === 'mobilenet_v2');
  const v1 = MODEL_REGISTRY.filter((m) => m.family === 'mobilenet_v1');
  assert.deepEqual(
    v2.map((m) => m.id),
    ['mobilenet_v2_0.35', 'mobilenet_v2_0.50', 'mobilenet_v2_0.75', 'mobilenet_v2_1.00'],
  );
  assert.deepEqual(
    v1.map((m) => m.id),
    ['mobilenet_v1_0.25', 'mobilenet_v1_0.50', 'mobilenet_v1_0.75', 'mobilenet_v1_1.0'],
  );
  for (const m of v2) {
    assert.equal(m.featureLayer, 'global_average_pooling2d');
    assert.equal(m.featureSize, 1280, 'MobileNetV2 keeps 1280 channels in its last conv for widths up to 1.0');
    assert.deepEqual(m.fineTuneCutPoints, ['block_16_expand', 'block_15_expand', 'block_14_expand', 'block_13_expand']);
  }
  assert.deepEqual(
    v1.map((m) => m.featureSize),
    [256, 512, 768, 1024],
  );
  for (const m of v1) {
    assert.equal(m.featureLayer, 'conv_pw_13_relu');
    assert.deepEqual(m.fineTuneCutPoints, ['conv_dw_13', 'conv_dw_12', 'conv_dw_11']);
  }
});

test('hosted widths point at Google-hosted model.json URLs of the right width', () => {
  for (const m of MODEL_REGISTRY.filter((e) => e.id !== DEFAULT_MODEL_ID)) {
    assert.equal(m.source.kind, 'url', m.id);
    if (m.source.kind !== 'url') continue;
    const alpha = m.id.split('_').pop();
    const expected =
      m.family === 'mobilenet_v2'
        ? `https://storage.googleapis.com/teachable-machine-models/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_${alpha}_224_no_top/model.json`
        : `https://storage.googleapis.com/tfjs-models/tfjs/mobilenet_v1_${alpha}_224/model.json`;
    assert.equal(m.source.url, expected);
    assert.doesNotThrow(() => new URL(m.source.kind === 'url' ? m.source.url : ''));
  }
});

test('the embedded default is in the package, matches its pinned sha256 and names layers that exist', () => {
  const m = findModel(DEFAULT_MODEL_ID)!;
  assert.equal(m.source.kind, 'embedded');
  if (m.source.kind !== 'embedded') return;
  const dir = path.join(repoRoot, m.source.folder);
  for (const f of m.files ?? []) {
    const sha = createHash('sha256')
      .update(fs.readFileSync(path.join(dir, f.path)))
      .digest('hex');
    assert.equal(sha, f.sha256, f.path);
  }
  assert.equal(m.files?.[0].sha256, 'e159deb3afa15bc63a53edb3eb31d0d6de1a25f0d8d72d9b8372b5088a902a8a');
  const names = layerNames(path.join(dir, 'model.json'));
  assert.ok(names.includes(m.featureLayer));
  for (const cut of m.fineTuneCutPoints) assert.ok(names.includes(cut), cut);
});

test('the embedded default loads into tfjs and gives a 1280-feature vector for a 224 px image', async () => {
  await tf.setBackend('wasm');
  const m = findModel(DEFAULT_MODEL_ID)!;
  assert.equal(m.source.kind, 'embedded');
  if (m.source.kind !== 'embedded') return;
  const model = await loadLayersModelFromFolder(tf, path.join(repoRoot, m.source.folder));
  try {
    assert.equal(model.countParams(), 410_208);
    const out = tf.tidy(() => model.predict(tf.zeros([1, m.inputSize, m.inputSize, 3])) as tf.Tensor);
    assert.deepEqual(out.shape, [1, m.featureSize]);
    out.dispose();
  } finally {
    model.dispose();
  }
});

test('the MobileNetV1 feature layer and cut points exist in a real MobileNetV1 topology', () => {
  const names = layerNames(path.join(sharedModels, 'mobilenet_v1_0.25_224_imagenet/model.json'));
  for (const m of MODEL_REGISTRY.filter((e) => e.family === 'mobilenet_v1')) {
    assert.ok(names.includes(m.featureLayer), m.featureLayer);
    for (const cut of m.fineTuneCutPoints) assert.ok(names.includes(cut), cut);
  }
});
