import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import {
  datasetWarnings,
  IMBALANCE_RATIO,
  imbalanceOf,
  isIgnoredName,
  notImageDetail,
  SNIFF_BYTES,
  sniffImage,
  SUPPORTED_FORMATS,
  TINY_CLASS_IMAGES,
  tinyClassesOf,
} from '../../../src/shared/datasetRules';
import { summarizeSkipped } from '../../../src/shared/skipReasons';
import { PHOTOS } from '../../fixtures/datasetFixtures';

const bytes = (...parts: (string | number[])[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

/** The first bytes of a real image of every supported format, made by sharp from a fixture photo. */
async function realHeads(): Promise<Record<string, Uint8Array>> {
  const photo = sharp(PHOTOS.coffee).resize(24, 16);
  const heads: Record<string, Uint8Array> = {};
  for (const format of SUPPORTED_FORMATS) {
    const file = await photo.clone().toFormat(format).toBuffer();
    heads[format] = file.subarray(0, SNIFF_BYTES);
  }
  return heads;
}

test('every supported format is recognised from the first bytes of a real file', async () => {
  for (const [format, head] of Object.entries(await realHeads())) {
    assert.deepEqual(sniffImage(head), { image: true, format }, format);
  }
});

test('both TIFF byte orders and BigTIFF are TIFF', () => {
  for (const head of [bytes('II', [0x2a, 0]), bytes('MM', [0, 0x2a]), bytes('II', [0x2b, 0]), bytes('MM', [0, 0x2b])]) {
    assert.deepEqual(sniffImage(head), { image: true, format: 'tiff' });
  }
  assert.deepEqual(sniffImage(bytes('GIF87a')), { image: true, format: 'gif' });
});

test('a header cut one byte short of its signature is not an image', async () => {
  for (const [format, head] of Object.entries(await realHeads())) {
    const signature = { jpeg: 3, png: 8, webp: 12, gif: 6, tiff: 4 }[format]!;
    assert.equal(sniffImage(head.subarray(0, signature)).image, true, `${format} with its whole signature`);
    assert.equal(sniffImage(head.subarray(0, signature - 1)).image, false, `${format} cut to ${signature - 1} bytes`);
  }
  assert.deepEqual(sniffImage(new Uint8Array()), { image: false, what: 'an empty file' });
});

test('a text file named .jpg is a text file, whatever its name says', () => {
  const notes = new TextEncoder().encode('These are my cat photos.\n').subarray(0, SNIFF_BYTES);
  assert.deepEqual(sniffImage(notes), { image: false, what: 'a text file' });
  assert.equal(notImageDetail('a text file'), 'a text file, not a JPEG, PNG, WebP, GIF or TIFF image');
});

test('formats that are not supported are named, so the user knows what to convert', () => {
  const cases: [Uint8Array, RegExp][] = [
    [bytes('BM', [0x36, 0, 0, 0, 0, 0]), /^a BMP image \(not supported/],
    [bytes([0, 0, 0, 0x18], 'ftypheic', [0, 0, 0, 0]), /^a HEIC\/HEIF image/],
    [bytes([0, 0, 0, 0x1c], 'ftypavif', [0, 0, 0, 0]), /^an AVIF image/],
    [bytes([0, 0, 0, 0x18], 'ftypmp42', [0, 0, 0, 0]), /^an ISO media file \(mp42\)/],
    [bytes([0, 0, 1, 0, 1, 0, 16, 16]), /^an ICO icon/],
    [bytes('%PDF-1.7\n'), /^a PDF document$/],
    [bytes([0x50, 0x4b, 3, 4, 20, 0, 0, 0]), /^a ZIP archive$/],
    [bytes([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), /^a gzip archive$/],
    [bytes('<svg xmlns="http'), /^an SVG or XML document/],
    [bytes([0xef, 0xbb, 0xbf], '<?xml version'), /^an SVG or XML document/],
    [bytes('RIFF', [0x24, 0, 0, 0], 'WAVEfmt '), /^not a JPEG, PNG, WebP, GIF or TIFF file$/],
  ];
  for (const [head, what] of cases) {
    const sniffed = sniffImage(head);
    assert.equal(sniffed.image, false);
    assert.match(sniffed.image ? '' : sniffed.what, what);
  }
});

test('hidden entries and the metadata of every OS are ignored, in any case, and nothing else', () => {
  for (const name of [
    '.DS_Store',
    '.git',
    '._photo.jpg',
    'Thumbs.db',
    'THUMBS.DB',
    'ehthumbs.db',
    'desktop.ini',
    'Desktop.ini',
    '__MACOSX',
    'Icon\r',
  ]) {
    assert.equal(isIgnoredName(name), true, JSON.stringify(name));
  }
  for (const name of ['photo.jpg', 'Icon', 'icons', 'thumbs.db.jpg', 'MACOSX', 'desktop']) {
    assert.equal(isIgnoredName(name), false, JSON.stringify(name));
  }
});

test('a class is tiny below 10 images and an empty class is not tiny', () => {
  assert.equal(TINY_CLASS_IMAGES, 10);
  const counts = [
    { name: 'b', images: 9 },
    { name: 'a', images: 10 },
    { name: 'c', images: 0 },
    { name: 'd', images: 1 },
  ];
  assert.deepEqual(
    tinyClassesOf(counts).map((c) => c.name),
    ['b', 'd'],
  );
});

test('classes are imbalanced above 3 to 1 between the largest and the smallest non-empty class', () => {
  assert.equal(IMBALANCE_RATIO, 3);
  assert.equal(
    imbalanceOf([
      { name: 'big', images: 30 },
      { name: 'small', images: 10 },
      { name: 'empty', images: 0 },
    ]),
    undefined,
  );
  assert.deepEqual(
    imbalanceOf([
      { name: 'big', images: 31 },
      { name: 'small', images: 10 },
    ]),
    {
      largest: { name: 'big', images: 31 },
      smallest: { name: 'small', images: 10 },
      ratio: 3.1,
    },
  );
  assert.equal(
    imbalanceOf([
      { name: 'only', images: 100 },
      { name: 'empty', images: 0 },
    ]),
    undefined,
  );
  // Ties go to the first name in code-unit order, whatever order the counts come in.
  const tied = imbalanceOf([
    { name: 'z', images: 40 },
    { name: 'b', images: 1 },
    { name: 'a', images: 40 },
    { name: 'c', images: 1 },
  ])!;
  assert.deepEqual([tied.largest.name, tied.smallest.name], ['a', 'b']);
});

test('the warnings of a dataset come in a fixed order, each naming its classes, and a healthy dataset has none', () => {
  const warnings = datasetWarnings({
    classes: [
      { name: 'healthy', images: 40 },
      { name: 'scab', images: 4 },
      { name: 'rust', images: 0 },
      { name: 'rot', images: 12 },
    ],
    skipped: [{ reason: 'not-image' }, { reason: 'empty' }, { reason: 'not-image' }],
    duplicates: [{ paths: ['healthy/a.jpg', 'rot/a.jpg', 'rot/b.jpg'], classes: ['healthy', 'rot'] }],
  });
  assert.deepEqual(warnings, [
    { kind: 'skipped-files', classes: [], text: '3 files skipped: 2 not images, 1 empty file' },
    { kind: 'empty-classes', classes: ['rust'], text: '1 class folder without usable images: rust' },
    { kind: 'duplicates', classes: ['healthy', 'rot'], text: '3 identical files in 1 group appear in more than one class (label noise)' },
    {
      kind: 'imbalance',
      classes: ['healthy', 'scab'],
      text: 'Classes are imbalanced: healthy has 40 images, scab 4 (10.0x): consider class weights or more images of the small classes',
    },
    { kind: 'tiny-classes', classes: ['scab'], text: 'Class with fewer than 10 images: scab (4): too few to learn or to measure reliably' },
  ]);
  const healthy = datasetWarnings({
    classes: [
      { name: 'a', images: 10 },
      { name: 'b', images: 30 },
    ],
    skipped: [],
    duplicates: [],
  });
  assert.deepEqual(healthy, []);
  assert.equal(summarizeSkipped([]), '');
});
