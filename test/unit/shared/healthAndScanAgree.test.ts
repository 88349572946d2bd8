import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkDatasetHealth } from '../../../src/extension/datasetHealth';
import { discoverDatasets } from '../../../src/extension/datasetDiscovery';
import { type DatasetFacts, datasetWarnings } from '../../../src/shared/datasetRules';
import { summarizeSkipped } from '../../../src/shared/skipReasons';
import type { DatasetReport } from '../../../src/shared/types';
import { scanDataset } from '../../../src/training/dataset/datasetScanner';
import { tempDir } from '../../support/tempDirs';

const leaves = path.resolve(import.meta.dirname, '../../../samples/leaves');

/**
 * Real leaf photos with one of each problem: scab (3 images) and black_rot (8, counting a copy) are
 * tiny (under the old engine rule of 5, black_rot was not), scab is 10× smaller than healthy,
 * cedar_rust is an empty class folder, a text file is named .jpg, a PNG is empty, a healthy photo
 * is also filed under black_rot, and a hidden file and OS metadata (Thumbs.db, desktop.ini,
 * Icon\r, __MACOSX/) lie among the photos.
 */
function troubledDataset(): string {
  const root = path.join(tempDir('it-agree-'), 'leaves');
  for (const [cls, n] of Object.entries({ healthy: 30, scab: 3, black_rot: 7 })) {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    for (const photo of fs.readdirSync(path.join(leaves, cls)).sort().slice(0, n)) {
      fs.copyFileSync(path.join(leaves, cls, photo), path.join(root, cls, photo));
    }
  }
  fs.mkdirSync(path.join(root, 'cedar_rust'));
  fs.writeFileSync(path.join(root, 'scab', 'notes.jpg'), 'scab photos from the north orchard\n');
  fs.writeFileSync(path.join(root, 'black_rot', 'empty.png'), '');
  const healthyPhoto = fs.readdirSync(path.join(root, 'healthy')).sort()[0];
  fs.copyFileSync(path.join(root, 'healthy', healthyPhoto), path.join(root, 'black_rot', 'looks-like-rot.jpg'));
  fs.writeFileSync(path.join(root, 'healthy', '.DS_Store'), Buffer.from([0, 0, 0, 1, 0x42, 0x75, 0x64, 0x31]));
  fs.writeFileSync(path.join(root, 'healthy', 'Thumbs.db'), Buffer.alloc(64, 1));
  fs.writeFileSync(path.join(root, 'scab', 'desktop.ini'), '[.ShellClassInfo]\n');
  fs.writeFileSync(path.join(root, 'scab', 'Icon\r'), '');
  fs.mkdirSync(path.join(root, 'black_rot', '__MACOSX'));
  fs.copyFileSync(path.join(root, 'healthy', healthyPhoto), path.join(root, 'black_rot', '__MACOSX', 'resource.jpg'));
  return root;
}

/** The facts of the shared rules as the engine's report records them. */
function factsOf(report: DatasetReport): DatasetFacts {
  return {
    classes: [
      ...report.classes.map((c) => ({ name: c.name, images: c.train + c.val + c.test })),
      ...report.emptyClasses.map((name) => ({ name, images: 0 })),
    ],
    skipped: report.skipped,
    duplicates: report.duplicates,
  };
}

test('the tree’s quick check and the engine’s scan give the same warnings about the same folder', { timeout: 60_000 }, async () => {
  const root = troubledDataset();
  const { datasets } = await discoverDatasets(path.dirname(root));
  assert.deepEqual(
    datasets.map((d) => d.root),
    [root],
  );
  const health = await checkDatasetHealth(datasets[0]);
  const { report } = await scanDataset(root, { valSplit: 0.2, seed: 1, maxPixels: 100_000_000 });

  const expected = [
    '2 files skipped: 1 empty file, 1 not an image',
    '1 class folder without usable images: cedar_rust',
    '2 identical files in 1 group appear in more than one class (label noise)',
    'Classes are imbalanced: healthy has 30 images, scab 3 (10.0x): consider class weights or more images of the small classes',
    'Classes with fewer than 10 images: black_rot (8), scab (3): too few to learn or to measure reliably',
  ];
  assert.deepEqual(health.warnings, expected);
  assert.deepEqual(
    health.findings.map((f) => [f.kind, f.classes]),
    [
      ['skipped-files', []],
      ['empty-classes', ['cedar_rust']],
      ['duplicates', ['black_rot', 'healthy']],
      ['imbalance', ['healthy', 'scab']],
      ['tiny-classes', ['black_rot', 'scab']],
    ],
  );
  // The engine finds the same things: the shared rules applied to its report give the very same warnings…
  assert.deepEqual(datasetWarnings(factsOf(report)), health.findings);
  // …its report says the class-level ones in the same words, and lists the skipped files and empty class itself.
  for (const finding of health.findings.filter((f) => ['duplicates', 'imbalance', 'tiny-classes'].includes(f.kind))) {
    assert.ok(report.warnings.includes(finding.text), `the report says: ${finding.text}\n${report.warnings.join('\n')}`);
  }
  assert.equal(summarizeSkipped(report.skipped), expected[0]);
  assert.deepEqual(report.emptyClasses, health.emptyClasses);

  // File by file, too: the same problems with the same reasons and details, the same duplicate group.
  assert.deepEqual(
    report.skipped.map((s) => [s.path, s.reason, s.detail]),
    health.fileProblems.map((p) => [p.path, p.reason, p.detail]),
  );
  assert.deepEqual(
    report.duplicates.map((d) => [d.paths, d.classes]),
    health.duplicates.map((d) => [d.paths, d.classes]),
  );
  // Hidden files and OS metadata are ignored by both: .DS_Store, Thumbs.db, desktop.ini, Icon\r, __MACOSX/.
  assert.equal(report.ignored, 5);
  assert.equal(health.files, 30 + 3 + 7 + 1 + 1 + 1);
});
