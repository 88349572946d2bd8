// Times one fine-tuning epoch on tfjs WebAssembly (the wasm gradient kernels) against the step
// graph on onnxruntime (onnx/onnxFineTune.ts), same cut, same rows, interleaved, on as many rows as
// flowers' training split (the time of an epoch does not depend on the values).
// Run: npx tsx scripts/fineTuneRuntimeBench.ts [cut=block_14_expand] [rows=3450] [rounds=2]
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { DEFAULT_TRAIN_OPTIONS } from '../src/shared/types';
import { fineTune, splitAtLayer, type FineTuneRuntime } from '../src/training/fit/fineTune';
import { buildHead } from '../src/training/fit/head';
import { loadOnnxRuntime } from '../src/training/onnx/onnxFeatures';
import { seededRandom } from '../src/training/util/random';

const repoRoot = path.resolve(__dirname, '..');

async function main(): Promise<void> {
  const cutName = process.argv[2] ?? 'block_14_expand';
  const rows = Number(process.argv[3] ?? 3450);
  const rounds = Number(process.argv[4] ?? 2);
  await tf.setBackend('wasm');
  await tf.ready();
  const modelDir = path.join(repoRoot, 'media/models/mobilenet_v2_0.35_224_no_top');
  const json = JSON.parse(await readFile(path.join(modelDir, 'model.json'), 'utf8'));
  const w = await readFile(path.join(modelDir, 'weights.bin'));
  const weightData = w.buffer.slice(w.byteOffset, w.byteOffset + w.byteLength);
  const base = await tf.loadLayersModel(
    tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData }),
  );
  const cut = splitAtLayer(tf, base, cutName);
  const rowShape = cut.top.inputs[0].shape.slice(1) as number[];
  const per = rowShape.reduce((a, b) => a * b, 1);
  const r = seededRandom(1);
  const x = Float32Array.from({ length: rows * per }, () => r() * 6);
  const y = Int32Array.from({ length: rows }, (_, i) => i % 5);
  const set = { x, shape: [rows, ...rowShape], y };
  const val = { x: x.subarray(0, 64 * per), shape: [64, ...rowShape], y: y.subarray(0, 64) };
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') throw new Error(ort);
  const o = { ...DEFAULT_TRAIN_OPTIONS, fineTuneEpochs: 1, fineTuneLearningRate: 1e-5 };
  const runtimes: [string, FineTuneRuntime][] = [
    ['tfjs wasm', { kind: 'tfjs' }],
    ['onnxruntime', { kind: 'onnx', ort, threads: 1 }],
  ];
  console.log(`cut ${cutName} (${rowShape.join('×')}), ${rows} rows, batch ${o.batchSize}, load ${os.loadavg()[0].toFixed(1)}`);
  for (let round = 0; round < rounds; round++) {
    for (const [name, runtime] of runtimes) {
      const head = buildHead(tf, 1280, 5, o);
      let seconds = 0;
      const callbacks = [{ onEpochEnd: (m: { durationMs: number }) => void (seconds = m.durationMs / 1000) }];
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await fineTune(tf, cut, head, set, val, 5, o, { callbacks }, 0, runtime);
      const cpu = process.cpuUsage(cpu0);
      console.log(
        `${name}: epoch ${seconds.toFixed(2)} s (wall incl. set-up ${((performance.now() - t0) / 1000).toFixed(2)} s, CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s), load ${os.loadavg()[0].toFixed(1)}`,
      );
      head.dispose();
    }
  }
}

void main();
