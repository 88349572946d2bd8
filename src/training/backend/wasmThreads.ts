// Threaded WebAssembly for tfjs in Node. tfjs 4.x turns threads off in Node (tfjs issue #3830):
// its flag says no, its worker script is handed over as a `blob:` URL that Node's worker_threads
// refuse, and the C++ side caps the thread pool at half of `os.cpus()` (1 on a 2-core machine).
// This module registers a replacement factory for the 'wasm' backend that builds the threaded
// SIMD module itself: the worker script is written to a private temporary file, the main script
// is the package's own file, and the core count the module sees is raised for the moment it
// initialises so that the pool gets the threads asked for. Kernels stay registered under 'wasm',
// so everything else (gradients registered for 'wasm', `tf.getBackend()`) is unchanged.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as tfType from '@tensorflow/tfjs';
import type { Tf } from '../util/tf';

// esbuild leaves a created require alone, so these resolve in node_modules at run time.
const runtimeRequire = createRequire(__filename);

interface RegistryEntry {
  factory: () => unknown;
  priority: number;
}

interface EmscriptenModule {
  cwrap(name: string, ret: string | null, args: string[]): (...a: number[]) => number;
  PThread?: { runningWorkers: { unref?(): void }[]; unusedWorkers: { unref?(): void }[] };
  tfjs?: Record<string, unknown>;
}

/** The parts of `@tensorflow/tfjs-backend-wasm` used here (pass the module the backend was registered from). */
export interface WasmPackage {
  BackendWasm: new (module: never) => unknown;
  setThreadsCount(n: number): void;
}

export interface ThreadedWasmHandle {
  /** Why the threaded module failed to start, once it has. */
  readonly error?: string;
  /** Puts tfjs's own (single-threaded) factory back, e.g. after the threaded one failed. */
  restore(): void;
}

let workerScriptPath: string | undefined;

/** Writes the pthread worker script to a private temporary folder once per process. */
function writeWorkerScript(pkgDir: string): string {
  if (workerScriptPath && fs.existsSync(workerScriptPath)) return workerScriptPath;
  const { wasmWorkerContents } = runtimeRequire(path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.worker.js')) as {
    wasmWorkerContents: string;
  };
  // mkdtemp: a folder only this process created, so nobody can plant a script we then run.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-wasm-'));
  const file = path.join(dir, 'tfjs-backend-wasm-threaded-simd.worker.cjs');
  // tfjs escapes newlines the same way before making its Blob: the contents hold "\n" in strings.
  fs.writeFileSync(file, wasmWorkerContents.replace(/\n/g, '\\n'), { mode: 0o600 });
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  workerScriptPath = file;
  return file;
}

/**
 * Replaces the 'wasm' backend factory with one that loads the threaded SIMD build with `threads`
 * threads. Must run before the backend is first initialised. Returns a handle to undo it.
 */
export function registerThreadedWasm(tf: Tf, wasmPkg: WasmPackage, wasmBinaryDir: string, threads: number): ThreadedWasmHandle {
  const pkgDir = path.dirname(runtimeRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const factoryPath = path.join(pkgDir, 'wasm-out', 'tfjs-backend-wasm-threaded-simd.js');
  const wasmFile = path.join(wasmBinaryDir, 'tfjs-backend-wasm-threaded-simd.wasm');
  if (!fs.existsSync(wasmFile)) throw new Error(`${wasmFile} is missing`);
  const workerFile = writeWorkerScript(pkgDir);
  const factory = runtimeRequire(factoryPath) as (config: Record<string, unknown>) => Promise<EmscriptenModule>;

  const engine = tf.engine() as unknown as {
    registryFactory: Record<string, RegistryEntry | undefined>;
    registry: Record<string, unknown>;
  };
  const original = engine.registryFactory.wasm;
  if (!original) throw new Error('the WebAssembly backend is not registered');
  // Replacing an initialised backend would dispose it and every tensor on it.
  if (engine.registry.wasm) throw new Error('the WebAssembly backend was started before the thread setup');

  const handle: { error?: string; restore(): void } = {
    restore() {
      tf.removeBackend('wasm');
      tf.registerBackend('wasm', original.factory as () => tfType.KernelBackend, original.priority);
    },
  };
  wasmPkg.setThreadsCount(threads);
  tf.removeBackend('wasm');
  tf.registerBackend(
    'wasm',
    async () => {
      let module: EmscriptenModule;
      // The module reads require('os').cpus().length while it initialises and caps the pool at
      // half of it; the namespace import above is a read-only copy, so patch the real module.
      const osModule = runtimeRequire('node:os') as { cpus: typeof os.cpus };
      const realCpus = osModule.cpus;
      try {
        const cpus = realCpus.call(osModule);
        while (cpus.length < 2 * threads) cpus.push(cpus[0]);
        osModule.cpus = () => cpus;
        module = await withTimeout(
          factory({
            locateFile: (file: string, prefix: string) => {
              if (file.endsWith('.worker.js')) return workerFile;
              if (file.endsWith('.wasm')) return wasmFile;
              return prefix + file;
            },
            mainScriptUrlOrBlob: factoryPath,
          }),
          30_000,
          'the threaded WebAssembly module did not start within 30 s',
        );
      } catch (err) {
        handle.error = err instanceof Error ? err.message : String(err);
        throw err;
      } finally {
        osModule.cpus = realCpus;
      }
      module.tfjs = {
        init: module.cwrap('init', null, []),
        initWithThreadsCount: module.cwrap('init_with_threads_count', null, ['number']),
        getThreadsCount: module.cwrap('get_threads_count', 'number', []),
        registerTensor: module.cwrap('register_tensor', null, ['number', 'number', 'number']),
        disposeData: module.cwrap('dispose_data', null, ['number']),
        dispose: module.cwrap('dispose', null, []),
      };
      const backend = new wasmPkg.BackendWasm(module as never) as tfType.KernelBackend;
      // The constructor started the thread pool; emscripten ref()s a worker while its thread runs,
      // and pool threads never end, so without this the process could never exit on its own.
      for (const w of [...(module.PThread?.runningWorkers ?? []), ...(module.PThread?.unusedWorkers ?? [])]) w.unref?.();
      return backend;
    },
    original.priority,
  );
  return handle;
}

function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
