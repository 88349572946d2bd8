// Stage 1: the tensor engine, and whether onnxruntime will compute the features.
import { initBackend } from '../../backend/backend';
import { registerWasmGradients } from '../../backend/wasmGradients';
import { probeOnnxRuntime } from '../../onnx/onnxFeatures';
import type { RunStage } from '../runContext';

/** Starts the backend the options ask for (or the best available under `auto`) and logs which one runs and why. */
export const backendStage: RunStage = {
  name: 'backend',
  async run(ctx) {
    const { options } = ctx;
    // When onnxruntime computes the features (and fine-tuning's cut activations and steps),
    // WebAssembly only trains the head: small products whose per-operation thread hand-offs cost
    // more than they gain, so it gets one thread.
    const onnxReady = process.env.IMAGE_TRAINER_FEATURE_RUNTIME !== 'tfjs' && (await probeOnnxRuntime()).ok;
    const backend = await initBackend({
      preference: options.backend,
      nativeModulePaths: ctx.request.nativeModulePaths,
      wasmThreads: onnxReady ? 1 : undefined,
    });
    ctx.log('info', `Backend: ${backend.info.summary}`);
    // WebAssembly lacks convolution gradients and runs transposed products slowly (the head's
    // weight gradients): register the project's kernels for both.
    if (backend.tf.getBackend() === 'wasm') registerWasmGradients(backend.tf);
    ctx.set('backend', { tf: backend.tf, info: backend.info, onnxReady });
  },
};
