// Which engine runs the tensor math, and why not a faster one. Tries, in order:
// @tensorflow/tfjs-node-gpu (CUDA), @tensorflow/tfjs-node (native CPU), @tensorflow/tfjs with the
// WebAssembly backend (threaded where it starts), and the pure-JS 'cpu' backend as a last resort.
// The native packages are optional and never bundled: they are loaded at run time from
// node_modules beside the running code or from folders an "Install GPU Backend" command filled.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as wasmBackend from '@tensorflow/tfjs-backend-wasm';
import type { BackendAttempt, BackendInfo, BackendName, BackendPreference } from '../../shared/types';
import { diagnoseGpu, explainNativeLoadError } from './gpuDiagnostics';
import { registerThreadedWasm } from './wasmThreads';

import { TrainerError } from '../util/errors';
import type { Tf } from '../util/tf';

export interface BackendOptions {
  preference: BackendPreference;
  /** Extra folders holding `node_modules/@tensorflow/tfjs-node(-gpu)` (e.g. installed on demand into the extension's storage). */
  nativeModulePaths?: string[];
  /** WebAssembly threads; default `os.availableParallelism()`. 1 selects the single-threaded SIMD build. */
  wasmThreads?: number;
}

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NATIVE_PACKAGE = '@tensorflow/tfjs-node';

// A require that esbuild does not follow: the native packages must stay out of the bundle.
const runtimeRequire = createRequire(__filename);

type Resolution = { status: 'found'; file: string } | { status: 'missing'; detail: string };

/** Where `pkg` would load from: the given folders first (newest install), then beside this code. */
function resolvePackage(pkg: string, nativeModulePaths: readonly string[]): Resolution {
  const searched: string[] = [];
  for (const dir of nativeModulePaths) {
    const base = path.basename(dir) === 'node_modules' ? path.dirname(dir) : dir;
    searched.push(base);
    const file = path.join(base, 'node_modules', ...pkg.split('/'));
    if (!fs.existsSync(file)) continue;
    try {
      return { status: 'found', file: runtimeRequire.resolve(file) };
    } catch {
      // A folder without an entry point: keep looking, report it as missing below.
    }
  }
  try {
    return { status: 'found', file: runtimeRequire.resolve(pkg) };
  } catch (err) {
    // Installed but unresolvable (a broken package.json, a missing dependency): the requested backend cannot load.
    if (!isModuleNotFound(err, pkg)) throw new TrainerError('backend', `${pkg} cannot be loaded: ${firstLines(err)}`, { cause: err });
  }
  const where = searched.length > 0 ? ` (searched ${searched.join(', ')} and the extension's node_modules)` : '';
  return { status: 'missing', detail: `${pkg} is not installed${where}` };
}

function isModuleNotFound(err: unknown, pkg: string): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === 'MODULE_NOT_FOUND' && (e.message ?? '').split('\n')[0].includes(`'${pkg}'`);
}

function firstLines(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const text = lines.slice(0, 3).join(' ');
  return text.length > 500 ? `${text.slice(0, 497)}...` : text;
}

type NativeLoad = { status: 'ok'; tf: Tf } | { status: 'missing' | 'failed'; detail: string };

function loadNative(pkg: string, nativeModulePaths: readonly string[]): NativeLoad {
  const resolution = resolvePackage(pkg, nativeModulePaths);
  if (resolution.status === 'missing') return resolution;
  try {
    return { status: 'ok', tf: runtimeRequire(resolution.file) as Tf };
  } catch (err) {
    const message = firstLines(err);
    return { status: 'failed', detail: `${pkg} failed to load: ${message} — ${explainNativeLoadError(message)}` };
  }
}

/** Folder holding tfjs-backend-wasm*.wasm: `wasm/` beside the running bundle if packaged there, else the package's dist. */
export function wasmBinaryDir(): string {
  const beside = path.join(__dirname, 'wasm');
  if (fs.existsSync(path.join(beside, 'tfjs-backend-wasm.wasm'))) return beside;
  return path.join(path.dirname(runtimeRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
}

function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

const LABELS: Record<BackendName, string> = {
  'tensorflow-gpu': 'GPU backend',
  tensorflow: 'native CPU backend',
  wasm: 'WebAssembly backend',
  cpu: 'pure-JS CPU backend',
};

function describeAttempt(a: BackendAttempt): string {
  switch (a.status) {
    case 'missing':
      return `${LABELS[a.backend]} not installed (${a.backend === 'tensorflow-gpu' ? GPU_PACKAGE : a.backend === 'tensorflow' ? NATIVE_PACKAGE : a.detail})`;
    case 'failed':
      // The detail is "<pkg> failed to load: <error> — <advice>"; the summary keeps the error only.
      return `${LABELS[a.backend]} failed: ${a.detail.split(' — ')[0]}`;
    case 'no-gpu':
      return `no usable GPU: ${a.detail}`;
    case 'skipped':
    case 'ok':
      return '';
  }
}

/** The one line the user reads: what runs, then why each faster backend did not. */
export function summarize(backend: BackendName, attempts: readonly BackendAttempt[], threads?: number, wasmNote?: string): string {
  const running =
    backend === 'tensorflow-gpu'
      ? 'TensorFlow GPU (CUDA)'
      : backend === 'tensorflow'
        ? 'TensorFlow native CPU'
        : backend === 'wasm'
          ? `WebAssembly (${threads ?? 1} thread${threads === 1 ? '' : 's'}${wasmNote ? `; ${wasmNote}` : ''})`
          : 'pure-JS CPU (slow)';
  const why = attempts.filter((a) => a.status !== 'ok' && a.status !== 'skipped').map(describeAttempt);
  return why.length > 0 ? `${running} — ${why.join('; ')}` : running;
}

interface Plan {
  gpu: boolean;
  native: boolean;
}

function plan(preference: BackendPreference): Plan {
  return { gpu: preference === 'auto' || preference === 'gpu', native: preference === 'auto' || preference === 'cpu-native' };
}

const skippedDetail = (preference: BackendPreference) => `not tried: backend preference is '${preference}'`;

let wasmSetup: { threads: number; note?: string } | undefined;

/** Sets the wasm binary paths and, once per process, the threaded factory; returns the thread count the module will try. */
function prepareWasm(threadsWanted: number): { threads: number; note?: string } {
  if (wasmSetup) return wasmSetup;
  const dir = wasmBinaryDir();
  wasmBackend.setWasmPaths(dir.endsWith(path.sep) ? dir : dir + path.sep);
  wasmSetup = { threads: 1 };
  if (threadsWanted > 1) {
    try {
      threadedHandle = registerThreadedWasm(tf, wasmBackend, dir, threadsWanted);
      wasmSetup = { threads: threadsWanted };
    } catch (err) {
      wasmSetup = { threads: 1, note: `threads unavailable: ${firstLines(err)}` };
    }
  }
  return wasmSetup;
}

let threadedHandle: ReturnType<typeof registerThreadedWasm> | undefined;

async function startWasm(threadsWanted: number): Promise<{ ok: true; threads: number; note?: string } | { ok: false; detail: string }> {
  const setup = prepareWasm(threadsWanted);
  let note = setup.note;
  if (await tf.setBackend('wasm')) return { ok: true, threads: wasmBackend.getThreadsCount(), note };
  if (threadedHandle) {
    note = `threads unavailable: ${threadedHandle.error ?? 'the threaded module failed to start'}`;
    threadedHandle.restore();
    threadedHandle = undefined;
    wasmSetup = { threads: 1, note };
    if (await tf.setBackend('wasm')) return { ok: true, threads: wasmBackend.getThreadsCount(), note };
  }
  return { ok: false, detail: 'the WebAssembly module failed to start (see the log for the tfjs warning)' };
}

async function activateNative(nativeTf: Tf): Promise<boolean> {
  try {
    const ok = await nativeTf.setBackend('tensorflow');
    await nativeTf.ready();
    return ok && nativeTf.getBackend() === 'tensorflow';
  } catch {
    return false;
  }
}

function optionsKey(options: BackendOptions): string {
  return JSON.stringify([options.preference, options.nativeModulePaths ?? [], options.wasmThreads ?? 0]);
}

let active: { key: string; result: Promise<{ tf: Tf; info: BackendInfo }> } | undefined;

/** Chooses and starts the fastest available backend allowed by `options.preference`; safe to call again. */
export async function initBackend(options: BackendOptions): Promise<{ tf: Tf; info: BackendInfo }> {
  const key = optionsKey(options);
  if (active?.key === key) return active.result;
  const result = start(options);
  active = { key, result };
  // A refusal is not remembered: the next call looks again (a backend may have been installed since).
  result.catch(() => {
    if (active?.result === result) active = undefined;
  });
  return result;
}

/**
 * The refusal of an explicitly requested native backend that did not start: running on another
 * one instead would make a user who asked for the GPU wait for WebAssembly without knowing it.
 */
export function requestedBackendUnavailable(preference: 'gpu' | 'cpu-native', attempt: BackendAttempt | undefined): TrainerError {
  const which = preference === 'gpu' ? `the GPU backend (${GPU_PACKAGE})` : `the native CPU backend (${NATIVE_PACKAGE})`;
  return new TrainerError(
    'backend',
    `${which} cannot load: ${attemptReason(attempt)}. Run \`image-trainer diagnose\` to see what is missing, or use --backend auto.`,
  );
}

/** Why one backend attempt did not run, in the words of `requestedBackendUnavailable`. */
function attemptReason(attempt: BackendAttempt | undefined): string {
  if (!attempt) return 'it was not tried';
  switch (attempt.status) {
    case 'missing': {
      const searched = /\(searched (.*)\)$/.exec(attempt.detail)?.[1];
      return `module not installed${searched ? ` (searched ${searched})` : ''}`;
    }
    case 'failed':
      // "<pkg> failed to load: <error> — <advice>": the package is named already.
      return attempt.detail.replace(/^\S+ failed to load: /, '');
    default:
      return attempt.detail;
  }
}

async function start(options: BackendOptions): Promise<{ tf: Tf; info: BackendInfo }> {
  const { preference } = options;
  const paths = options.nativeModulePaths ?? [];
  const p = plan(preference);
  const attempts: BackendAttempt[] = [];
  const done = (engine: Tf, backend: BackendName, detail: string, threads?: number, wasmNote?: string) => {
    attempts.push({ backend, status: 'ok', detail });
    const info: BackendInfo = { backend, summary: summarize(backend, attempts, threads, wasmNote), attempts };
    if (threads !== undefined) info.threads = threads;
    return { tf: engine, info };
  };

  let nativeViaGpuPackage: Tf | undefined;
  if (p.gpu) {
    const gpu = loadNative(GPU_PACKAGE, paths);
    if (gpu.status === 'ok') {
      const probe = await diagnoseGpu();
      if (probe.ready && (await activateNative(gpu.tf))) {
        return done(gpu.tf, 'tensorflow-gpu', `${GPU_PACKAGE} loaded; ${probe.summary}`);
      }
      attempts.push({ backend: 'tensorflow-gpu', status: 'no-gpu', detail: `${GPU_PACKAGE} loaded, but ${probe.summary}` });
      nativeViaGpuPackage = gpu.tf;
    } else if (gpu.status === 'failed') {
      attempts.push({ backend: 'tensorflow-gpu', status: 'failed', detail: gpu.detail });
    } else {
      attempts.push({ backend: 'tensorflow-gpu', status: 'missing', detail: gpu.detail });
    }
  } else {
    attempts.push({ backend: 'tensorflow-gpu', status: 'skipped', detail: skippedDetail(preference) });
  }

  // The GPU asked for by name and not usable: say so rather than run TensorFlow on the CPU.
  if (preference === 'gpu') throw requestedBackendUnavailable('gpu', attempts[0]);
  if (nativeViaGpuPackage && p.native) {
    // tfjs-node-gpu runs TensorFlow on the CPU when CUDA is unusable: as fast as tfjs-node, and
    // loading a second libtensorflow into the same process is asking for trouble.
    if (await activateNative(nativeViaGpuPackage)) {
      return done(nativeViaGpuPackage, 'tensorflow', `TensorFlow on the CPU through ${GPU_PACKAGE}`);
    }
  }
  if (p.native && !nativeViaGpuPackage) {
    const native = loadNative(NATIVE_PACKAGE, paths);
    if (native.status === 'ok') {
      if (await activateNative(native.tf)) return done(native.tf, 'tensorflow', `${NATIVE_PACKAGE} loaded`);
      attempts.push({
        backend: 'tensorflow',
        status: 'failed',
        detail: `${NATIVE_PACKAGE} loaded but its 'tensorflow' backend did not start`,
      });
    } else {
      attempts.push({ backend: 'tensorflow', status: native.status, detail: native.detail });
    }
  } else if (!p.native) {
    attempts.push({ backend: 'tensorflow', status: 'skipped', detail: skippedDetail(preference) });
  }
  if (preference === 'cpu-native') throw requestedBackendUnavailable('cpu-native', attempts.at(-1));

  const wasm = await startWasm(options.wasmThreads ?? defaultThreads());
  if (wasm.ok) {
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const build = wasm.threads > 1 ? 'threaded SIMD' : simd ? 'SIMD' : 'plain';
    return done(
      tf,
      'wasm',
      `@tensorflow/tfjs-backend-wasm, ${build} build, ${wasm.threads} thread(s)${wasm.note ? `; ${wasm.note}` : ''}`,
      wasm.threads,
      wasm.note,
    );
  }
  attempts.push({ backend: 'wasm', status: 'failed', detail: wasm.detail });

  await tf.setBackend('cpu');
  return done(tf, 'cpu', 'pure-JS backend of @tensorflow/tfjs');
}

/** What `initBackend` would choose and why not the faster ones, without switching backends. */
export async function diagnoseBackends(options: BackendOptions): Promise<BackendInfo> {
  if (active?.key === optionsKey(options)) return (await active.result).info;
  const { preference } = options;
  const paths = options.nativeModulePaths ?? [];
  const p = plan(preference);
  const attempts: BackendAttempt[] = [];
  const finish = (backend: BackendName, detail: string, threads?: number): BackendInfo => {
    attempts.push({ backend, status: 'ok', detail });
    const info: BackendInfo = { backend, summary: summarize(backend, attempts, threads), attempts };
    if (threads !== undefined) info.threads = threads;
    return info;
  };
  if (p.gpu) {
    const gpu = loadNative(GPU_PACKAGE, paths);
    const probe = await diagnoseGpu();
    if (gpu.status === 'ok') {
      if (probe.ready) return finish('tensorflow-gpu', `${GPU_PACKAGE} loads; ${probe.summary}`);
      attempts.push({ backend: 'tensorflow-gpu', status: 'no-gpu', detail: `${GPU_PACKAGE} loads, but ${probe.summary}` });
      return finish('tensorflow', `TensorFlow on the CPU through ${GPU_PACKAGE}`);
    }
    // Name what is missing on the machine too, so installing the package is not the only hint.
    attempts.push({ backend: 'tensorflow-gpu', status: gpu.status, detail: `${gpu.detail}. ${probe.summary}` });
  } else {
    attempts.push({ backend: 'tensorflow-gpu', status: 'skipped', detail: skippedDetail(preference) });
  }
  if (p.native) {
    const native = loadNative(NATIVE_PACKAGE, paths);
    if (native.status === 'ok') return finish('tensorflow', `${NATIVE_PACKAGE} loads`);
    attempts.push({ backend: 'tensorflow', status: native.status, detail: native.detail });
  } else {
    attempts.push({ backend: 'tensorflow', status: 'skipped', detail: skippedDetail(preference) });
  }
  const dir = wasmBinaryDir();
  if (
    typeof (globalThis as { WebAssembly?: unknown }).WebAssembly === 'object' &&
    fs.existsSync(path.join(dir, 'tfjs-backend-wasm-simd.wasm'))
  ) {
    const threads = options.wasmThreads ?? defaultThreads();
    return finish('wasm', `@tensorflow/tfjs-backend-wasm from ${dir}; up to ${threads} thread(s)`, threads);
  }
  attempts.push({ backend: 'wasm', status: 'failed', detail: `WebAssembly binaries not found in ${dir}` });
  return finish('cpu', 'pure-JS backend of @tensorflow/tfjs');
}
