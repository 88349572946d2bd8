import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isProcessAlive, removeStaleTempFiles, tempFileWriter, writeFileAtomic } from '../../../../src/training/util/atomicWrite';
import { tempDir } from '../../../support/tempDirs';

/** The pid of a process that has exited (a real one, started and waited for). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const pid = Number(child.stdout);
  assert.ok(pid > 0 && !isProcessAlive(pid), 'the finished process is still listed');
  return pid;
}

test('a failed atomic write removes its temporary file and its error names the file', async () => {
  const dir = tempDir('unit-atomic-fail-');
  // The target is a folder: the rename fails after the temporary file was written in full.
  const target = path.join(dir, 'model.json');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'inside'), '');
  await assert.rejects(writeFileAtomic(target, 'data'), (err: NodeJS.ErrnoException) => {
    assert.ok(err.path?.startsWith(target), `error without the file: ${err.message}`);
    return true;
  });
  assert.deepEqual(fs.readdirSync(dir), ['model.json']);
});

test('only the temporary names of atomic writes are recognised, with the pid that wrote them', () => {
  assert.equal(tempFileWriter('status.json.tmp-1234-7'), 1234);
  assert.equal(tempFileWriter('weights-abc-99.bin.tmp-99-12'), 99);
  for (const name of ['status.json', 'notes.tmp', 'x.tmp-12', 'x.tmp-a-1', 'x.tmp-0-1', '.tmp-5-6', 'x.tmp-5-6.bak']) {
    assert.equal(tempFileWriter(name), undefined, name);
  }
});

test('stale temporary files of dead processes are removed, those of live processes and other files are kept', async () => {
  const dir = tempDir('unit-atomic-stale-');
  const dead = deadPid();
  const files = {
    stale: `status.json.tmp-${dead}-3`,
    live: `status.json.tmp-${process.pid}-1`,
    lookalike: `status.json.tmp-${dead}`,
    user: 'status.json',
  };
  for (const name of Object.values(files)) fs.writeFileSync(path.join(dir, name), 'x');
  assert.deepEqual(await removeStaleTempFiles(dir), [files.stale]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [files.live, files.lookalike, files.user].sort());
  // Asked for one pid's files (a run cleaning up after itself), only those go.
  assert.deepEqual(await removeStaleTempFiles(dir, process.pid), [files.live]);
  assert.deepEqual(fs.readdirSync(dir).sort(), [files.lookalike, files.user].sort());
});

test('a folder that does not exist has no stale temporary files', async () => {
  assert.deepEqual(await removeStaleTempFiles(path.join(tempDir('unit-atomic-none-'), 'missing')), []);
});
