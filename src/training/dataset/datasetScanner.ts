// Dataset scan: turns a folder of class subfolders into a list of usable images, their split and a
// report of everything that was left out and why. It only ever reads. The walk is datasetWalk.ts,
// the per-file inspection imageInspection.ts, the index that spares a rescan from reading
// unchanged files scanIndex.ts, and the rules both the scan and the tree's quick check apply
// (what is an image, ignored names, thresholds, warning sentences) src/shared/datasetRules.ts.
// docs/dataset.md describes the layouts, every outcome and the index in full.
import type { BigIntStats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { datasetWarnings, emptyClassesSentence, type ImageFormat } from '../../shared/datasetRules';
import { capSkipped, summarizeSkipped } from '../../shared/skipReasons';
import type { ClassSummary, DatasetReport, DuplicateGroup, SkippedFile } from '../../shared/types';
import { throwIfCancelled, TrainerError } from '../util/errors';
import { forEachConcurrent } from './boundedConcurrency';
import { stratifiedSplit } from './datasetSplit';
import {
  type Candidate,
  compareNames,
  detectLayout,
  errnoCode,
  type Layout,
  listDir,
  newWalk,
  type Side,
  type Walk,
  walkDataset,
} from './datasetWalk';
import { type ImageFacts, type Inspection, inspect, withPixelLimit } from './imageInspection';
import {
  type IndexRow,
  indexedInspection,
  readScanIndex,
  type ScanIndexPlace,
  settledBefore,
  toIndexRow,
  writeScanIndex,
} from './scanIndex';

// The run names its feature pack with the same per-dataset key as the scan index.
export { datasetFolderKey } from './scanIndex';

export interface DatasetItem {
  abs: string;
  /** `/`-separated, relative to the dataset root. */
  rel: string;
  classIndex: number;
  split: Side;
  sha256: string;
  bytes: number;
  /** Size as displayed, i.e. after EXIF orientation. */
  width: number;
  height: number;
  format: ImageFormat;
}

export interface ScanOptions {
  /** Fraction of each class held out for validation in the `folders` layout, in [0, 1). */
  valSplit: number;
  seed: number;
  /** Images whose header claims more pixels than this are skipped as `too-many-pixels`. */
  maxPixels: number;
  /** Called after the folder walk with `done = 0` and after each file is inspected. */
  onProgress?: (done: number, total: number) => void;
  /** Aborting it rejects the scan with `RunCancelled` within a few files' time, during the walk or the inspection. */
  signal?: AbortSignal;
  /** Follow symlinks that lead out of the dataset folder; by default they are skipped as `external-symlink` and nothing outside is opened. */
  followExternalLinks?: boolean;
  /**
   * Folder (outside the dataset) for the scan index, which lets a rescan skip reading files that
   * have not changed; created when missing. No index is used when it is absent or inside the dataset.
   */
  index?: string | ScanIndexPlace;
}

export interface ScanResult {
  report: DatasetReport;
  /** Usable classes, sorted; `DatasetItem.classIndex` indexes this. */
  classes: string[];
  /** Usable images, sorted by `rel`. */
  items: DatasetItem[];
  /** Files whose inspection was taken from the index instead of reading them (0 without an index). */
  indexHits: number;
}

/** A dataset that cannot be trained on, with a message the user can act on. */
export class DatasetError extends TrainerError {
  override readonly name = 'DatasetError';
  /** What the scan found before giving up, when it got that far. */
  readonly report?: DatasetReport;

  constructor(message: string, report?: DatasetReport) {
    super('dataset', message);
    this.report = report;
  }
}

/** Files inspected at the same time: enough to keep the disk and libuv's thread pool busy. */
const INSPECT_CONCURRENCY = 16;

/** Scans a dataset folder (read-only): classes, usable images with hash, size and split, and a report of every problem. */
export async function scanDataset(root: string, options: ScanOptions): Promise<ScanResult> {
  const scanStartNs = BigInt(Date.now()) * 1_000_000n;
  const { valSplit, seed, signal } = options;
  if (!Number.isFinite(valSplit) || valSplit < 0 || valSplit >= 1)
    throw new RangeError(`valSplit must be at least 0 and below 1, got ${valSplit}`);
  const rootAbs = path.resolve(root);
  throwIfCancelled(signal);
  const rootStat = await statRoot(rootAbs);
  const walk = newWalk(signal, options.followExternalLinks ? undefined : await realpath(rootAbs));
  const top = await listDir(walk, rootAbs, '');
  if (!top) throw new DatasetError(`Dataset folder cannot be read: ${rootAbs} (${walk.skipped[0]?.detail ?? 'unknown error'})`);
  const layout = detectLayout(top);
  await walkDataset(walk, top, layout, `${rootStat.dev}:${rootStat.ino}`);

  const candidates = walk.candidates.sort((a, b) => compareNames(a.rel, b.rel));
  const { inspections, indexHits } = await inspectCandidates(candidates, rootAbs, options, scanStartNs);
  const { usable, skipped } = partition(walk.skipped, inspections);
  const tally = tallyClasses(walk.classNames, usable);
  const computeSplit = !layout.explicit || !layout.sideDirs.has('val');
  const items = toItems(usable, tally.classIndex, assignSides(usable, tally.classIndex, computeSplit, valSplit, seed));
  const summaries: ClassSummary[] = tally.classes.map((name) => ({ name, train: 0, val: 0, test: 0 }));
  for (const item of items) summaries[item.classIndex][item.split]++;
  const copies = findCopies(items, tally.classes, layout.explicit);

  const listed = capSkipped(skipped);
  const report: DatasetReport = {
    root: rootAbs,
    name: path.basename(rootAbs),
    layout: layout.explicit ? 'explicit' : 'folders',
    classes: summaries,
    emptyClasses: tally.emptyClasses,
    skipped: listed.skipped,
    ...(Object.keys(listed.unlisted).length > 0 ? { skippedUnlisted: listed.unlisted } : {}),
    duplicates: copies.duplicates,
    ignored: walk.ignored,
    warnings: scanWarnings(walk, layout, tally, copies, summaries),
  };
  if (tally.classes.length < 2) throw tooFewClassesError(report, tally.classes, walk.looseFiles);
  return { report, classes: tally.classes, items, indexHits };
}

async function statRoot(rootAbs: string): Promise<BigIntStats> {
  let rootStat: BigIntStats;
  try {
    rootStat = await stat(rootAbs, { bigint: true });
  } catch (error) {
    const code = errnoCode(error);
    throw new DatasetError(
      code === 'ENOENT' ? `Dataset folder not found: ${rootAbs}` : `Dataset folder cannot be read: ${rootAbs} (${code})`,
    );
  }
  if (!rootStat.isDirectory()) throw new DatasetError(`${rootAbs} is not a folder: choose the folder that holds one subfolder per class`);
  return rootStat;
}

// Inspects every candidate, or takes it from the index when the file is unchanged; then updates the index.
async function inspectCandidates(
  candidates: readonly Candidate[],
  rootAbs: string,
  options: ScanOptions,
  scanStartNs: bigint,
): Promise<{ inspections: Inspection[]; indexHits: number }> {
  const { maxPixels, onProgress, signal } = options;
  const index = await readScanIndex(options.index, rootAbs);
  const inspections: Inspection[] = new Array(candidates.length);
  const rows: (IndexRow | undefined)[] = new Array(candidates.length);
  let indexHits = 0;
  let done = 0;
  onProgress?.(0, candidates.length);
  const inspectOne = async (candidate: Candidate, i: number): Promise<void> => {
    const indexed = indexedInspection(index, candidate);
    let inspection: Inspection;
    if (indexed) {
      ({ inspection, row: rows[i] } = indexed);
      indexHits++;
    } else {
      inspection = await inspect(candidate, signal);
      if (inspection.ok && settledBefore(candidate, scanStartNs)) rows[i] = toIndexRow(candidate, inspection.facts);
    }
    inspections[i] = withPixelLimit(inspection, maxPixels);
    onProgress?.(++done, candidates.length);
  };
  await forEachConcurrent(candidates, INSPECT_CONCURRENCY, inspectOne, signal);
  throwIfCancelled(signal);
  const newRows = new Map<string, IndexRow>();
  candidates.forEach((candidate, i) => rows[i] && newRows.set(candidate.abs, rows[i]));
  await writeScanIndex(index, rootAbs, newRows, indexHits);
  return { inspections, indexHits };
}

interface Usable {
  candidate: Candidate;
  facts: ImageFacts;
}

// Usable images in candidate order; the walk's and the inspection's skipped files, sorted by path.
function partition(walkSkipped: readonly SkippedFile[], inspections: readonly Inspection[]): { usable: Usable[]; skipped: SkippedFile[] } {
  const skipped = [...walkSkipped];
  const usable: Usable[] = [];
  for (const inspection of inspections) {
    if (inspection.ok) usable.push(inspection);
    else skipped.push(inspection.skipped);
  }
  skipped.sort((a, b) => compareNames(a.path, b.path));
  return { usable, skipped };
}

interface ClassTally {
  /** Classes with usable images, sorted. */
  classes: string[];
  /** Class folders without a usable image, sorted. */
  emptyClasses: string[];
  /** Usable images per class. */
  perClass: Map<string, number>;
  classIndex: Map<string, number>;
}

function tallyClasses(classNames: ReadonlySet<string>, usable: readonly Usable[]): ClassTally {
  const all = [...classNames].sort(compareNames);
  const perClass = new Map<string, number>();
  for (const u of usable) perClass.set(u.candidate.className, (perClass.get(u.candidate.className) ?? 0) + 1);
  const classes = all.filter((name) => (perClass.get(name) ?? 0) > 0);
  const emptyClasses = all.filter((name) => !perClass.has(name));
  return { classes, emptyClasses, perClass, classIndex: new Map(classes.map((name, i) => [name, i])) };
}

// The side of each usable image: its folder in the explicit layout; computed from content hash and
// seed otherwise, and for the images of train/ when there is no val/ folder.
function assignSides(
  usable: readonly Usable[],
  classIndex: Map<string, number>,
  computeSplit: boolean,
  valSplit: number,
  seed: number,
): Side[] {
  const sides: Side[] = usable.map((u) => u.candidate.side ?? 'train');
  if (!computeSplit) return sides;
  const computed = usable
    .map((u, i) => ({ i, classIndex: classIndex.get(u.candidate.className)!, sha256: u.facts.sha256 }))
    .filter(({ i }) => sides[i] === 'train');
  const split = stratifiedSplit(computed, valSplit, seed);
  computed.forEach(({ i }, k) => (sides[i] = split[k]));
  return sides;
}

function toItems(usable: readonly Usable[], classIndex: Map<string, number>, sides: readonly Side[]): DatasetItem[] {
  return usable.map((u, i) => ({
    abs: u.candidate.abs,
    rel: u.candidate.rel,
    classIndex: classIndex.get(u.candidate.className)!,
    split: sides[i],
    sha256: u.facts.sha256,
    bytes: u.candidate.size,
    width: u.facts.width,
    height: u.facts.height,
    format: u.facts.format,
  }));
}

interface Copies {
  /** Identical content in more than one class, sorted by first path. */
  duplicates: DuplicateGroup[];
  /** Files that are an identical copy of another image of their own class. */
  sameClassCopies: number;
  /** Contents found on more than one side of an explicit split. */
  leakedContents: number;
}

// Identical files by sha256: across classes (label noise), within a class, and across the sides of an explicit split.
function findCopies(items: readonly DatasetItem[], classes: readonly string[], explicit: boolean): Copies {
  const byContent = new Map<string, DatasetItem[]>();
  for (const item of items) {
    const group = byContent.get(item.sha256);
    if (group) group.push(item);
    else byContent.set(item.sha256, [item]);
  }
  const duplicates: DuplicateGroup[] = [];
  let sameClassCopies = 0;
  let leakedContents = 0;
  for (const [sha256, group] of byContent) {
    if (group.length < 2) continue;
    const groupClasses = [...new Set(group.map((g) => g.classIndex))].sort((a, b) => a - b);
    if (groupClasses.length > 1) {
      duplicates.push({ sha256, paths: group.map((g) => g.rel).sort(compareNames), classes: groupClasses.map((c) => classes[c]) });
    }
    sameClassCopies += group.length - groupClasses.length;
    if (explicit && new Set(group.map((g) => g.split)).size > 1) leakedContents++;
  }
  duplicates.sort((a, b) => compareNames(a.paths[0], b.paths[0]));
  return { duplicates, sameClassCopies, leakedContents };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// The report's warnings: where files were left out by the layout, the shared rules' duplicates,
// imbalance and tiny classes (skipped files and empty classes have lists of their own in the
// report), and what only a split can show.
function scanWarnings(walk: Walk, layout: Layout, tally: ClassTally, copies: Copies, summaries: readonly ClassSummary[]): string[] {
  const warnings: string[] = [];
  if (walk.otherDirs.length > 0) {
    warnings.push(`Folders ignored because the dataset uses train/ and val/ folders: ${walk.otherDirs.join(', ')}`);
  }
  if (walk.looseFiles > 0) {
    warnings.push(
      `${plural(walk.looseFiles, 'file')} not inside a class folder ${walk.looseFiles === 1 ? 'was' : 'were'} not used: put each image in the subfolder of its class`,
    );
  }
  const counts = tally.classes.map((name) => ({ name, images: tally.perClass.get(name)! }));
  for (const warning of datasetWarnings({ classes: counts, skipped: [], duplicates: copies.duplicates })) warnings.push(warning.text);
  if (copies.sameClassCopies > 0) {
    const n = copies.sameClassCopies;
    warnings.push(
      `${plural(n, 'file')} ${n === 1 ? 'is an identical copy' : 'are identical copies'} of another image in the same class (kept; copies always share a side of the split)`,
    );
  }
  if (copies.leakedContents > 0) {
    const n = copies.leakedContents;
    warnings.push(
      `${plural(n, 'image')} appear${n === 1 ? 's' : ''} in more than one of train/, val/ and test/ (identical content): validation accuracy will look better than it is`,
    );
  }
  if (layout.explicit && layout.sideDirs.has('val')) {
    const missing = summaries.filter((s) => s.val === 0).map((s) => s.name);
    if (missing.length > 0)
      warnings.push(
        `No validation images for ${missing.join(', ')}: ${missing.length === 1 ? 'its' : 'their'} accuracy cannot be measured`,
      );
  }
  return warnings;
}

function tooFewClassesError(report: DatasetReport, classes: readonly string[], looseFiles: number): DatasetError {
  const found = classes.length === 0 ? 'no usable class' : `1 usable class (${classes[0]})`;
  const hints: string[] = [];
  if (report.emptyClasses.length > 0) hints.push(emptyClassesSentence(report.emptyClasses));
  if (report.skipped.length > 0) hints.push(summarizeSkipped(report.skipped, report.skippedUnlisted));
  if (looseFiles > 0) hints.push(`${plural(looseFiles, 'file')} directly in the folder (not in a class folder)`);
  return new DatasetError(
    `Found ${found} in ${report.root}: need at least 2 class folders with images${hints.length > 0 ? ` (${hints.join('; ')})` : ''}`,
    report,
  );
}
