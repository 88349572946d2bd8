// The rules a dataset folder is judged by, in one place so that the tree's quick health check and
// the engine's scan say the same thing about the same folder: which files are images (by their
// bytes, never their names), which names are never looked at, when a class is too small or the
// classes too uneven, and the sentences that say so. Plain data in, plain data out: no file access.
import { summarizeSkipped } from './skipReasons';
import type { SkipReason } from './types';

/** Folder names that make an explicit split (train/, val/ …) at the dataset root, any case. */
export const SPLIT_FOLDER_NAMES: readonly string[] = ['train', 'val', 'valid', 'validation', 'test'];

/** Image formats the trainer decodes. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff';

export const SUPPORTED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff'];

/** How many leading bytes `sniffImage` needs to decide. */
export const SNIFF_BYTES = 16;

/** What the first bytes say: a supported image format, or a description of what the file is instead. */
export type SniffResult = { image: true; format: ImageFormat } | { image: false; what: string };

function startsWith(head: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (head.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[offset + i] !== bytes[i]) return false;
  return true;
}

function ascii(head: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...head.subarray(offset, offset + length));
}

/** Classifies a file from its first `SNIFF_BYTES` bytes (fewer when the file is shorter). */
export function sniffImage(head: Uint8Array): SniffResult {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { image: true, format: 'jpeg' };
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { image: true, format: 'png' };
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 4) === 'WEBP') return { image: true, format: 'webp' };
  if (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a') return { image: true, format: 'gif' };
  // Classic TIFF (42) and BigTIFF (43), both byte orders.
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return { image: true, format: 'tiff' };
  if (startsWith(head, [0x49, 0x49, 0x2b, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2b])) return { image: true, format: 'tiff' };
  return { image: false, what: describeNonImage(head) };
}

// Names the usual suspects so the report says "a BMP image (not supported)" rather than just "not an image".
function describeNonImage(head: Uint8Array): string {
  if (head.length === 0) return 'an empty file';
  if (ascii(head, 0, 2) === 'BM') return 'a BMP image (not supported: convert it to PNG or JPEG)';
  if (ascii(head, 4, 4) === 'ftyp') {
    const brand = ascii(head, 8, 4);
    if (/^(heic|heix|hevc|heim|heis|mif1|msf1)$/.test(brand)) return 'a HEIC/HEIF image (not supported: convert it to JPEG)';
    if (/^avi[fs]$/.test(brand)) return 'an AVIF image (not supported: convert it to PNG or JPEG)';
    return `an ISO media file (${brand.trim()})`;
  }
  if (startsWith(head, [0x00, 0x00, 0x01, 0x00])) return 'an ICO icon (not supported)';
  if (ascii(head, 0, 4) === '%PDF') return 'a PDF document';
  if (startsWith(head, [0x50, 0x4b, 0x03, 0x04])) return 'a ZIP archive';
  if (startsWith(head, [0x1f, 0x8b])) return 'a gzip archive';
  const text = ascii(head, 0, Math.min(head.length, SNIFF_BYTES))
    .replace(/^\uFEFF|^\xEF\xBB\xBF/, '')
    .trimStart();
  if (/^<(\?xml|svg)/i.test(text)) return 'an SVG or XML document (not supported)';
  if (isProbablyText(head)) return 'a text file';
  return 'not a JPEG, PNG, WebP, GIF or TIFF file';
}

function isProbablyText(head: Uint8Array): boolean {
  for (const b of head) if (b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d)) return false;
  return true;
}

/** The detail of a `not-image` file, from what its first bytes say it is. */
export function notImageDetail(what: string): string {
  return `${what}, not a JPEG, PNG, WebP, GIF or TIFF image`;
}

/** The detail of an `empty` file. */
export const EMPTY_FILE_DETAIL = 'the file is empty (0 bytes)';

/**
 * Why a symlink leading out of the dataset folder is not followed: a link to a system folder
 * would otherwise make its files training images, and the scan would open them.
 */
export function externalLinkDetail(target: string | undefined): string {
  return `symlink to ${target ?? 'a target'} outside the dataset folder: not followed (allow with --follow-external-links or the imageTrainer.followExternalLinks setting)`;
}

// Lower-case names that file managers and OS tools leave in folders (`Icon\r` is macOS's custom
// folder icon, `__MACOSX` the resource forks a macOS zip unpacks to): never photos of a class.
const OS_METADATA_NAMES: ReadonlySet<string> = new Set(['thumbs.db', 'ehthumbs.db', 'desktop.ini', '__macosx', 'icon\r']);

/** True for a file or folder name that is never part of a dataset: hidden (`.DS_Store`, `.git`) or OS metadata. */
export function isIgnoredName(name: string): boolean {
  return name.startsWith('.') || OS_METADATA_NAMES.has(name.toLowerCase());
}

/**
 * A class with fewer usable images than this is called tiny. Under the default 20% validation
 * split, fewer than 10 images leave a class one or two validation images, so its accuracy can only
 * read 0, 50 or 100%, and a head trained on 8 examples has barely seen what the class looks like;
 * 5 would stay silent about exactly the classes that make a run's numbers meaningless.
 */
export const TINY_CLASS_IMAGES = 10;

/**
 * Classes are called imbalanced when the largest has more than this many times the images of the
 * smallest: beyond 3:1 an unweighted loss visibly favours the large class (the classWeights
 * setting counters it), while milder differences are normal in collected data.
 */
export const IMBALANCE_RATIO = 3;

/** Usable images of one class. */
export interface ClassCount {
  name: string;
  images: number;
}

/** The largest class against the smallest non-empty one. */
export interface Imbalance {
  largest: ClassCount;
  smallest: ClassCount;
  ratio: number;
}

/** Code-unit order: the same on every machine, whatever the locale. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byName(counts: readonly ClassCount[]): ClassCount[] {
  return [...counts].sort((a, b) => compareNames(a.name, b.name));
}

/** Classes with at least one image but fewer than `TINY_CLASS_IMAGES`, by name. */
export function tinyClassesOf(counts: readonly ClassCount[]): ClassCount[] {
  return byName(counts).filter((c) => c.images > 0 && c.images < TINY_CLASS_IMAGES);
}

/** The imbalance of the non-empty classes when it is over `IMBALANCE_RATIO`; ties go to the first name. */
export function imbalanceOf(counts: readonly ClassCount[]): Imbalance | undefined {
  const nonEmpty = byName(counts).filter((c) => c.images > 0);
  if (nonEmpty.length < 2) return undefined;
  const largest = nonEmpty.reduce((a, b) => (b.images > a.images ? b : a));
  const smallest = nonEmpty.reduce((a, b) => (b.images < a.images ? b : a));
  const ratio = largest.images / smallest.images;
  return ratio > IMBALANCE_RATIO ? { largest, smallest, ratio } : undefined;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "1 class folder without usable images: sick". */
export function emptyClassesSentence(names: readonly string[]): string {
  return `${plural(names.length, 'class folder')} without usable images: ${names.join(', ')}`;
}

/** "Classes with fewer than 10 images: cups (3), motos (6): too few to learn or to measure reliably". */
export function tinyClassesSentence(tiny: readonly ClassCount[]): string {
  const list = tiny.map((c) => `${c.name} (${c.images})`).join(', ');
  return `${tiny.length === 1 ? 'Class' : 'Classes'} with fewer than ${TINY_CLASS_IMAGES} images: ${list}: too few to learn or to measure reliably`;
}

/** "Classes are imbalanced: healthy has 30 images, scab 3 (10.0x): consider …". */
export function imbalanceSentence({ largest, smallest, ratio }: Imbalance): string {
  return `Classes are imbalanced: ${largest.name} has ${largest.images} images, ${smallest.name} ${smallest.images} (${ratio.toFixed(1)}x): consider class weights or more images of the small classes`;
}

/** "2 identical files in 1 group appear in more than one class (label noise)". */
export function crossClassDuplicatesSentence(groups: readonly { paths: readonly string[] }[]): string {
  const files = groups.reduce((n, g) => n + g.paths.length, 0);
  return `${plural(files, 'identical file')} in ${plural(groups.length, 'group')} appear in more than one class (label noise)`;
}

/** What a dataset warning is about; the report of a scan carries `skipped-files` and `empty-classes` as lists of their own. */
export type DatasetWarningKind = 'skipped-files' | 'empty-classes' | 'duplicates' | 'imbalance' | 'tiny-classes';

/** One warning about a dataset: its kind, the classes it names and the sentence for the user. */
export interface DatasetWarning {
  kind: DatasetWarningKind;
  /** Sorted by name. */
  classes: string[];
  text: string;
}

/** What the shared warnings are computed from: counted the same way by the quick check and the scan. */
export interface DatasetFacts {
  /** Every class folder, empty ones with 0 images. */
  classes: readonly ClassCount[];
  skipped: readonly { reason: SkipReason }[];
  /** Identical content found in more than one class. */
  duplicates: readonly { paths: readonly string[]; classes: readonly string[] }[];
}

/** The warnings of the shared rules, in a fixed order: skipped files, empty classes, duplicates, imbalance, tiny classes. */
export function datasetWarnings(facts: DatasetFacts): DatasetWarning[] {
  const warnings: DatasetWarning[] = [];
  if (facts.skipped.length > 0) warnings.push({ kind: 'skipped-files', classes: [], text: summarizeSkipped(facts.skipped) });
  const empty = byName(facts.classes)
    .filter((c) => c.images === 0)
    .map((c) => c.name);
  if (empty.length > 0) warnings.push({ kind: 'empty-classes', classes: empty, text: emptyClassesSentence(empty) });
  if (facts.duplicates.length > 0) {
    const classes = [...new Set(facts.duplicates.flatMap((d) => d.classes))].sort(compareNames);
    warnings.push({ kind: 'duplicates', classes, text: crossClassDuplicatesSentence(facts.duplicates) });
  }
  const imbalance = imbalanceOf(facts.classes);
  if (imbalance) {
    const classes = [imbalance.largest.name, imbalance.smallest.name].sort(compareNames);
    warnings.push({ kind: 'imbalance', classes, text: imbalanceSentence(imbalance) });
  }
  const tiny = tinyClassesOf(facts.classes);
  if (tiny.length > 0) warnings.push({ kind: 'tiny-classes', classes: tiny.map((c) => c.name), text: tinyClassesSentence(tiny) });
  return warnings;
}
