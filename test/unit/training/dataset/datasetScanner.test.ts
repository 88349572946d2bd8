import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import type { DatasetReport } from '../../../../src/shared/types';
import { summarizeSkipped } from '../../../../src/shared/skipReasons';
import { DatasetError, type ScanOptions, scanDataset } from '../../../../src/training/dataset/datasetScanner';
import { RunCancelled, TrainerError } from '../../../../src/training/util/errors';
import { inspect } from '../../../../src/training/dataset/imageInspection';
import { PHOTOS, hashTree, makeBadDataset, photoVariant, writeVariants } from '../../../fixtures/datasetFixtures';

const repoRoot = path.resolve(__dirname, '../../../..');
const options: ScanOptions = { valSplit: 0.2, seed: 42, maxPixels: 100_000_000 };

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'image-trainer-scan-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test(
  'a folder holding every kind of bad file is scanned without hanging, each problem listed with its reason, and left unchanged',
  { timeout: 60_000 },
  async (t) => {
    const dir = await tempDir(t);
    const bad = await makeBadDataset(path.join(dir, 'pets'));
    const before = await hashTree(bad.root);

    const progress: [number, number][] = [];
    const { report, classes, items } = await scanDataset(bad.root, {
      ...options,
      onProgress: (done, total) => progress.push([done, total]),
    });

    assert.deepEqual(Object.fromEntries(report.skipped.map((s) => [s.path, s.reason])), bad.skipped);
    for (const s of report.skipped) assert.ok(s.detail.length > 10, `${s.path} has a human detail`);
    assert.match(
      report.skipped.find((s) => s.path === 'cats/bomb.png')!.detail,
      /30000x30000 = 900,000,000 pixels, over the limit of 100,000,000/,
    );
    assert.match(report.skipped.find((s) => s.path === 'cats/notes.jpg')!.detail, /text file/);
    assert.match(report.skipped.find((s) => s.path === 'cats/gone.jpg')!.detail, /does-not-exist\.jpg/);

    assert.deepEqual(classes, ['cats', 'cups', 'motos']);
    assert.deepEqual(report.emptyClasses, bad.emptyClasses);
    assert.equal(report.ignored, bad.ignored);
    for (const [className, rels] of Object.entries(bad.usable)) {
      const classIndex = classes.indexOf(className);
      assert.deepEqual(
        items.filter((i) => i.classIndex === classIndex).map((i) => i.rel),
        rels,
      );
    }
    assert.deepEqual(
      report.duplicates.map((d) => ({ paths: d.paths, classes: d.classes })),
      [{ paths: bad.duplicate, classes: ['cats', 'motos'] }],
    );
    assert.equal(report.layout, 'folders');
    assert.equal(report.name, 'pets');
    assert.ok(
      report.warnings.some((w) => /^Classes with fewer than 10 images: cats \(8\), cups \(3\), motos \(6\)/.test(w)),
      report.warnings.join('\n'),
    );
    assert.ok(
      report.warnings.some((w) => /1 file not inside a class folder/.test(w)),
      report.warnings.join('\n'),
    );
    assert.ok(
      report.warnings.some((w) => /more than one class/.test(w)),
      report.warnings.join('\n'),
    );
    assert.equal(
      summarizeSkipped(report.skipped),
      '9 files skipped: 3 symlink loops, 2 not images, 1 empty file, 1 corrupt image, 1 over the pixel limit, 1 dangling symlink',
    );

    const cat0 = items.find((i) => i.rel === 'cats/cat0.jpg')!;
    assert.equal(
      cat0.sha256,
      (await import('node:crypto'))
        .createHash('sha256')
        .update(await readFile(cat0.abs))
        .digest('hex'),
    );
    assert.equal(cat0.format, 'jpeg');
    assert.deepEqual([cat0.width, cat0.height], [96, 96]);
    assert.equal(cat0.bytes, (await readFile(cat0.abs)).length);
    assert.equal(path.isAbsolute(cat0.abs), true);

    assert.deepEqual(progress[0], [0, progress.at(-1)![1]]);
    assert.deepEqual(progress.at(-1), [progress.at(-1)![1], progress.at(-1)![1]]);

    assert.deepEqual(await hashTree(bad.root), before, 'the dataset folder is byte-for-byte unchanged');
  },
);

test('JPEG, PNG, WebP, GIF and TIFF are recognised by their bytes whatever their names; other formats are named in the report', async (t) => {
  const root = path.join(await tempDir(t), 'formats');
  const a = path.join(root, 'a');
  await mkdir(a, { recursive: true });
  const cat = sharp(PHOTOS.cat).resize(40, 30);
  await writeFile(path.join(a, 'photo.webp.jpg'), await cat.clone().webp().toBuffer());
  await writeFile(path.join(a, 'ANIM.GIF'), await cat.clone().gif().toBuffer());
  await writeFile(path.join(a, 'scan'), await cat.clone().tiff().toBuffer());
  await writeFile(path.join(a, 'image.png'), await cat.clone().png().toBuffer());
  await writeFile(path.join(a, 'old.bmp'), Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]));
  await writeFile(path.join(a, 'drawing.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeVariants(path.join(root, 'b'), PHOTOS.coffee, 2);

  const { report, items } = await scanDataset(root, options);
  assert.deepEqual(
    items.filter((i) => i.classIndex === 0).map((i) => [i.rel, i.format, i.width, i.height]),
    [
      ['a/ANIM.GIF', 'gif', 40, 30],
      ['a/image.png', 'png', 40, 30],
      ['a/photo.webp.jpg', 'webp', 40, 30],
      ['a/scan', 'tiff', 40, 30],
    ],
  );
  assert.deepEqual(
    report.skipped.map((s) => [s.path, s.reason, s.detail]),
    [
      ['a/drawing.svg', 'not-image', 'an SVG or XML document (not supported), not a JPEG, PNG, WebP, GIF or TIFF image'],
      ['a/old.bmp', 'not-image', 'a BMP image (not supported: convert it to PNG or JPEG), not a JPEG, PNG, WebP, GIF or TIFF image'],
    ],
  );
});

test('every class with two or more images gets a validation image and identical files share a side', async (t) => {
  const dir = await tempDir(t);
  const bad = await makeBadDataset(path.join(dir, 'pets'));
  const { report, items } = await scanDataset(bad.root, options);
  for (const c of report.classes) {
    assert.ok(c.val >= 1, `${c.name} has a validation image`);
    assert.ok(c.train >= 1, `${c.name} has a training image`);
    assert.equal(c.test, 0);
  }
  const [a, b] = bad.duplicate.map((rel) => items.find((i) => i.rel === rel)!);
  assert.equal(a.split, b.split);
});

test('the shipped sample validates exactly ⌈0.2 · n⌉ images of every class', async () => {
  const { report } = await scanDataset(path.resolve(__dirname, '../../../../samples/leaves'), options);
  assert.deepEqual(
    report.classes.map((c) => [c.name, c.train, c.val]),
    report.classes.map((c) => [c.name, c.train + c.val - Math.ceil(0.2 * (c.train + c.val)), Math.ceil(0.2 * (c.train + c.val))]),
  );
  assert.ok(report.classes.every((c) => c.val === 6));
});

test('adding an image to a class moves at most one other image of it', async (t) => {
  const root = path.join(await tempDir(t), 'growing');
  await writeVariants(path.join(root, 'cats'), PHOTOS.cat, 8, 'cat');
  await writeVariants(path.join(root, 'motos'), PHOTOS.motoLeft, 8, 'moto');
  let before = await scanDataset(root, options);
  for (let k = 8; k < 14; k++) {
    await writeVariants(path.join(root, 'cats'), PHOTOS.cat, 1, 'cat', k);
    const after = await scanDataset(root, options);
    const sides = new Map(after.items.map((i) => [i.rel, i.split]));
    const moved = before.items.filter((i) => sides.get(i.rel) !== i.split).map((i) => i.rel);
    assert.ok(moved.length <= 1, `adding cat${k}: ${moved.join(', ')} moved`);
    assert.ok(
      moved.every((rel) => rel.startsWith('cats/')),
      'the other class is untouched',
    );
    assert.equal(after.report.classes[0].val, Math.ceil(0.2 * (k + 1)));
    before = after;
  }
  const reseeded = await scanDataset(root, { ...options, seed: 7 });
  assert.notDeepEqual(
    reseeded.items.map((i) => i.split),
    before.items.map((i) => i.split),
    'the seed changes the split',
  );
});

test('fewer than two usable classes is an error that says what was found and what is needed', async (t) => {
  const dir = await tempDir(t);
  const one = path.join(dir, 'leaves');
  await writeVariants(path.join(one, 'healthy'), PHOTOS.coffee, 3);
  await mkdir(path.join(one, 'sick'));
  await writeFile(path.join(one, 'sick', 'scan.jpg'), '');
  const error = await scanDataset(one, options).then(
    () => assert.fail('expected a DatasetError'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof DatasetError);
  assert.ok(error instanceof TrainerError);
  assert.equal(error.kind, 'dataset');
  assert.match(
    error.message,
    /^Found 1 usable class \(healthy\) in .*leaves: need at least 2 class folders with images \(1 class folder without usable images: sick; 1 file skipped: 1 empty file\)$/,
  );
  assert.deepEqual(error.report?.emptyClasses, ['sick']);

  const flat = path.join(dir, 'flat');
  await mkdir(flat);
  await writeFile(path.join(flat, 'a.jpg'), await photoVariant(PHOTOS.cat, 0));
  await assert.rejects(
    scanDataset(flat, options),
    /^DatasetError: Found no usable class in .*flat: need at least 2 class folders with images \(1 file directly in the folder/,
  );
  await assert.rejects(scanDataset(path.join(dir, 'missing'), options), /Dataset folder not found: .*missing/);
  await assert.rejects(scanDataset(path.join(flat, 'a.jpg'), options), /is not a folder/);
});

test('train/ and val/ (and test/) folders are honoured, with the union of their classes', async (t) => {
  const root = path.join(await tempDir(t), 'explicit');
  await writeVariants(path.join(root, 'train', 'cats'), PHOTOS.cat, 4, 'cat');
  await writeVariants(path.join(root, 'train', 'motos'), PHOTOS.motoLeft, 4, 'moto');
  await writeVariants(path.join(root, 'val', 'cats'), PHOTOS.cat, 2, 'cat', 4);
  await writeVariants(path.join(root, 'test', 'cups'), PHOTOS.coffee, 2, 'cup');
  await copyFile(path.join(root, 'train', 'motos', 'moto0.jpg'), path.join(root, 'test', 'cups', 'leak.jpg'));
  await writeVariants(path.join(root, 'extra'), PHOTOS.coffee, 1);

  const { report, classes, items } = await scanDataset(root, options);
  assert.equal(report.layout, 'explicit');
  assert.deepEqual(classes, ['cats', 'cups', 'motos']);
  assert.deepEqual(report.classes, [
    { name: 'cats', train: 4, val: 2, test: 0 },
    { name: 'cups', train: 0, val: 0, test: 3 },
    { name: 'motos', train: 4, val: 0, test: 0 },
  ]);
  for (const item of items) assert.equal(item.split, item.rel.split('/')[0]);
  assert.ok(items.some((i) => i.rel === 'val/cats/cat4.jpg'));
  assert.ok(
    report.warnings.some((w) => /Folders ignored .*: extra/.test(w)),
    report.warnings.join('\n'),
  );
  assert.ok(
    report.warnings.some((w) => /No validation images for cups, motos/.test(w)),
    report.warnings.join('\n'),
  );
  assert.ok(
    report.warnings.some((w) => /1 image appears in more than one of train\/, val\/ and test\//.test(w)),
    report.warnings.join('\n'),
  );
  assert.equal(report.ignored, 1);
});

test('with followExternalLinks, symlinked class folders and files outside the dataset are followed, and a file reached twice in a class is used once', async (t) => {
  const dir = await tempDir(t);
  const outside = path.join(dir, 'elsewhere');
  await writeVariants(outside, PHOTOS.motoLeft, 3, 'moto');
  const root = path.join(dir, 'linked');
  await writeVariants(path.join(root, 'cats'), PHOTOS.cat, 3, 'cat');
  await symlink(outside, path.join(root, 'motos'));
  await symlink('cat0.jpg', path.join(root, 'cats', 'again.jpg'));
  await symlink(path.join(outside, 'moto0.jpg'), path.join(root, 'cats', 'moto-link.jpg'));

  const { report, items } = await scanDataset(root, { ...options, followExternalLinks: true });
  assert.deepEqual(
    items.map((i) => i.rel),
    ['cats/cat0.jpg', 'cats/cat1.jpg', 'cats/cat2.jpg', 'cats/moto-link.jpg', 'motos/moto0.jpg', 'motos/moto1.jpg', 'motos/moto2.jpg'],
  );
  assert.equal(items.find((i) => i.rel === 'motos/moto1.jpg')!.abs, path.join(root, 'motos', 'moto1.jpg'));
  assert.equal(report.ignored, 1, 'cats/again.jpg is the same file as cats/cat0.jpg');
  assert.deepEqual(
    report.duplicates.map((d) => d.paths),
    [['cats/moto-link.jpg', 'motos/moto0.jpg']],
  );
  assert.deepEqual(report.skipped, []);
});

const EXTERNAL = (target: string) =>
  `symlink to ${target} outside the dataset folder: not followed (allow with --follow-external-links or the imageTrainer.followExternalLinks setting)`;

test('symlinks out of the dataset folder are skipped as outside the dataset, each with its target, while links inside it still work', async (t) => {
  const dir = await tempDir(t);
  const outside = path.join(dir, 'elsewhere');
  await writeVariants(outside, PHOTOS.motoLeft, 3, 'moto');
  // A named pipe outside: opening it would block the scan, so finishing proves it was never opened.
  execFileSync('mkfifo', [path.join(outside, 'pipe.jpg')]);
  const root = path.join(dir, 'linked');
  await writeVariants(path.join(root, 'cats'), PHOTOS.cat, 3, 'cat');
  await writeVariants(path.join(root, 'cups'), PHOTOS.coffee, 2, 'cup');
  await symlink(outside, path.join(root, 'motos'));
  await symlink('cat0.jpg', path.join(root, 'cats', 'again.jpg'));
  await symlink('../cups', path.join(root, 'cats', 'cups-inside'));
  await symlink(path.join(outside, 'moto0.jpg'), path.join(root, 'cats', 'moto-link.jpg'));
  await symlink(path.join(outside, 'pipe.jpg'), path.join(root, 'cats', 'pipe-link.jpg'));

  const { report, items, classes } = await scanDataset(root, options);
  assert.deepEqual(classes, ['cats', 'cups']);
  assert.deepEqual(
    items.map((i) => i.rel),
    [
      'cats/cat0.jpg',
      'cats/cat1.jpg',
      'cats/cat2.jpg',
      'cats/cups-inside/cup0.jpg',
      'cats/cups-inside/cup1.jpg',
      'cups/cup0.jpg',
      'cups/cup1.jpg',
    ],
  );
  assert.deepEqual(report.skipped, [
    { path: 'cats/moto-link.jpg', reason: 'external-symlink', detail: EXTERNAL(path.join(outside, 'moto0.jpg')) },
    { path: 'cats/pipe-link.jpg', reason: 'external-symlink', detail: EXTERNAL(path.join(outside, 'pipe.jpg')) },
    { path: 'motos', reason: 'external-symlink', detail: EXTERNAL(outside) },
  ]);
  assert.equal(report.emptyClasses.length, 0, 'a class folder that is a link out is not a class at all');
  assert.equal(summarizeSkipped(report.skipped), '3 files skipped: 3 outside the dataset (symlinks)');
});

test('the report lists at most 200 skipped files per reason and counts the rest', async (t) => {
  const dir = await tempDir(t);
  const outside = path.join(dir, 'system');
  await mkdir(outside);
  const root = path.join(dir, 'flowers');
  await writeVariants(path.join(root, 'daisy'), PHOTOS.cat, 2, 'daisy');
  await writeVariants(path.join(root, 'rose'), PHOTOS.coffee, 2, 'rose');
  for (let i = 0; i < 230; i++) {
    const name = `icon${String(i).padStart(3, '0')}.png`;
    await writeFile(path.join(outside, name), 'x');
    await symlink(path.join(outside, name), path.join(root, 'daisy', name));
  }
  for (let i = 0; i < 3; i++) await writeFile(path.join(root, 'rose', `notes${i}.jpg`), 'not an image at all');

  const { report } = await scanDataset(root, options);
  const byReason = (reason: string) => report.skipped.filter((s) => s.reason === reason);
  assert.equal(byReason('external-symlink').length, 200);
  assert.equal(byReason('external-symlink')[0].path, 'daisy/icon000.png');
  assert.equal(byReason('external-symlink').at(-1)!.path, 'daisy/icon199.png');
  assert.equal(byReason('not-image').length, 3);
  assert.deepEqual(report.skippedUnlisted, { 'external-symlink': 30 });
  assert.equal(
    summarizeSkipped(report.skipped, report.skippedUnlisted),
    '233 files skipped: 230 outside the dataset (symlinks), 3 not images',
  );
});

test('a file replaced by a symlink out of the dataset after the walk is not opened by the inspection', async (t) => {
  const dir = await tempDir(t);
  const outside = path.join(dir, 'outside');
  await mkdir(outside);
  execFileSync('mkfifo', [path.join(outside, 'shadow')]);
  const root = path.join(dir, 'data');
  await writeVariants(path.join(root, 'cats'), PHOTOS.cat, 2, 'cat');
  const file = path.join(root, 'cats', 'cat1.jpg');
  const st = await stat(file, { bigint: true });
  const within = await realpath(root);
  const candidate = {
    abs: file,
    rel: 'cats/cat1.jpg',
    className: 'cats',
    size: Number(st.size),
    identity: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`,
    ctimeNs: st.ctimeNs,
    within,
  };
  assert.equal((await inspect(candidate)).ok, true, 'the file as the walk saw it is an image');
  await rm(file);
  await symlink(path.join(outside, 'shadow'), file);
  assert.deepEqual(await inspect(candidate), {
    ok: false,
    skipped: {
      path: 'cats/cat1.jpg',
      reason: 'external-symlink',
      detail: `the path now leads to ${path.join(await realpath(outside), 'shadow')}, outside the dataset folder: not opened`,
    },
  });
});

test('a scan whose signal is already aborted rejects with RunCancelled', async (t) => {
  const root = path.join(await tempDir(t), 'cancel');
  await writeVariants(path.join(root, 'a'), PHOTOS.cat, 2);
  await writeVariants(path.join(root, 'b'), PHOTOS.coffee, 2);
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(scanDataset(root, { ...options, signal: controller.signal }), RunCancelled);
});

test(
  'files and folders that cannot be read are reported as unreadable (checked as an unprivileged user when run as root)',
  { timeout: 60_000 },
  async (t) => {
    const dir = await tempDir(t);
    const root = path.join(dir, 'locked');
    await writeVariants(path.join(root, 'cats'), PHOTOS.cat, 2, 'cat');
    await writeVariants(path.join(root, 'motos'), PHOTOS.motoLeft, 2, 'moto');
    await writeVariants(path.join(root, 'cats', 'private'), PHOTOS.cat, 1, 'cat', 2);
    await writeFile(path.join(root, 'cats', 'secret.jpg'), await photoVariant(PHOTOS.cat, 3));
    await chmod(path.join(root, 'cats', 'secret.jpg'), 0o000);
    await chmod(path.join(root, 'cats', 'private'), 0o000);
    let report: DatasetReport;
    const asRoot = process.geteuid?.() === 0;
    try {
      if (asRoot) {
        // Root reads everything regardless of permission bits: scan with the effective identity of
        // `nobody` (process-wide, libuv and libvips threads included), then take root back.
        await chmod(dir, 0o755);
        process.setegid!(65534);
        process.seteuid!(65534);
      }
      try {
        report = (await scanDataset(root, options)).report;
      } finally {
        if (asRoot) {
          process.seteuid!(0);
          process.setegid!(0);
        }
      }
    } finally {
      // Restored before the temporary folder is removed: an ordinary user cannot delete inside a 000 folder.
      await chmod(path.join(root, 'cats', 'private'), 0o755);
      await chmod(path.join(root, 'cats', 'secret.jpg'), 0o644);
    }
    assert.deepEqual(
      report.skipped.map((s) => [s.path, s.reason]),
      [
        ['cats/private', 'unreadable'],
        ['cats/secret.jpg', 'unreadable'],
      ],
    );
    assert.match(report.skipped[1].detail, /permission denied \(EACCES\)/);
    assert.deepEqual(
      report.classes.map((c) => c.train + c.val),
      [2, 2],
    );
  },
);

const plantVillage = path.resolve(repoRoot, '../shared/datasets/plantvillage-apple');

test(
  'the real PlantVillage apple dataset scans in seconds and its one 0-byte photo is reported as empty',
  { timeout: 60_000 },
  async () => {
    assert.ok(existsSync(plantVillage), `${plantVillage} is beside the clone (see ../shared/README.md)`);
    const { report, items } = await scanDataset(plantVillage, options);
    assert.equal(items.length, 1774);
    assert.deepEqual(
      report.skipped.map((s) => [s.path.split('/')[0], s.reason]),
      [['Apple___Black_rot', 'empty']],
    );
    assert.deepEqual(
      report.classes.map((c) => [c.name, c.train + c.val]),
      [
        ['Apple___Apple_scab', 500],
        ['Apple___Black_rot', 499],
        ['Apple___Cedar_apple_rust', 275],
        ['Apple___healthy', 500],
      ],
    );
    assert.ok(items.every((i) => i.format === 'jpeg' && i.width === 256 && i.height === 256));
  },
);
