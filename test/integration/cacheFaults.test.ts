// Fault injection into the cache folder, through the built bundle (dist/training.js) as the CLI
// runs it: every cached artifact damaged on disk (flipped bits, garbage of the same size, edited or
// swapped scan-index rows) must be noticed, reported once in the run log and recomputed, so the
// rerun's predictions equal a clean run's; a file replaced between scan and extraction must not
// leave wrong vectors in the cache; identical files are embedded once; and a cache folder that is
// a file, full or read-only only turns caching off.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { Evaluation, Prediction } from '../../src/shared/types';
import { decodeImage } from '../../src/training/dataset/imageDecoder';
import { tempDir } from '../support/tempDirs';
import { bundle, copySample, onlyRun, readJson, sample } from '../support/trainingBundle';

const exec = promisify(execFile);
const CLASSES = ['black_rot', 'cedar_rust', 'healthy'];
/** What this file's messages are about; other warnings (few images per class) are the dataset's. */
const CACHE_WARNING = /checksum|Cache folder|changed between the scan/;
const isRoot = process.getuid?.() === 0;

interface Trained {
  log: string;
  /** The run's warnings about the cache. */
  warnings: string[];
  predictions: Prediction[];
}

let data: string;
let gold: string;
let clean: Trained;

/** Trains on `dataset` with the cache folder `cache` through the CLI (`node [--require preload] dist/training.js train …`). */
async function train(cache: string, opts: { dataset?: string; preload?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Trained> {
  const runs = tempDir('it-cache-runs-');
  // One view: the faults below are injected into the plain cache (views' entries: recipes.test.ts).
  const args = [bundle, 'train', opts.dataset ?? data, '--out', runs, '--cache', cache, '--epochs', '6', '--recipe', 'plain', '--quiet'];
  await exec(process.execPath, opts.preload ? ['--require', opts.preload, ...args] : args, {
    cwd: runs,
    env: { ...process.env, ...opts.env },
  });
  const runDir = onlyRun(runs);
  const log = fs.readFileSync(path.join(runDir, 'train.log'), 'utf8');
  const warnings = log
    .split('\n')
    .filter((l) => l.includes('[warn]') && CACHE_WARNING.test(l))
    .map((l) => l.replace(/^.*?\[warn\] /, ''));
  return { log, warnings, predictions: readJson<Evaluation>(path.join(runDir, 'evaluation.json')).predictions };
}

/** A copy of the clean run's cache folder, to damage. */
function copyOfGold(): string {
  const dir = path.join(tempDir('it-cache-'), 'cache');
  fs.cpSync(gold, dir, { recursive: true });
  return dir;
}

/** The feature-cache folder of the run's model (one per cache key). */
function featureRoot(cache: string): string {
  const roots = fs.readdirSync(cache).filter((n) => /^[0-9a-f]{24}$/.test(n));
  assert.equal(roots.length, 1, `one feature-cache folder in ${cache}: ${roots.join(', ')}`);
  return path.join(cache, roots[0]);
}

function filesIn(dir: string, suffix: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith(suffix))
    .sort()
    .map((f) => path.join(dir, f));
}

function flipBit(file: string, at: (length: number) => number): void {
  const bytes = fs.readFileSync(file);
  bytes[at(bytes.length)] ^= 0x08;
  fs.writeFileSync(file, bytes);
}

/** Replaces a file's content with random bytes of the same size. */
function garble(file: string): void {
  const size = fs.statSync(file).size;
  fs.writeFileSync(file, Buffer.from(Array.from({ length: size }, () => Math.floor(Math.random() * 256))));
}

function assertSameAsClean(run: Trained, what: string): void {
  assert.deepEqual(run.predictions, clean.predictions, `${what}: the predictions equal a clean run's`);
}

before(async () => {
  assert.ok(fs.existsSync(bundle), 'dist/training.js is missing: run `npm run build` first');
  data = path.join(tempDir('it-cache-data-'), 'leaves');
  copySample(data, 8, CLASSES);
  gold = path.join(tempDir('it-cache-gold-'), 'cache');
  clean = await train(gold);
  assert.deepEqual(clean.warnings, []);
  assert.ok(clean.predictions.length >= 3);
});

test('feature entries with a flipped bit or same-size garbage are discarded with one warning and recomputed: the rerun equals a clean run', async () => {
  const cache = copyOfGold();
  const root = featureRoot(cache);
  // Without the pack every vector is read from its entry.
  for (const pack of filesIn(path.join(root, 'packs'), '.pack')) fs.rmSync(pack);
  const entries = filesIn(root, '.f32');
  assert.equal(entries.length, 24);
  flipBit(entries[3], (n) => n - 200);
  garble(entries[17]);
  const rerun = await train(cache);
  assertSameAsClean(rerun, 'damaged entries');
  assert.equal(rerun.warnings.length, 1, rerun.warnings.join('\n'));
  assert.match(rerun.warnings[0], /^2 feature entries \(.+\.f32 and others\) failed their checksum: discarded, vectors recomputed$/);
  assert.match(rerun.log, /22 cache hits, 2 misses, 2 embedded/);
});

test('a feature pack with a flipped bit or same-size garbage is discarded with one warning naming the dataset: the rerun equals a clean run', async () => {
  for (const [what, damage] of [
    ['a flipped bit', (f: string) => flipBit(f, (n) => Math.floor(n / 2))],
    ['same-size garbage', garble],
  ] as const) {
    const cache = copyOfGold();
    const [pack] = filesIn(path.join(featureRoot(cache), 'packs'), '.pack');
    damage(pack);
    const rerun = await train(cache);
    assertSameAsClean(rerun, what);
    assert.deepEqual(
      rerun.warnings,
      [`feature pack of ${data} failed its checksum: discarded, vectors read from their entries or recomputed`],
      what,
    );
  }
});

test('scan-index rows with an edited sha256 or with hashes swapped between classes are discarded with one warning: the split and the rerun equal a clean run', async () => {
  const abs = (rel: string) => path.join(data, ...rel.split('/'));
  const [rot, rust] = [abs('black_rot/black_rot_02.jpg'), abs('cedar_rust/cedar_rust_03.jpg')];
  const edits: [string, number, (entries: Record<string, unknown[]>) => void][] = [
    ['an edited sha256', 1, (e) => (e[rot][1] = 'f'.repeat(64))],
    ['hashes swapped between classes', 2, (e) => ([e[rot][1], e[rust][1]] = [e[rust][1], e[rot][1]])],
  ];
  for (const [what, rows, edit] of edits) {
    const cache = copyOfGold();
    const [index] = filesIn(path.join(cache, 'scan'), '.json');
    const parsed = readJson<{ entries: Record<string, unknown[]> }>(index);
    edit(parsed.entries);
    fs.writeFileSync(index, JSON.stringify(parsed));
    const rerun = await train(cache);
    assertSameAsClean(rerun, what);
    assert.equal(rerun.warnings.length, 1, `${what}: ${rerun.warnings.join('\n')}`);
    assert.match(rerun.warnings[0], new RegExp(`^${rows} scan-index rows? of .+ failed (its|their) checksum: discarded`), what);
  }
});

test('a cached ONNX graph with a flipped bit or same-size garbage is discarded with one warning and exported again: the features and the rerun equal a clean run', async () => {
  const graphs = fs.existsSync(path.join(gold, 'onnx')) ? filesIn(path.join(gold, 'onnx'), '.graph') : [];
  assert.equal(graphs.length, 1, 'the clean run ran its features on onnxruntime and cached the graph');
  for (const [what, damage] of [
    ['a flipped bit', (f: string) => flipBit(f, (n) => n - 4096)],
    ['same-size garbage', garble],
  ] as const) {
    const cache = copyOfGold();
    // Without cached vectors the graph is needed.
    fs.rmSync(featureRoot(cache), { recursive: true });
    damage(filesIn(path.join(cache, 'onnx'), '.graph')[0]);
    const rerun = await train(cache);
    assertSameAsClean(rerun, what);
    assert.equal(rerun.warnings.length, 1, `${what}: ${rerun.warnings.join('\n')}`);
    assert.match(rerun.warnings[0], /^ONNX graph .+\.graph failed its checksum: discarded, exported again$/, what);
  }
});

test('the unknown detector and the similarity pass, cached with a flipped bit or as same-size garbage, are discarded with one warning each and computed again: the rerun equals a clean run', async () => {
  for (const kind of ['novelty', 'neighbourhood']) {
    assert.equal(filesIn(path.join(gold, kind), '.bin').length, 1, `the clean run cached its ${kind}`);
  }
  for (const [what, damage] of [
    ['a flipped bit', (f: string) => flipBit(f, (n) => n - 3)],
    ['same-size garbage', garble],
  ] as const) {
    const cache = copyOfGold();
    for (const kind of ['novelty', 'neighbourhood']) damage(filesIn(path.join(cache, kind), '.bin')[0]);
    const rerun = await train(cache);
    assertSameAsClean(rerun, what);
    assert.equal(rerun.warnings.length, 2, `${what}: ${rerun.warnings.join('\n')}`);
    assert.match(rerun.warnings.join('\n'), /^similarity pass .+\.bin failed its checksum: discarded, computed again$/m, what);
    assert.match(rerun.warnings.join('\n'), /^unknown-detection statistics .+\.bin failed its checksum: discarded, fitted again$/m, what);
    const healed = await train(cache);
    assert.deepEqual(healed.warnings, [], `${what}: stored again`);
  }
});

test('an image replaced between the scan and feature extraction is trained on as it is and never cached under the old hash: once restored, the rerun equals a clean run', async () => {
  const target = clean.predictions.find((p) => p.path.startsWith('black_rot/'))!.path;
  const targetAbs = path.join(data, ...target.split('/'));
  const original = fs.readFileSync(targetAbs);
  const replacement = path.join(data, 'healthy', fs.readdirSync(path.join(data, 'healthy')).sort()[0]);
  // Replaces the file on disk the first time the product reads it whole, which only the decoder does.
  const preload = path.join(tempDir('it-cache-preload-'), 'replaceOnDecode.cjs');
  fs.writeFileSync(
    preload,
    `const fs = require('node:fs');
const readFile = fs.promises.readFile;
let replaced = false;
fs.promises.readFile = function (file, ...rest) {
  if (!replaced && String(file) === process.env.REPLACE_TARGET) {
    replaced = true;
    fs.copyFileSync(process.env.REPLACE_WITH, process.env.REPLACE_TARGET);
  }
  return readFile.call(this, file, ...rest);
};
`,
  );
  const cache = path.join(tempDir('it-cache-'), 'cache');
  try {
    const replaced = await train(cache, { preload, env: { REPLACE_TARGET: targetAbs, REPLACE_WITH: replacement } });
    assert.deepEqual(replaced.warnings.length, 1, replaced.warnings.join('\n'));
    assert.match(
      replaced.warnings[0],
      new RegExp(`^1 image changed between the scan and feature extraction \\(${target}\\): trained on its current content`),
    );
  } finally {
    fs.writeFileSync(targetAbs, original);
  }
  const rerun = await train(cache);
  assertSameAsClean(rerun, 'after the file was restored');
  assert.deepEqual(rerun.warnings, []);
});

test('identical files are decoded and embedded once, and train exactly as copies embedded one by one', async () => {
  // The explicit layout fixes each file's side, so the same files with distinct bytes split the same way.
  const [same, distinct] = [path.join(tempDir('it-cache-copies-'), 'copies'), path.join(tempDir('it-cache-distinct-'), 'copies')];
  let n = 0;
  for (const cls of CLASSES) {
    const files = fs.readdirSync(path.join(sample, cls)).sort().slice(0, 4);
    files.forEach((file, i) => {
      const side = i < 3 ? 'train' : 'val';
      const bytes = fs.readFileSync(path.join(sample, cls, file));
      for (let copy = 0; copy < 3; copy++) {
        const name = `${path.parse(file).name}-copy${copy}.jpg`;
        for (const root of [same, distinct]) fs.mkdirSync(path.join(root, side, cls), { recursive: true });
        fs.writeFileSync(path.join(same, side, cls, name), bytes);
        // Bytes after the JPEG's end marker: another file, the same pixels.
        fs.writeFileSync(path.join(distinct, side, cls, name), Buffer.concat([bytes, Buffer.alloc(copy + 1)]));
        n++;
      }
    });
  }
  const probe = path.join(distinct, 'train', CLASSES[0]);
  const [a, b] = fs.readdirSync(probe).sort();
  assert.deepEqual(await decodeImage(path.join(probe, a), 64, 1e8), await decodeImage(path.join(probe, b), 64, 1e8));

  const once = await train(path.join(tempDir('it-cache-'), 'cache'), { dataset: same });
  const oneByOne = await train(path.join(tempDir('it-cache-'), 'cache'), { dataset: distinct });
  const distinctCount = n / 3;
  assert.match(
    once.log,
    new RegExp(`Features: ${n} images \\(${distinctCount} distinct\\), 0 cache hits, ${distinctCount} misses, ${distinctCount} embedded`),
  );
  assert.match(oneByOne.log, new RegExp(`Features: ${n} images \\(${n} distinct\\), 0 cache hits, ${n} misses, ${n} embedded`));
  assert.deepEqual(once.predictions, oneByOne.predictions);
});

test('a cache path that is a file is said before the scan, and the run succeeds without caching with that one warning', async () => {
  const file = path.join(tempDir('it-cache-file-'), 'cache');
  fs.writeFileSync(file, 'not a folder');
  const run = await train(file);
  assertSameAsClean(run, 'no cache');
  assert.deepEqual(run.warnings, [
    `Cache folder ${file} cannot be used: it is a file, not a folder. Continuing without caching (scan index, features, ONNX graph, downloaded models).`,
  ]);
  const lines = run.log.split('\n');
  const warnedAt = lines.findIndex((l) => l.includes('Cache folder'));
  assert.ok(warnedAt < lines.findIndex((l) => l.includes('Features on')), 'said by the scan stage, before the base model loads');
  assert.equal(fs.readFileSync(file, 'utf8'), 'not a folder');
});

/** Runs `fn` with a small tmpfs mounted at a fresh folder (`ro` remounts it read-only), unmounted after. */
async function withTmpfs(options: { size: string; fill?: boolean; ro?: boolean }, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = path.join(tempDir('it-cache-tmpfs-'), 'cache');
  fs.mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${options.size}`, 'tmpfs', dir]);
  try {
    if (options.fill) {
      const fd = fs.openSync(path.join(dir, 'filler'), 'w');
      try {
        for (;;) fs.writeSync(fd, Buffer.alloc(64 * 1024));
      } catch (error) {
        assert.equal((error as NodeJS.ErrnoException).code, 'ENOSPC');
      } finally {
        fs.closeSync(fd);
      }
    }
    if (options.ro) execFileSync('mount', ['-o', 'remount,ro', dir]);
    await fn(dir);
  } finally {
    execFileSync('umount', [dir]);
  }
}

test('a full cache folder (a small tmpfs, full from the start or filling up during the run) only turns caching off, with one warning', async (t) => {
  if (!isRoot) {
    t.skip('mounting a small tmpfs needs root (CI runs as root): the full-disk case is not tested here');
    return;
  }
  await withTmpfs({ size: '1M', fill: true }, async (dir) => {
    const run = await train(dir);
    assertSameAsClean(run, 'full from the start');
    assert.equal(run.warnings.length, 1, run.warnings.join('\n'));
    assert.match(run.warnings[0], /^Cache folder .+ cannot be used: no space left on the disk \(ENOSPC\)\. Continuing without caching/);
  });
  // The scan index and the vectors fit in 1 MB; the 1.5 MB ONNX graph does not.
  await withTmpfs({ size: '1M' }, async (dir) => {
    const run = await train(dir);
    assertSameAsClean(run, 'filling up');
    assert.equal(run.warnings.length, 1, run.warnings.join('\n'));
    assert.match(run.warnings[0], /^Cache folder .+ cannot be used: no space left on the disk \(ENOSPC\)\. Continuing without caching/);
  });
});

test('a read-only cache folder only turns caching off, with one warning', async () => {
  const check = (run: Trained, code: RegExp): void => {
    assertSameAsClean(run, 'read-only');
    assert.equal(run.warnings.length, 1, run.warnings.join('\n'));
    assert.match(run.warnings[0], code);
  };
  if (isRoot) {
    // Root ignores permission bits: a read-only mount is what refuses its writes.
    await withTmpfs({ size: '4M', ro: true }, async (dir) => check(await train(dir), /read-only file system \(EROFS\)/));
  } else {
    const dir = path.join(tempDir('it-cache-ro-'), 'cache');
    fs.mkdirSync(dir, { mode: 0o555 });
    check(await train(dir), /permission denied \(EACCES\)/);
  }
});

test("temporary files of crashed runs are removed at the next start; those of live writers and files that are not the product's stay", async () => {
  const cache = copyOfGold();
  const root = featureRoot(cache);
  const deadPid = 4_194_999; // above Linux's largest pid: never alive
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  const stale = [
    path.join(cache, 'scan', `index.json.tmp-${deadPid}-3`),
    path.join(cache, 'onnx', `mobilenet.graph.tmp-${deadPid}-1`),
    path.join(root, 'tmp', `${'a'.repeat(64)}.f32.${deadPid}.deadbeef.tmp`),
    path.join(root, 'packs', `dataset.pack.${deadPid}.cafebabe.tmp`),
  ];
  const kept = [
    path.join(cache, 'scan', `index.json.tmp-${process.pid}-1`),
    path.join(cache, 'notes.tmp'),
    path.join(root, 'tmp', 'readme.txt'),
  ];
  for (const file of [...stale, ...kept]) fs.writeFileSync(file, Buffer.alloc(1000));
  const rerun = await train(cache);
  assertSameAsClean(rerun, 'after the sweep');
  for (const file of stale) assert.equal(fs.existsSync(file), false, `${path.basename(file)} removed`);
  for (const file of kept) assert.ok(fs.existsSync(file), `${path.basename(file)} kept`);
});
