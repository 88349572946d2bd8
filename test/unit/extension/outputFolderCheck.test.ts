import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { folderInsideDataset, realPathOfNearest } from '../../../src/extension/outputFolderCheck';
import { tempDir } from '../../support/tempDirs';

/** `<work>/data` (a dataset folder) and `<work>/link` → `data`. */
function work(): { root: string; data: string; link: string } {
  const root = fs.realpathSync(tempDir('unit-ext-output-'));
  const data = path.join(root, 'data');
  fs.mkdirSync(path.join(data, 'healthy'), { recursive: true });
  const link = path.join(root, 'link');
  fs.symlinkSync(data, link);
  return { root, data, link };
}

test('settings that put the cache folder inside the dataset through a link are caught, naming the setting', async () => {
  const { root, data, link } = work();
  const cache = path.join(link, 'cache');
  const found = await folderInsideDataset(data, [
    { role: 'runs', folder: path.join(root, '.image-trainer', 'runs'), setting: 'imageTrainer.runsFolder' },
    { role: 'cache', folder: cache, setting: 'imageTrainer.cacheFolder' },
  ]);
  assert.deepEqual(found, {
    message: `The cache folder ${cache} (really ${path.join(data, 'cache')}) is inside the dataset ${data}: choose a folder outside it (nothing was written). Setting: imageTrainer.cacheFolder.`,
    setting: 'imageTrainer.cacheFolder',
  });
  assert.deepEqual(fs.readdirSync(data), ['healthy']);
});

test('a runs folder equal to the dataset is caught; folders beside it pass', async () => {
  const { root, data } = work();
  const equal = await folderInsideDataset(data, [{ role: 'runs', folder: data, setting: 'imageTrainer.runsFolder' }]);
  assert.equal(equal?.setting, 'imageTrainer.runsFolder');
  assert.match(equal?.message ?? '', /is the dataset .* itself/);
  const beside = await folderInsideDataset(data, [
    { role: 'runs', folder: path.join(root, 'runs'), setting: 'imageTrainer.runsFolder' },
    { role: 'cache', folder: root, setting: 'imageTrainer.cacheFolder' },
  ]);
  assert.equal(beside, undefined);
});

test('the extension resolves a folder not created yet through its nearest existing parent', async () => {
  const { data, link } = work();
  assert.equal(await realPathOfNearest(path.join(link, 'a', 'b')), path.join(data, 'a', 'b'));
});
