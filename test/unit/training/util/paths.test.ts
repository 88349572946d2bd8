import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkOutputFolder, nearestExisting, realPathOfNearest, refuseFolderInDataset } from '../../../../src/training/util/paths';
import { tempDir } from '../../../support/tempDirs';

/** A work folder holding `data/healthy/a.jpg` (a real photo) and a link `link` → `data`. */
function workWithDataset(): { work: string; data: string; link: string } {
  const work = fs.realpathSync(tempDir('unit-paths-'));
  const data = path.join(work, 'data');
  fs.mkdirSync(path.join(data, 'healthy'), { recursive: true });
  const photo = path.resolve(__dirname, '../../../../samples/leaves/healthy');
  fs.copyFileSync(path.join(photo, fs.readdirSync(photo).sort()[0]), path.join(data, 'healthy', 'a.jpg'));
  const link = path.join(work, 'link');
  fs.symlinkSync(data, link);
  return { work, data, link };
}

/** Every path under `root`, to prove a refused check created nothing. */
function listing(root: string): string[] {
  return fs.readdirSync(root, { recursive: true, encoding: 'utf8' }).sort();
}

test('the real path of a folder not created yet is its nearest existing parent resolved, plus the rest', async () => {
  const { data, link } = workWithDataset();
  assert.equal(await realPathOfNearest(path.join(link, 'cache', 'deeper')), path.join(data, 'cache', 'deeper'));
  assert.equal(await realPathOfNearest(path.join(link, 'healthy', 'a.jpg')), path.join(data, 'healthy', 'a.jpg'));
  const nearest = await nearestExisting(path.join(link, 'cache', 'deeper'));
  assert.equal(nearest.path, link);
  assert.ok(nearest.stat.isDirectory());
});

test('a folder equal to the dataset, inside it, or inside it through a link is refused with words naming both', async () => {
  const { work, data, link } = workWithDataset();
  const before = listing(work);
  await assert.rejects(refuseFolderInDataset('cache', data, data), {
    kind: 'options',
    message: `The cache folder ${data} is the dataset ${data} itself: choose a folder outside it (nothing was written).`,
  });
  await assert.rejects(refuseFolderInDataset('runs', path.join(data, 'runs'), data), {
    kind: 'options',
    message: `The runs folder ${path.join(data, 'runs')} is inside the dataset ${data}: choose a folder outside it (nothing was written).`,
  });
  await assert.rejects(refuseFolderInDataset('cache', path.join(link, 'c', 'd'), data), {
    kind: 'options',
    message: `The cache folder ${path.join(link, 'c', 'd')} (really ${path.join(data, 'c', 'd')}) is inside the dataset ${data}: choose a folder outside it (nothing was written).`,
  });
  // The dataset given through the link is the same dataset.
  await assert.rejects(refuseFolderInDataset('runs', path.join(data, 'r'), link), { kind: 'options' });
  assert.deepEqual(listing(work), before);
});

test('a folder beside the dataset, or one that contains it, is accepted', async () => {
  const { work, data } = workWithDataset();
  await refuseFolderInDataset('runs', path.join(work, 'runs'), data);
  await refuseFolderInDataset('cache', work, data);
  // A sibling whose name starts with the dataset's is not inside it.
  await refuseFolderInDataset('cache', path.join(work, 'data-cache'), data);
});

test('a runs folder that is a file, or under a file, is refused before anything is written; a cache folder there is left to the run, which goes on without caching', async () => {
  const { work, data } = workWithDataset();
  const file = path.join(work, 'notes.txt');
  fs.writeFileSync(file, 'x');
  await assert.rejects(checkOutputFolder('runs', file, data, true), {
    kind: 'options',
    message: `The runs folder ${file} is a file, not a folder: choose a folder (nothing was written).`,
  });
  await assert.rejects(checkOutputFolder('runs', path.join(file, 'runs'), data, true), {
    kind: 'disk',
    message: `ENOTDIR: the runs folder ${path.join(file, 'runs')} cannot be created because ${file} is a file, not a folder (nothing was written).`,
  });
  await checkOutputFolder('cache', file, data, false);
  await checkOutputFolder('cache', path.join(file, 'cache'), data, false);
  assert.deepEqual(fs.readdirSync(work).sort(), ['data', 'link', 'notes.txt']);
});

test('a runs folder that does not exist yet under a writable folder passes and is not created by the check', async () => {
  const { work, data } = workWithDataset();
  await checkOutputFolder('runs', path.join(work, 'a', 'b', 'runs'), data, true);
  assert.equal(fs.existsSync(path.join(work, 'a')), false);
});
