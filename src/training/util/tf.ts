// The tfjs namespace as the engine receives it: `@tensorflow/tfjs` with WebAssembly, or
// tfjs-node(-gpu) loaded at run time. Passed in rather than imported, so the backend is chosen once.
import type * as tfType from '@tensorflow/tfjs';

/** The tfjs namespace, passed in: `@tensorflow/tfjs` with WebAssembly, or tfjs-node(-gpu). */
export type Tf = typeof tfType;
