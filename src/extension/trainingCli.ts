// Runs the training bundle's command-line modes (`diagnose`, `predict`, `explain`) as a child process and
// parses their JSON output; and stops a child process reliably (ask, then SIGTERM, then SIGKILL).
// No `vscode` import: unit-tested with real child processes.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { BackendAttempt, BackendInfo } from '../shared/types';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Each complete line of stdout and stderr as it arrives (for long commands such as npm installs). */
  onOutput?: (line: string) => void;
}

/** Forks `bundlePath` with `args` (Node, or Electron as Node inside VS Code) and collects its output. */
export function runTrainingCli(bundlePath: string, args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = fork(bundlePath, [...args], {
      cwd: options.cwd,
      // The extension host's own flags (--inspect…) must not leak into the child.
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      serialization: 'json',
    });
    let stdout = '';
    let stderr = '';
    const partial = { out: '', err: '' };
    const emit = (which: 'out' | 'err', chunk: string): void => {
      if (!options.onOutput) return;
      const lines = (partial[which] + chunk).split(/\r?\n/);
      partial[which] = lines.pop() ?? '';
      for (const line of lines) options.onOutput(line);
    };
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      emit('out', chunk);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      emit('err', chunk);
    });
    const timer = options.timeoutMs
      ? setTimeout(() => void stopChildProcess(child, { askMs: 0, termMs: 2000 }), options.timeoutMs)
      : undefined;
    const onAbort = (): void => void stopChildProcess(child, { askMs: 0, termMs: 2000 });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      for (const rest of [partial.out, partial.err]) if (rest) options.onOutput?.(rest);
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface StopOptions {
  /** How long to wait after the polite request (if any) before SIGTERM. */
  askMs: number;
  /** How long to wait after SIGTERM before SIGKILL. */
  termMs: number;
  /** Sends the polite request (e.g. a cancel command over IPC). */
  ask?: () => void;
}

/** True once the child has exited (its exit code or signal is known). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited, or after `ms` with false. */
export function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasExited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(hasExited(child));
    }, ms);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Stops a child: the polite request, then SIGTERM after `askMs`, then SIGKILL after `termMs`.
 * Resolves with how it ended once the process is gone.
 */
export async function stopChildProcess(child: ChildProcess, options: StopOptions): Promise<'exited' | 'terminated' | 'killed'> {
  if (hasExited(child)) return 'exited';
  if (options.ask) {
    try {
      options.ask();
    } catch {
      // the IPC channel is already closed: go straight to signals
    }
    if (await waitForExit(child, options.askMs)) return 'exited';
  }
  child.kill('SIGTERM');
  if (await waitForExit(child, options.termMs)) return 'terminated';
  child.kill('SIGKILL');
  await waitForExit(child, 60_000);
  return 'killed';
}

export interface PredictionLine {
  path: string;
  label: string;
  confidence: number;
  top: { label: string; confidence: number }[];
  /** Distance to the nearest class in the model's feature space (models saved with unknown detection). */
  novelty?: number;
  /** True when `novelty` is above the run's threshold: the image is unlike every class. */
  unknown?: boolean;
}

function isPredictionLine(value: unknown): value is PredictionLine {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.path === 'string' &&
    typeof v.label === 'string' &&
    typeof v.confidence === 'number' &&
    (v.novelty === undefined || typeof v.novelty === 'number') &&
    (v.unknown === undefined || typeof v.unknown === 'boolean') &&
    Array.isArray(v.top) &&
    v.top.every(
      (t) =>
        typeof t === 'object' &&
        t !== null &&
        typeof (t as Record<string, unknown>).label === 'string' &&
        typeof (t as Record<string, unknown>).confidence === 'number',
    )
  );
}

/** The JSON objects of a command's stdout (one a line) that pass `accept`; other lines (logs) are ignored. */
function parseJsonLines<T>(stdout: string, accept: (value: unknown) => value is T): T[] {
  const lines: T[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('{')) continue;
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (accept(parsed)) lines.push(parsed);
    } catch {
      // a log line that happens to start with "{"
    }
  }
  return lines;
}

/** Parses `predict --json` output: one JSON object per image. */
export function parsePredictOutput(stdout: string): PredictionLine[] {
  return parseJsonLines(stdout, isPredictionLine);
}

/** One line of `explain --json`: an image's prediction and heatmap, or why it could not be explained. */
export type ExplainLine =
  | { path: string; label: string; confidence: number; class: string; heatmap: { width: number; height: number; values: number[] } }
  | { path: string; error: string };

function isExplainLine(value: unknown): value is ExplainLine {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.path !== 'string') return false;
  if (typeof v.error === 'string') return true;
  const h = v.heatmap as Record<string, unknown> | null | undefined;
  return (
    typeof v.label === 'string' &&
    typeof v.confidence === 'number' &&
    typeof v.class === 'string' &&
    typeof h === 'object' &&
    h !== null &&
    Number.isInteger(h.width) &&
    Number.isInteger(h.height) &&
    Array.isArray(h.values) &&
    h.values.length === (h.width as number) * (h.height as number) &&
    h.values.every((x) => typeof x === 'number' && x >= 0 && x <= 1)
  );
}

/** Parses `explain --json` output: one JSON object per image. */
export function parseExplainOutput(stdout: string): ExplainLine[] {
  return parseJsonLines(stdout, isExplainLine);
}

function isBackendInfo(value: unknown): value is BackendInfo {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.backend === 'string' && typeof v.summary === 'string' && Array.isArray(v.attempts);
}

/** Parses `diagnose --json` output: the last line (or block) that is a BackendInfo JSON object. */
export function parseDiagnoseOutput(stdout: string): BackendInfo | undefined {
  const trimmed = stdout.trim();
  const candidates = [trimmed, ...trimmed.split(/\r?\n/).reverse()];
  const start = trimmed.indexOf('{');
  if (start > 0) candidates.splice(1, 0, trimmed.slice(start));
  for (const candidate of candidates) {
    try {
      const parsed: unknown = JSON.parse(candidate);
      if (isBackendInfo(parsed)) return parsed;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const BACKEND_LABELS: Record<BackendAttempt['backend'], string> = {
  'tensorflow-gpu': 'GPU (TensorFlow CUDA, `@tensorflow/tfjs-node-gpu`)',
  tensorflow: 'Native CPU (TensorFlow, `@tensorflow/tfjs-node`)',
  wasm: 'WebAssembly (`@tensorflow/tfjs-backend-wasm`)',
  cpu: 'Plain JavaScript CPU (`@tensorflow/tfjs` cpu backend)',
};

function adviceFor(attempt: BackendAttempt): string | undefined {
  const detail = attempt.detail.toLowerCase();
  switch (attempt.backend) {
    case 'tensorflow-gpu':
      if (attempt.status === 'missing') {
        return 'Install `@tensorflow/tfjs-node-gpu` (4.x) next to the extension (it downloads libtensorflow at install time, so it needs internet). It needs an NVIDIA driver, CUDA 11.x (`libcudart.so.11.0`) and cuDNN 8 (`libcudnn.so.8`) on the library path.';
      }
      if (attempt.status === 'failed') {
        if (/libcudart|libcublas|libcufft|libcurand|libcusolver|libcusparse|cuda/.test(detail)) {
          return 'tfjs-node-gpu 4.x is built against CUDA 11.x: install the CUDA 11 runtime (`libcudart.so.11.0`), even if a newer CUDA is present, and make it findable (`LD_LIBRARY_PATH` or `ldconfig`).';
        }
        if (/libcudnn|cudnn/.test(detail))
          return 'Install cuDNN 8 for CUDA 11 (`libcudnn.so.8`) and make it findable (`LD_LIBRARY_PATH` or `ldconfig`).';
        if (/libtensorflow|napi|node_modules|\.node\b/.test(detail)) {
          return "The native module is installed but did not load: reinstall `@tensorflow/tfjs-node-gpu` with the same Node version as the one that runs it (VS Code's extension host or `node`).";
        }
        return 'The GPU module failed to load: see the error above.';
      }
      if (attempt.status === 'no-gpu')
        return 'The module loaded but TensorFlow found no CUDA device: check `nvidia-smi` and the NVIDIA driver.';
      return undefined;
    case 'tensorflow':
      if (attempt.status === 'missing') return 'Install `@tensorflow/tfjs-node` (needs internet at install time) for native CPU speed.';
      if (attempt.status === 'failed')
        return 'The native CPU module failed to load: reinstall `@tensorflow/tfjs-node` for this platform and Node version.';
      return undefined;
    default:
      return undefined;
  }
}

const STATUS_WORDS: Record<BackendAttempt['status'], string> = {
  ok: 'used',
  missing: 'not installed',
  failed: 'failed to load',
  'no-gpu': 'no GPU found',
  skipped: 'not tried (backend setting)',
};

/** A Markdown page explaining which backend runs and what to do to get a faster one. */
export function formatBackendReport(info: BackendInfo, preference: string): string {
  const lines: string[] = [];
  lines.push('# Image Trainer: backend diagnostics', '');
  lines.push(`**Runs on:** ${BACKEND_LABELS[info.backend] ?? info.backend}`, '');
  lines.push(info.summary, '');
  lines.push(`Backend setting (\`imageTrainer.backend\`): \`${preference}\``);
  if (info.featureRuntime) lines.push('', `Feature extraction runtime: ${info.featureRuntime}`);
  if (info.headRuntime) lines.push('', `Head training runtime: ${info.headRuntime}`);
  if (typeof info.threads === 'number') lines.push('', `Threads: ${info.threads}`);
  lines.push('', '## What was tried', '', '| Backend | Result | Detail |', '|---|---|---|');
  for (const attempt of info.attempts) {
    const detail = attempt.detail.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
    lines.push(`| ${BACKEND_LABELS[attempt.backend] ?? attempt.backend} | ${STATUS_WORDS[attempt.status] ?? attempt.status} | ${detail} |`);
  }
  const advice = info.attempts
    .map((a) => ({ a, text: adviceFor(a) }))
    .filter((x): x is { a: BackendAttempt; text: string } => x.text !== undefined && x.a.backend !== info.backend);
  lines.push('', '## What to do');
  if (advice.length === 0) {
    lines.push('', 'Nothing: this is the fastest backend available here.');
  } else {
    for (const { a, text } of advice) lines.push('', `- **${BACKEND_LABELS[a.backend] ?? a.backend}:** ${text}`);
    lines.push(
      '',
      'Every backend gives the same results; WebAssembly is always available and slower. Under VS Code Remote, the training runs on the remote machine, so install the GPU pieces there.',
    );
  }
  return `${lines.join('\n')}\n`;
}
