// Downloads a hosted TF.js LayersModel (model.json + weight shards) into the model cache.
// Files stream into `<cache>/models/<id>.partial-<pid>-<random>/` and the folder is renamed to
// `<cache>/models/<id>/` only when every file arrived whole and verified, so the cache never holds
// half a model: a finished folder is trusted and reused without network.

import { createHash, randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_MODEL_ID, findModel } from './modelRegistry';
import type { ModelEntry } from './modelRegistry';
import { TrainerError } from '../util/errors';

export interface DownloadProgress {
  /** Bytes received so far, all files together. */
  bytes: number;
  /** Total bytes expected, once model.json has told the shard sizes. */
  total?: number;
  /** The file being downloaded (path relative to model.json). */
  file: string;
  /** 0–100, when the total is known. */
  percent?: number;
}

export interface EnsureModelOptions {
  onProgress?(p: DownloadProgress): void;
  signal?: AbortSignal;
  /** Per request: give up when the server sends nothing for this long (default 30 s). */
  timeoutMs?: number;
  fetchImpl?: typeof fetch;
  /** Where `embedded` entries' folders are relative to (the extension or package root). */
  extensionRoot?: string;
}

export type ModelDownloadErrorKind =
  'http' | 'offline' | 'network' | 'truncated' | 'size' | 'checksum' | 'timeout' | 'cancelled' | 'invalid' | 'filesystem';

/** A download that did not produce a complete model; `message` says why in words, `reason` in a word. */
export class ModelDownloadError extends TrainerError {
  override readonly name = 'ModelDownloadError';
  constructor(
    readonly reason: ModelDownloadErrorKind,
    message: string,
    readonly url?: string,
  ) {
    super(reason === 'cancelled' ? 'cancelled' : reason === 'filesystem' ? 'disk' : 'model-download', message);
  }
}

/** The part of model.json this module reads. */
interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string };
}
export interface ManifestGroup {
  paths: string[];
  weights: WeightSpec[];
}

const DEFAULT_TIMEOUT_MS = 30_000;
const PROGRESS_INTERVAL_MS = 100;
/** A partial folder of a process that is still alive is left alone unless it is this old. */
const STALE_PARTIAL_MS = 6 * 60 * 60 * 1000;

const inFlight = new Map<string, Promise<string>>();

/** Folder holding model.json + shards for `entry`: downloaded into `cacheDir/models/<id>` if not there yet. */
export async function ensureModel(entry: ModelEntry, cacheDir: string, opts: EnsureModelOptions = {}): Promise<string> {
  const source = entry.source;
  if (source.kind === 'folder') return source.path;
  if (source.kind === 'embedded') {
    if (!opts.extensionRoot)
      throw new ModelDownloadError(
        'invalid',
        `${displayName(entry)} is embedded, but no extension root was given to find ${source.folder}.`,
      );
    return path.resolve(opts.extensionRoot, source.folder);
  }
  const modelsDir = path.join(cacheDir, 'models');
  const finalDir = modelFolder(cacheDir, entry.id);
  // Two callers in one process share one download instead of racing into two partial folders.
  const running = inFlight.get(finalDir);
  if (running) return running;
  const job = (async () => {
    await fsp.mkdir(modelsDir, { recursive: true });
    await removeStalePartials(modelsDir, entry.id);
    if (await isCompleteModelFolder(finalDir)) return finalDir;
    await fsp.rm(finalDir, { recursive: true, force: true });
    return download(entry, source.url, modelsDir, finalDir, opts);
  })();
  inFlight.set(finalDir, job);
  try {
    return await job;
  } finally {
    inFlight.delete(finalDir);
  }
}

/** Where the finished download of model `id` lives (whether or not it is there yet). */
export function modelFolder(cacheDir: string, id: string): string {
  return path.join(cacheDir, 'models', safeId(id));
}

/** Bytes the manifest's weight specs add up to, or undefined when a dtype has no fixed size (strings). */
export function manifestWeightBytes(manifest: ManifestGroup[]): number | undefined {
  let total = 0;
  for (const group of manifest) {
    for (const spec of group.weights) {
      const size = bytesPerElement(spec.quantization?.dtype ?? spec.dtype);
      if (size === undefined) return undefined;
      total += spec.shape.reduce((a, b) => a * b, 1) * size;
    }
  }
  return total;
}

/** One line for a terminal: a bar, percent, megabytes and the current file. */
export function formatDownloadProgress(p: DownloadProgress, width = 24): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  if (p.total === undefined || p.percent === undefined) return `${mb(p.bytes)} MB  ${p.file}`;
  const filled = Math.max(0, Math.min(width, Math.round((p.percent / 100) * width)));
  const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
  return `${bar} ${p.percent.toFixed(0).padStart(3)}%  ${mb(p.bytes)}/${mb(p.total)} MB  ${p.file}`;
}

async function download(
  entry: ModelEntry,
  modelUrl: string,
  modelsDir: string,
  finalDir: string,
  opts: EnsureModelOptions,
): Promise<string> {
  const partial = path.join(modelsDir, `${safeId(entry.id)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  const fetchImpl = opts.fetchImpl ?? fetch;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const pinned = new Map((entry.files ?? []).map((f) => [f.path, f]));
  const progress = new ProgressReporter(opts.onProgress);
  const fetchContext = (file: string): FetchContext => ({ fetchImpl, timeoutMs, signal: opts.signal, progress, pinned: pinned.get(file) });
  try {
    await fsp.mkdir(partial);
    const modelJsonPath = path.join(partial, 'model.json');
    await fetchToFile(entry, modelUrl, 'model.json', modelJsonPath, fetchContext('model.json'));
    const manifest = await readManifest(entry, modelUrl, modelJsonPath);
    const files = manifest.flatMap((g) => g.paths);
    const expected = manifestWeightBytes(manifest);
    const pinnedTotal = files.every((f) => pinned.get(f)?.bytes !== undefined)
      ? files.reduce((sum, f) => sum + (pinned.get(f)?.bytes ?? 0), 0)
      : undefined;
    progress.setTotal(progress.bytes + (expected ?? pinnedTotal ?? 0) || undefined);
    let shardBytes = 0;
    for (const file of files) {
      const target = path.resolve(partial, file);
      if (!target.startsWith(partial + path.sep)) {
        throw downloadError('invalid', entry, `model.json names a weight file outside its folder (${file}).`, modelUrl);
      }
      await fsp.mkdir(path.dirname(target), { recursive: true });
      const url = new URL(file, modelUrl).toString();
      shardBytes += await fetchToFile(entry, url, file, target, fetchContext(file));
    }
    if (expected !== undefined && shardBytes !== expected) {
      throw downloadError(
        'size',
        entry,
        `the weight files hold ${shardBytes} bytes but model.json describes ${expected}; the files on the server do not belong together.`,
        modelUrl,
      );
    }
    progress.finish();
    try {
      await fsp.rename(partial, finalDir);
    } catch (err) {
      // Another process finished the same model first: theirs is as good as ours.
      if (await isCompleteModelFolder(finalDir)) {
        await fsp.rm(partial, { recursive: true, force: true });
        return finalDir;
      }
      throw err;
    }
    return finalDir;
  } catch (err) {
    await fsp.rm(partial, { recursive: true, force: true }).catch(() => undefined);
    if (err instanceof ModelDownloadError) throw err;
    const e = err as NodeJS.ErrnoException;
    throw downloadError('filesystem', entry, `could not write the model cache (${e.code ?? e.message}).`);
  }
}

interface FetchContext {
  fetchImpl: typeof fetch;
  timeoutMs: number;
  signal?: AbortSignal;
  progress: ProgressReporter;
  pinned?: { bytes?: number; sha256?: string };
}

/** Streams one URL into `target`, checking length and pinned size/sha256; returns the byte count. */
async function fetchToFile(entry: ModelEntry, url: string, file: string, target: string, ctx: FetchContext): Promise<number> {
  if (ctx.signal?.aborted) throw cancelled(entry);
  const watch = new RequestWatch(entry, url, ctx.timeoutMs, ctx.signal);
  let handle: fsp.FileHandle | undefined;
  try {
    watch.arm();
    const response = await watch.race(ctx.fetchImpl(url, { signal: watch.signal, redirect: 'follow' }));
    if (!response.ok) {
      await response.body?.cancel().catch(() => undefined);
      const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
      throw downloadError('http', entry, `the server answered ${status} for ${url}.`, url);
    }
    const contentLength = declaredLength(response);
    handle = await fsp.open(target, 'wx');
    const received = await writeBody(response, handle, watch, (n) => ctx.progress.add(n, file));
    checkReceived(entry, url, file, received, contentLength, ctx.pinned);
    return received.bytes;
  } catch (err) {
    throw watch.fail(err);
  } finally {
    watch.stop();
    await handle?.close();
  }
}

/** The body's length from Content-Length, when that counts the bytes we write. */
function declaredLength(response: Response): number | undefined {
  // With a content encoding the header counts compressed bytes, not the ones we write.
  const encoding = response.headers.get('content-encoding');
  const lengthHeader = response.headers.get('content-length');
  return lengthHeader !== null && (!encoding || encoding === 'identity') ? Number(lengthHeader) : undefined;
}

/** Streams the body into `handle`, hashing it and telling `onBytes` of each chunk; a stream that breaks off is `truncated`. */
async function writeBody(
  response: Response,
  handle: fsp.FileHandle,
  watch: RequestWatch,
  onBytes: (n: number) => void,
): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  if (response.body) {
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value: chunk } = await watch.race(reader.read());
        if (done) break;
        watch.arm();
        hash.update(chunk);
        await handle.write(chunk);
        bytes += chunk.byteLength;
        onBytes(chunk.byteLength);
        if (watch.signal.aborted) throw new Error('aborted');
      }
    } catch (err) {
      reader.cancel().catch(() => undefined);
      if (watch.stoppedOnPurpose()) throw watch.fail(err);
      const of = declaredLength(response);
      throw downloadError(
        'truncated',
        watch.entry,
        `the connection broke after ${bytes}${of !== undefined ? ` of ${of}` : ''} bytes of ${watch.url}.`,
        watch.url,
      );
    }
  }
  return { bytes, sha256: hash.digest('hex') };
}

/** Throws unless the file is as long as the server said, and has the size and sha256 the registry pins. */
function checkReceived(
  entry: ModelEntry,
  url: string,
  file: string,
  received: { bytes: number; sha256: string },
  contentLength: number | undefined,
  pinned: FetchContext['pinned'],
): void {
  const { bytes, sha256 } = received;
  if (contentLength !== undefined && Number.isFinite(contentLength) && bytes !== contentLength) {
    throw downloadError('truncated', entry, `received ${bytes} of ${contentLength} bytes of ${url}; the body was cut short.`, url);
  }
  if (pinned?.bytes !== undefined && bytes !== pinned.bytes) {
    throw downloadError('size', entry, `${file} has ${bytes} bytes, expected ${pinned.bytes}.`, url);
  }
  if (pinned?.sha256 && sha256 !== pinned.sha256.toLowerCase()) {
    throw downloadError(
      'checksum',
      entry,
      `${file} does not match its known checksum (sha256 ${sha256}, expected ${pinned.sha256}); the file was changed or damaged on the way.`,
      url,
    );
  }
}

/**
 * Aborts one request when the user cancels or the server sends nothing for `timeoutMs`, and
 * turns whatever the request then throws into the download error it amounts to.
 */
class RequestWatch {
  private readonly controller = new AbortController();
  private timedOut = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly stopped: Promise<never>;
  private readonly onCancel = () => this.controller.abort();

  constructor(
    readonly entry: ModelEntry,
    readonly url: string,
    private readonly timeoutMs: number,
    private readonly cancel: AbortSignal | undefined,
  ) {
    cancel?.addEventListener('abort', this.onCancel, { once: true });
    // Every wait races this: undici can leave a pending body read unsettled when a fetch is aborted
    // after its body arrived, and a custom fetchImpl may ignore the signal altogether.
    this.stopped = new Promise<never>((_, reject) => {
      this.controller.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
    this.stopped.catch(() => undefined);
  }

  /** The signal the request itself is given. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** (Re)starts the silence timer: when the request starts and on every chunk. */
  arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort();
    }, this.timeoutMs);
  }

  /** `wait`, or a rejection as soon as the request is aborted. */
  race<T>(wait: Promise<T>): Promise<T> {
    return Promise.race([wait, this.stopped]);
  }

  /** True when the request was stopped by the timeout or the user, rather than broken by the network. */
  stoppedOnPurpose(): boolean {
    return this.timedOut || this.cancel?.aborted === true;
  }

  /** `err` as a download error: itself when it is one, else a timeout, a cancel or a network failure. */
  fail(err: unknown): ModelDownloadError {
    if (err instanceof ModelDownloadError) return err;
    if (this.timedOut) {
      return downloadError(
        'timeout',
        this.entry,
        `the server stopped answering for ${formatSeconds(this.timeoutMs)} while sending ${this.url}.`,
        this.url,
      );
    }
    if (this.cancel?.aborted) return cancelled(this.entry);
    return networkError(this.entry, this.url, err);
  }

  /** Stops the timer and stops listening for the cancel. */
  stop(): void {
    clearTimeout(this.timer);
    this.cancel?.removeEventListener('abort', this.onCancel);
  }
}

async function readManifest(entry: ModelEntry, url: string, modelJsonPath: string): Promise<ManifestGroup[]> {
  let json: unknown;
  try {
    json = JSON.parse(await fsp.readFile(modelJsonPath, 'utf8'));
  } catch {
    throw downloadError('invalid', entry, `${url} is not valid JSON, so it is not a TF.js model.`, url);
  }
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!isManifest(manifest)) {
    throw downloadError('invalid', entry, `${url} has no valid weightsManifest, so it is not a TF.js LayersModel.`, url);
  }
  return manifest;
}

/** True when `value` looks like a TF.js weightsManifest (groups of paths and weight specs). */
export function isManifest(value: unknown): value is ManifestGroup[] {
  return (
    Array.isArray(value) &&
    value.every(
      (g) =>
        g !== null &&
        typeof g === 'object' &&
        Array.isArray(g.paths) &&
        g.paths.every((p: unknown) => typeof p === 'string' && p.length > 0) &&
        Array.isArray(g.weights) &&
        g.weights.every(
          (w: unknown) =>
            w !== null &&
            typeof w === 'object' &&
            typeof (w as WeightSpec).name === 'string' &&
            typeof (w as WeightSpec).dtype === 'string' &&
            Array.isArray((w as WeightSpec).shape),
        ),
    )
  );
}

/** A folder is complete when model.json parses and every shard it names has the manifest's byte total. */
async function isCompleteModelFolder(dir: string): Promise<boolean> {
  try {
    const json = JSON.parse(await fsp.readFile(path.join(dir, 'model.json'), 'utf8')) as { weightsManifest?: unknown };
    if (!isManifest(json.weightsManifest)) return false;
    let bytes = 0;
    for (const file of json.weightsManifest.flatMap((g) => g.paths)) bytes += (await fsp.stat(path.join(dir, file))).size;
    const expected = manifestWeightBytes(json.weightsManifest);
    return expected === undefined || expected === bytes;
  } catch {
    return false;
  }
}

/** Removes partial folders of `id` left by a process that died (or that are very old). */
async function removeStalePartials(modelsDir: string, id: string): Promise<void> {
  const prefix = `${safeId(id)}.partial-`;
  for (const name of await fsp.readdir(modelsDir)) {
    if (!name.startsWith(prefix)) continue;
    const full = path.join(modelsDir, name);
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    const stat = await fsp.stat(full).catch(() => undefined);
    const old = stat !== undefined && Date.now() - stat.mtimeMs > STALE_PARTIAL_MS;
    // Our own pid's partials are always stale here: in-flight downloads in this process are deduplicated.
    if (pid === process.pid || !isProcessAlive(pid) || old) await fsp.rm(full, { recursive: true, force: true });
  }
}

function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

class ProgressReporter {
  bytes = 0;
  private total: number | undefined;
  private lastEmit = 0;
  private lastFile = '';
  constructor(private readonly onProgress?: (p: DownloadProgress) => void) {}
  setTotal(total: number | undefined): void {
    this.total = total;
  }
  add(n: number, file: string): void {
    this.bytes += n;
    const now = Date.now();
    // At most ~10 events a second, but always one when a new file starts.
    if (file !== this.lastFile || now - this.lastEmit >= PROGRESS_INTERVAL_MS) this.emit(file, now);
  }
  finish(): void {
    this.emit(this.lastFile, Date.now());
  }
  private emit(file: string, now: number): void {
    this.lastEmit = now;
    this.lastFile = file;
    if (!this.onProgress) return;
    const total = this.total !== undefined ? Math.max(this.total, this.bytes) : undefined;
    const percent = total ? Math.min(100, (this.bytes / total) * 100) : undefined;
    this.onProgress({ bytes: this.bytes, total, file, percent });
  }
}

function bytesPerElement(dtype: string): number | undefined {
  switch (dtype) {
    case 'float32':
    case 'int32':
      return 4;
    case 'float16':
    case 'uint16':
    case 'int16':
      return 2;
    case 'uint8':
    case 'int8':
    case 'bool':
      return 1;
    case 'complex64':
      return 8;
    default:
      return undefined;
  }
}

function networkError(entry: ModelEntry, url: string, err: unknown): ModelDownloadError {
  const code = errorCode(err);
  const host = safeHost(url);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return downloadError(
      'offline',
      entry,
      `${host} could not be found (${code}); this machine seems to be offline or blocks that host.`,
      url,
    );
  }
  if (code === 'ECONNREFUSED' || code === 'ENETUNREACH' || code === 'EHOSTUNREACH') {
    return downloadError(
      'offline',
      entry,
      `${host} could not be reached (${code}); this machine seems to be offline or behind a firewall.`,
      url,
    );
  }
  const detail = code ?? (err instanceof Error ? err.message : String(err));
  return downloadError('network', entry, `the request for ${url} failed (${detail}).`, url);
}

/** The errno-style code of a fetch failure (undici puts it on `cause`, sometimes nested). */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    const errors = (e as { errors?: unknown }).errors;
    if (Array.isArray(errors) && errors.length > 0) {
      const inner = errorCode(errors[0]);
      if (inner) return inner;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function cancelled(entry: ModelEntry): ModelDownloadError {
  return new ModelDownloadError('cancelled', `Download of ${displayName(entry)} was cancelled; nothing was kept.${fallbackHint(entry)}`);
}

/** "Could not download <model>: <detail>", with the hint that the run can go on with the embedded model. */
function downloadError(kind: ModelDownloadErrorKind, entry: ModelEntry, detail: string, url?: string): ModelDownloadError {
  return new ModelDownloadError(kind, `Could not download ${displayName(entry)}: ${detail}${fallbackHint(entry)}`, url);
}

function fallbackHint(entry: ModelEntry): string {
  const fallback = findModel(DEFAULT_MODEL_ID);
  if (!fallback || fallback.id === entry.id || fallback.source.kind !== 'embedded') return '';
  return ` The run can continue with the embedded ${displayName(fallback)}.`;
}

/** "MobileNetV2 1.00 (224 px, ImageNet)" → "MobileNetV2 1.00". */
function displayName(entry: ModelEntry): string {
  return entry.name.replace(/\s*\([^)]*\)\s*$/, '') || entry.id;
}

function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}
