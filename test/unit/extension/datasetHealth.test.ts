import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { discoverDatasets } from '../../../src/extension/datasetDiscovery';
import { checkDatasetHealth } from '../../../src/extension/datasetHealth';
import { tempDir } from '../../support/tempDirs';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const leaves = path.join(repoRoot, 'samples/leaves');

/** A copy of a few real leaf photos per class, under the temp folder. */
function copyLeaves(perClass: Record<string, number>): string {
  const root = path.join(tempDir('it-health-'), 'leaves');
  for (const [cls, n] of Object.entries(perClass)) {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    const photos = fs.readdirSync(path.join(leaves, cls)).sort().slice(0, n);
    for (const photo of photos) fs.copyFileSync(path.join(leaves, cls, photo), path.join(root, cls, photo));
  }
  return root;
}

async function healthOf(root: string, options = {}) {
  const { datasets } = await discoverDatasets(root);
  assert.equal(datasets.length, 1);
  return checkDatasetHealth(datasets[0], options);
}

test('the sample dataset is healthy: no warnings for 120 real photos in 4 balanced classes', async () => {
  const health = await healthOf(leaves);
  assert.deepEqual(health.warnings, []);
  assert.deepEqual(health.imagesPerClass, { black_rot: 30, cedar_rust: 30, healthy: 30, scab: 30 });
  assert.equal(health.files, 120);
});

test('a text file named .jpg and a zero-byte file are reported against their class, hidden and OS metadata files are ignored', async () => {
  const root = copyLeaves({ healthy: 12, scab: 12 });
  fs.writeFileSync(path.join(root, 'scab', 'broken.jpg'), 'this is not a JPEG at all');
  fs.writeFileSync(path.join(root, 'scab', 'empty.png'), '');
  fs.writeFileSync(path.join(root, 'scab', '.DS_Store'), 'metadata');
  fs.writeFileSync(path.join(root, 'scab', 'Icon\r'), 'macOS folder icon');
  fs.mkdirSync(path.join(root, 'scab', '__MACOSX'));
  fs.writeFileSync(path.join(root, 'scab', '__MACOSX', '._leaf.jpg'), 'resource fork');
  const health = await healthOf(root);
  assert.deepEqual(
    health.fileProblems.map((p) => [p.path, p.reason]),
    [
      ['scab/broken.jpg', 'not-image'],
      ['scab/empty.png', 'empty'],
    ],
  );
  assert.equal(health.imagesPerClass.scab, 12);
  assert.equal(health.classWarnings.scab.length, 2);
  assert.equal(health.classWarnings.healthy, undefined);
  assert.match(health.fileProblems[0].detail, /a text file, not a JPEG/);
  assert.deepEqual(health.warnings, ['2 files skipped: 1 empty file, 1 not an image']);
});

test('empty and tiny classes (under 10 images) and a strong imbalance are warned about', async () => {
  const root = copyLeaves({ healthy: 30, scab: 3, black_rot: 12 });
  fs.mkdirSync(path.join(root, 'cedar_rust'));
  const health = await healthOf(root);
  assert.deepEqual(health.emptyClasses, ['cedar_rust']);
  assert.deepEqual(health.tinyClasses, ['scab'], 'black_rot has 12 images: not tiny');
  assert.deepEqual(health.imbalance, { ratio: 10, largest: 'healthy', smallest: 'scab' });
  assert.ok(health.classWarnings.scab.some((w) => /10\.0× fewer images than healthy/.test(w)));
  assert.ok(health.classWarnings.scab.includes('only 3 images (fewer than 10)'));
  assert.ok(health.warnings.some((w) => /Classes are imbalanced: healthy has 30 images, scab 3 \(10\.0x\)/.test(w)));
  assert.ok(health.warnings.includes('1 class folder without usable images: cedar_rust'));
  assert.ok(health.warnings.some((w) => /^Class with fewer than 10 images: scab \(3\)/.test(w)));
  assert.deepEqual(
    health.findings.map((f) => [f.kind, f.classes]),
    [
      ['empty-classes', ['cedar_rust']],
      ['imbalance', ['healthy', 'scab']],
      ['tiny-classes', ['scab']],
    ],
  );
});

test('the same photo in two classes is found by content, a renamed copy included', async () => {
  const root = copyLeaves({ healthy: 10, scab: 10 });
  const photo = fs.readdirSync(path.join(root, 'healthy')).sort()[0];
  fs.copyFileSync(path.join(root, 'healthy', photo), path.join(root, 'scab', 'looks-like-scab.jpg'));
  const health = await healthOf(root);
  assert.deepEqual(health.duplicates, [{ paths: [`healthy/${photo}`, 'scab/looks-like-scab.jpg'], classes: ['healthy', 'scab'] }]);
  assert.ok(health.warnings.includes('2 identical files in 1 group appear in more than one class (label noise)'));
});

test('a symlink out of the dataset is reported as outside the dataset and never read, while a link inside it is passed over', async () => {
  const root = copyLeaves({ healthy: 12, scab: 12 });
  const outside = tempDir('it-health-outside-');
  // A named pipe: reading it would block the check, so finishing proves it was not opened.
  execFileSync('mkfifo', [path.join(outside, 'shadow')]);
  fs.symlinkSync(path.join(outside, 'shadow'), path.join(root, 'scab', 'shadow.jpg'));
  fs.symlinkSync(outside, path.join(root, 'healthy', 'system'));
  fs.symlinkSync('../healthy', path.join(root, 'scab', 'inside'));
  const health = await healthOf(root);
  const detail = (target: string) =>
    `symlink to ${target} outside the dataset folder: not followed (allow with --follow-external-links or the imageTrainer.followExternalLinks setting)`;
  assert.deepEqual(health.fileProblems, [
    { path: 'healthy/system', className: 'healthy', reason: 'external-symlink', detail: detail(outside) },
    { path: 'scab/shadow.jpg', className: 'scab', reason: 'external-symlink', detail: detail(path.join(outside, 'shadow')) },
  ]);
  assert.deepEqual(health.imagesPerClass, { healthy: 12, scab: 12 });
  assert.ok(health.warnings.includes('2 files skipped: 2 outside the dataset (symlinks)'), health.warnings.join('\n'));
});

test('discovery does not follow a symlink out of the workspace into a folder of classes', async () => {
  const workspace = tempDir('it-discovery-links-');
  const elsewhere = copyLeaves({ healthy: 3, scab: 3 });
  fs.symlinkSync(elsewhere, path.join(workspace, 'linked-leaves'));
  const { datasets } = await discoverDatasets(workspace);
  assert.deepEqual(datasets, []);
});
