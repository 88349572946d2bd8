// Installs the optional native TensorFlow backends with npm, on demand, into a folder the
// extension owns (its global storage), because they cannot ship in the package: their install
// script downloads libtensorflow (hundreds of MB, per platform) from Google.

import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

export type NativeBackendKind = 'gpu' | 'cpu';

/** The tfjs-node version matching the bundled @tensorflow/tfjs. */
export const NATIVE_BACKEND_VERSION = '4.22.0';

export interface NativeBackendInstallResult {
  ok: boolean;
  /** The installed package folder (loadable with `require(modulePath)`), when ok. */
  modulePath?: string;
  /** What happened, in words; on failure with npm's last error lines. */
  message: string;
}

export interface NativeBackendInstallOptions {
  /** Each line npm prints (stdout and stderr), as it arrives. */
  onOutput(line: string): void;
  signal?: AbortSignal;
  /** The npm executable (default `npm`, `npm.cmd` on Windows). */
  npmCommand?: string;
}

/** The npm package for a native backend kind. */
export function nativeBackendPackage(kind: NativeBackendKind): '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node' {
  return kind === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
}

/** Where `installNativeBackend(kind, targetDir)` puts the package (whether or not it is there yet). */
export function nativeBackendModulePath(kind: NativeBackendKind, targetDir: string): string {
  return path.join(nativeBackendPrefix(kind, targetDir), 'node_modules', ...nativeBackendPackage(kind).split('/'));
}

/** Runs `npm install --no-save --prefix <targetDir>/<package> <package>@4.22.0`, streaming npm's output, and checks the native binary arrived. */
export async function installNativeBackend(
  kind: NativeBackendKind,
  targetDir: string,
  opts: NativeBackendInstallOptions,
): Promise<NativeBackendInstallResult> {
  const pkg = `${nativeBackendPackage(kind)}@${NATIVE_BACKEND_VERSION}`;
  // One prefix per kind: with --no-save, installing one package into a shared prefix would prune the other.
  const prefix = nativeBackendPrefix(kind, targetDir);
  const modulePath = nativeBackendModulePath(kind, targetDir);
  if (opts.signal?.aborted) return { ok: false, message: `Installation of ${pkg} was cancelled before it started.` };
  await fsp.mkdir(prefix, { recursive: true });

  const npm = opts.npmCommand ?? (process.platform === 'win32' ? 'npm.cmd' : 'npm');
  const args = ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, pkg];
  opts.onOutput(`$ ${[npm, ...args].join(' ')}`);
  const started = Date.now();
  const outcome = await runNpm(npm, args, prefix, opts);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  return judgeInstall({ pkg, npm, modulePath, seconds, signal: opts.signal }, outcome);
}

/** How an npm run ended, with the last lines it printed. */
interface NpmOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnError?: NodeJS.ErrnoException;
  /** stdout and stderr interleaved as they arrived, the last 400 lines. */
  lines: string[];
}

/** Runs npm in `cwd`, passing each output line on as it arrives; SIGTERMs it when `opts.signal` aborts. */
function runNpm(npm: string, args: string[], cwd: string, opts: NativeBackendInstallOptions): Promise<NpmOutcome> {
  const lines: string[] = [];
  return new Promise((resolve) => {
    // npm.cmd can only be started through a shell on Windows (Node ≥ 20.12).
    const shell = process.platform === 'win32' && /\.(cmd|bat)$/i.test(npm);
    const child = spawn(shell ? quote(npm) : npm, shell ? args.map(quote) : args, {
      cwd,
      shell,
      windowsHide: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_config_update_notifier: 'false', npm_config_progress: 'false' },
    });
    const onLine = (line: string) => {
      lines.push(line);
      if (lines.length > 400) lines.shift();
      opts.onOutput(line);
    };
    // The exit is reported once both streams are drained too, so no last line is lost.
    let open = 0;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const done = () => {
      if (exit && open === 0) {
        opts.signal?.removeEventListener('abort', onAbort);
        resolve({ ...exit, lines });
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      open++;
      const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', onLine);
      rl.on('close', () => {
        open--;
        done();
      });
    }
    const onAbort = () => child.kill('SIGTERM');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err: NodeJS.ErrnoException) => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ code: null, signal: null, spawnError: err, lines });
    });
    child.on('close', (code, signal) => {
      exit = { code, signal };
      done();
    });
  });
}

/** The result of an npm run in words: why it failed (removing a half-installed package), or where the package now is. */
async function judgeInstall(
  install: { pkg: string; npm: string; modulePath: string; seconds: string; signal?: AbortSignal },
  outcome: NpmOutcome,
): Promise<NativeBackendInstallResult> {
  const { pkg, npm, modulePath, seconds } = install;
  const { lines } = outcome;
  if (outcome.spawnError) {
    const why =
      outcome.spawnError.code === 'ENOENT'
        ? `${npm} was not found on PATH (VS Code's own Node.js has no npm): install Node.js with npm, or set the npm path, then try again`
        : `${npm} could not be started (${outcome.spawnError.code ?? outcome.spawnError.message})`;
    return { ok: false, message: `Could not install ${pkg}: ${why}.` };
  }
  if (install.signal?.aborted) {
    await removeIfIncomplete(modulePath);
    return { ok: false, message: `Installation of ${pkg} was cancelled after ${seconds} s; nothing half-installed was kept.` };
  }
  if (outcome.code !== 0) {
    await removeIfIncomplete(modulePath);
    const status = outcome.code === null ? `was stopped by ${outcome.signal}` : `failed (exit code ${outcome.code})`;
    return {
      ok: false,
      message: `npm install ${pkg} ${status}${diagnoseNpmOutput(lines)}. npm's last error lines:\n${lastErrorLines(lines).join('\n')}`,
    };
  }
  if (!(await exists(path.join(modulePath, 'package.json')))) {
    return {
      ok: false,
      message: `npm finished, but ${pkg} is not in ${modulePath}. npm's last lines:\n${lastErrorLines(lines).join('\n')}`,
    };
  }
  if (!(await hasNativeBinding(modulePath))) {
    return {
      ok: false,
      message: `npm installed ${pkg}, but without its native binary (lib/napi-v*/tfjs_binding.node): its install script could not download libtensorflow (it needs internet access to storage.googleapis.com). Reinstall with internet access, or keep training on WebAssembly.`,
    };
  }
  return { ok: true, modulePath, message: `Installed ${pkg} in ${modulePath} (${seconds} s). New training runs will try it.` };
}

/** The folders the backend loader searches for backends installed into `targetDir`, GPU first. */
export function nativeModuleSearchPaths(targetDir: string): string[] {
  return (['gpu', 'cpu'] as const).map((kind) => nativeBackendPrefix(kind, targetDir));
}

function nativeBackendPrefix(kind: NativeBackendKind, targetDir: string): string {
  return path.join(targetDir, kind === 'gpu' ? 'tfjs-node-gpu' : 'tfjs-node');
}

/** A short reason from npm's output for the failures users meet most. */
function diagnoseNpmOutput(lines: string[]): string {
  const text = lines.join('\n');
  if (
    /libtensorflow|storage\.googleapis\.com/i.test(text) &&
    /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ECONNRESET|getaddrinfo|socket hang up|403|404/i.test(text)
  ) {
    return ': its install script could not download libtensorflow from storage.googleapis.com (no internet access, or a proxy/firewall)';
  }
  if (/ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT/.test(text) && /registry\.npmjs\.org|registry/i.test(text)) {
    return ': the npm registry could not be reached (no internet access, or a proxy/firewall)';
  }
  if (/EACCES|EPERM/.test(text)) return ': npm was not allowed to write the install folder';
  if (/ENOSPC/.test(text)) return ': the disk is full';
  return '';
}

/** npm's error lines (`npm error …` / `npm ERR! …`) without stack frames and dumps, else the last lines printed. */
function lastErrorLines(lines: string[], count = 10): string[] {
  const errors = lines.filter((l) => /^npm (ERR!|error)/.test(l));
  const telling = errors.filter((l) => {
    const text = l.replace(/^npm (ERR!|error)\s?/, '');
    return !(
      text.trim() === '' ||
      /^\s+at\s/.test(text) || // stack frame
      /^\s*[\^{}]\s*$/.test(text) ||
      /^\s+\w+: /.test(text) || // fields of a dumped error object
      /^node:\w+:\d+$/.test(text.trim()) ||
      /throw er;|^Emitted '.*' event|^Node\.js v\d/.test(text.trim())
    );
  });
  return (telling.length > 0 ? telling : lines.filter((l) => l.trim() !== '')).slice(-count);
}

async function hasNativeBinding(modulePath: string): Promise<boolean> {
  const lib = path.join(modulePath, 'lib');
  for (const name of await fsp.readdir(lib).catch(() => [] as string[])) {
    if (name.startsWith('napi-v') && (await exists(path.join(lib, name, 'tfjs_binding.node')))) return true;
  }
  return false;
}

/** A package folder left by an interrupted install would fail to load later; one with its binary is kept. */
async function removeIfIncomplete(modulePath: string): Promise<void> {
  if ((await exists(modulePath)) && !(await hasNativeBinding(modulePath))) await fsp.rm(modulePath, { recursive: true, force: true });
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(
    () => true,
    () => false,
  );
}

function quote(arg: string): string {
  return /[\s"&|<>^]/.test(arg) ? `"${arg.replace(/"/g, '""')}"` : arg;
}
