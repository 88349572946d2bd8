// The training bundle (dist/training.js) as the CLI and the extension run it, for integration
// tests: the sample dataset, run folders, and a forked child process driven over IPC.
import assert from 'node:assert/strict';
import { execFile, fork, type ChildProcess } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainingNotification } from '../../src/shared/protocol/training';
import { DEFAULT_TRAIN_OPTIONS } from '../../src/shared/types';

export const repo = path.resolve(__dirname, '../..');
export const bundle = path.join(repo, 'dist/training.js');
export const sample = path.join(repo, 'samples/leaves');

/** A copy of `n` images per class of the sample, so tests never touch the shipped folder. */
export function copySample(dest: string, perClass: number, classes = ['black_rot', 'cedar_rust', 'healthy', 'scab']): void {
  for (const c of classes) {
    fs.mkdirSync(path.join(dest, c), { recursive: true });
    for (const f of fs.readdirSync(path.join(sample, c)).sort().slice(0, perClass)) {
      fs.copyFileSync(path.join(sample, c, f), path.join(dest, c, f));
    }
  }
}

/** Runs the built bundle as the CLI with `args`: its exit code (null when killed), stdout and stderr. */
export function runBundle(args: readonly string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bundle, ...args], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr });
    });
  });
}

/** Trains `perClass` sample images of `classes` copied to `work`/leaves with the CLI; the run folder and the dataset copy. */
export async function trainSampleCopy(
  work: string,
  perClass: number,
  options: { classes?: string[]; epochs?: number } = {},
): Promise<{ runDir: string; data: string }> {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  const data = path.join(work, 'leaves');
  copySample(data, perClass, options.classes);
  const runs = path.join(work, 'runs');
  const out = await runBundle([
    'train',
    data,
    '--out',
    runs,
    '--cache',
    path.join(work, 'cache'),
    '--epochs',
    String(options.epochs ?? 2),
    '--quiet',
  ]);
  assert.equal(out.code, 0, out.stderr);
  return { runDir: onlyRun(runs), data };
}

/** A JSON file, parsed. */
export function readJson<T>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

/** The one run folder under `runsDir`. */
export function onlyRun(runsDir: string): string {
  const runs = fs.readdirSync(runsDir).filter((d) => !d.startsWith('.'));
  assert.equal(runs.length, 1, `expected one run in ${runsDir}, got ${runs.join(', ')}`);
  return path.join(runsDir, runs[0]);
}

/** Forks the bundle in child mode, starts a run and collects its notifications. */
export function startChild(
  datasetRoot: string,
  work: string,
  options: Partial<typeof DEFAULT_TRAIN_OPTIONS>,
): {
  child: ChildProcess;
  messages: TrainingNotification[];
  next(pred: (n: TrainingNotification) => boolean, ms?: number): Promise<TrainingNotification>;
} {
  const child = fork(bundle, [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], serialization: 'json' });
  const messages: TrainingNotification[] = [];
  const waiters: { pred: (n: TrainingNotification) => boolean; resolve: (n: TrainingNotification) => void }[] = [];
  child.on('message', (m) => {
    const n = m as TrainingNotification;
    messages.push(n);
    for (const w of [...waiters])
      if (w.pred(n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(n);
      }
  });
  child.send({
    type: 'start',
    datasetRoot,
    runsDir: path.join(work, 'runs'),
    cacheDir: path.join(work, 'cache'),
    options: { ...DEFAULT_TRAIN_OPTIONS, ...options },
  });
  return {
    child,
    messages,
    next(pred, ms = 120_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; got ${messages.map((m) => m.type).join(',')}`)), ms);
        waiters.push({
          pred,
          resolve: (n) => {
            clearTimeout(timer);
            resolve(n);
          },
        });
      });
    },
  };
}

/** sha256 of every entry (path, kind, link target, bytes) under `root`, to prove nothing changed. */
export function treeDigest(root: string): string {
  const h = crypto.createHash('sha256');
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      h.update(`${path.relative(root, p)}|${st.mode}|`);
      if (st.isSymbolicLink()) h.update(`link:${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) walk(p);
      else h.update(fs.readFileSync(p));
    }
  };
  walk(root);
  return h.digest('hex');
}
