// A file that the scan read but that cannot be read when it is decoded (its permissions changed, it
// was replaced by a folder) is reported as unreadable with the OS reason, not as "not an image".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeImage, DecodeError } from '../../../../src/training/dataset/imageDecoder';
import { tempDir } from '../../../support/tempDirs';

const repo = path.resolve(__dirname, '../../../..');
const photos = path.join(repo, 'samples/leaves/healthy');

/** A copy of a real leaf photo in a fresh folder that every user can enter. */
function photoCopy(): string {
  const dir = tempDir('unit-unreadable-');
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'leaf.jpg');
  fs.copyFileSync(path.join(photos, fs.readdirSync(photos).sort()[0]), file);
  return file;
}

test('an image whose read permission was taken away is unreadable, with the reason the OS gives', async () => {
  const file = photoCopy();
  fs.chmodSync(file, 0o000);
  let failure: { reason: string; message: string };
  if (process.getuid?.() === 0) {
    // Root reads anything: decode as an unprivileged user, in a real process.
    const script = `import('./src/training/dataset/imageDecoder.ts').then((m) => (m.decodeImage ?? m.default.decodeImage)(${JSON.stringify(file)}, 32, 1e8)).then(() => console.log('{}'), (e) => console.log(JSON.stringify({ reason: e.reason, message: e.message })))`;
    const out = execFileSync('runuser', ['-u', 'nobody', '--', process.execPath, '--import', 'tsx', '-e', script], {
      cwd: repo,
      encoding: 'utf8',
    });
    failure = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as typeof failure;
  } else {
    failure = await decodeImage(file, 32, 1e8).then(
      () => assert.fail('an unreadable file was decoded'),
      (e: DecodeError) => e,
    );
  }
  assert.deepEqual(
    { reason: failure.reason, message: failure.message },
    { reason: 'unreadable', message: 'cannot be read (EACCES: permission denied)' },
  );
});

test('an image replaced by a folder after the scan is unreadable, not "not an image"', async () => {
  const file = photoCopy();
  fs.rmSync(file);
  fs.mkdirSync(file);
  await assert.rejects(decodeImage(file, 32, 1e8), (e: DecodeError) => {
    assert.ok(e instanceof DecodeError);
    assert.equal(e.reason, 'unreadable');
    assert.equal(e.message, 'cannot be read (EISDIR: illegal operation on a directory)');
    return true;
  });
});

test('a file that can be read but is no image is still "not an image"', async () => {
  const file = photoCopy();
  fs.writeFileSync(file, 'plain text, not a JPEG');
  await assert.rejects(decodeImage(file, 32, 1e8), { reason: 'not-image' });
});
