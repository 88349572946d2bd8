import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { addKept, isDoctorFolderName, KEPT_FILE, readDoctorReport, readKept } from '../../../src/extension/doctorFiles';
import { ImagePathGuard } from '../../../src/extension/imagePathGuard';

let base: string;
let root: string;
let runs: string;

before(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'doctor-files-'));
  root = path.join(base, 'leaves');
  runs = path.join(base, '.image-trainer', 'runs');
  for (const dir of ['scab', 'healthy']) await fs.mkdir(path.join(root, dir), { recursive: true });
  await fs.copyFile(path.resolve(import.meta.dirname, '../../../samples/leaves/scab/scab_01.jpg'), path.join(root, 'scab', 'a.jpg'));
  await fs.mkdir(path.join(base, 'outside'), { recursive: true });
  await fs.writeFile(path.join(base, 'outside', 'taken.jpg'), 'jpeg');
  await fs.copyFile(path.join(root, 'scab', 'a.jpg'), path.join(root, 'healthy', 'taken.jpg'));
  await fs.symlink(path.join(root, 'healthy'), path.join(base, 'link-into-dataset'));
});

after(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

test('a check folder is told from a training run of a dataset whose name starts with doctor-', () => {
  assert.equal(isDoctorFolderName('doctor-leaves-20261202-090130', 'leaves'), true);
  assert.equal(isDoctorFolderName('doctor-leaves-20261202-090130-2', 'leaves'), true);
  assert.equal(isDoctorFolderName('leaves-20261202-090130', 'leaves'), false);
  // A training run of the dataset "doctor-leaves" is named after it, without a second prefix.
  assert.equal(isDoctorFolderName('doctor-leaves-20261202-090130', 'doctor-leaves'), false);
  assert.equal(isDoctorFolderName('doctor-doctor-leaves-20261202-090130', 'doctor-leaves'), true);
  assert.equal(isDoctorFolderName('doctor-leaves-notes', 'leaves'), false);
});

test('kept findings are remembered per dataset in the runs folder, never in the dataset', async () => {
  assert.deepEqual([...(await readKept(runs, root))], []);
  await addKept(runs, root, 'label:scab/a.jpg');
  await addKept(runs, root, 'label:scab/a.jpg');
  await addKept(runs, root, 'shortcut:file size');
  await addKept(runs, path.join(base, 'other'), 'outlier:x.jpg');
  assert.deepEqual([...(await readKept(runs, root))], ['label:scab/a.jpg', 'shortcut:file size']);
  assert.deepEqual(
    [...(await readKept(runs, `${root}/`))],
    ['label:scab/a.jpg', 'shortcut:file size'],
    'the same folder written differently',
  );
  assert.deepEqual((await fs.readdir(runs)).sort(), [KEPT_FILE]);
  assert.deepEqual((await fs.readdir(root)).sort(), ['healthy', 'scab']);
});

test('a damaged kept file reads as nothing kept and is replaced by the next Keep', async () => {
  const dir = path.join(base, 'damaged-runs');
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, KEPT_FILE), '{"version":1,"datasets":');
  assert.deepEqual([...(await readKept(dir, root))], []);
  await addKept(dir, root, 'outlier:scab/a.jpg');
  assert.deepEqual([...(await readKept(dir, root))], ['outlier:scab/a.jpg']);
});

test('a doctor.json that is missing, not JSON or not a report is refused with the reason', async () => {
  const dir = path.join(base, 'check');
  await fs.mkdir(dir, { recursive: true });
  assert.match(JSON.stringify(await readDoctorReport(dir)), /doctor\.json not found/);
  await fs.writeFile(path.join(dir, 'doctor.json'), '{');
  assert.match(JSON.stringify(await readDoctorReport(dir)), /not valid JSON/);
  await fs.writeFile(path.join(dir, 'doctor.json'), JSON.stringify({ dataset: root, images: 1 }));
  assert.match(JSON.stringify(await readDoctorReport(dir)), /not a doctor report/);
});

test('moving an image out of the dataset needs a real folder outside it with no file of that name', async () => {
  const guard = new ImagePathGuard(root, ['scab/a.jpg', 'healthy/taken.jpg'], () => [root]);
  const ok = await guard.moveOutTarget('scab/a.jpg', path.join(base, 'outside'));
  assert.deepEqual(ok, {
    ok: true,
    relativePath: 'scab/a.jpg',
    absolutePath: path.join(await fs.realpath(path.join(base, 'outside')), 'a.jpg'),
    from: await fs.realpath(path.join(root, 'scab', 'a.jpg')),
  });
  const reason = async (p: string, folder: string) => {
    const r = await guard.moveOutTarget(p, folder);
    return r.ok ? 'ok' : r.reason;
  };
  assert.equal(await reason('scab/a.jpg', root), 'the folder is inside the dataset (choose one outside it)');
  assert.equal(await reason('scab/a.jpg', path.join(root, 'healthy')), 'the folder is inside the dataset (choose one outside it)');
  assert.equal(
    await reason('scab/a.jpg', path.join(base, 'link-into-dataset')),
    'the folder is inside the dataset (choose one outside it)',
  );
  assert.equal(await reason('healthy/taken.jpg', path.join(base, 'outside')), 'taken.jpg already exists in that folder');
  assert.equal(await reason('scab/a.jpg', path.join(base, 'missing')), 'folder not found');
  assert.equal(await reason('../outside/taken.jpg', path.join(base, 'outside')), 'not normalised (empty, "." or ".." segment)');
  assert.equal(await reason('scab/unknown.jpg', path.join(base, 'outside')), 'not an image of this run');
});
