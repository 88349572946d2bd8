import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const repoRoot = path.resolve(import.meta.dirname, '../../..');
const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const CONTRACT_COMMANDS = [
  'imageTrainer.trainClassifier',
  'imageTrainer.cancelTraining',
  'imageTrainer.openPanel',
  'imageTrainer.showBackendDiagnostics',
  'imageTrainer.refreshDatasets',
  'imageTrainer.classifyImage',
  'imageTrainer.openRunReport',
];

test('every command of the contract is contributed in the "Image Trainer" category', () => {
  const commands = new Map<string, { title: string; category: string }>(
    pkg.contributes.commands.map((c: { command: string }) => [c.command, c]),
  );
  for (const id of CONTRACT_COMMANDS) {
    assert.ok(commands.has(id), `${id} is contributed`);
    assert.equal(commands.get(id)?.category, 'Image Trainer');
  }
  assert.equal(commands.get('imageTrainer.trainClassifier')?.title, 'Train Image Classifier');
});

test('every command a menu names is contributed, and every source registration matches a contribution', () => {
  const contributed = new Set(pkg.contributes.commands.map((c: { command: string }) => c.command));
  for (const [menu, items] of Object.entries(pkg.contributes.menus) as [string, { command: string }[]][]) {
    for (const item of items) assert.ok(contributed.has(item.command), `${menu} names ${item.command}`);
  }
  const source = fs.readFileSync(path.join(repoRoot, 'src/extension/extension.ts'), 'utf8');
  const registered = [...source.matchAll(/registerCommand\('([^']+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(registered, [...contributed].sort());
});

test('the extension activates only on its view and its restored panel (commands add their own events), runs in the workspace and needs trust and real files', () => {
  assert.deepEqual(pkg.activationEvents, ['onView:imageTrainer.datasets', 'onWebviewPanel:imageTrainer.trainingPanel']);
  assert.deepEqual(pkg.extensionKind, ['workspace']);
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, false);
  assert.equal(pkg.capabilities.virtualWorkspaces.supported, false);
  assert.equal(pkg.main, './dist/extension.js');
  assert.ok(fs.existsSync(path.join(repoRoot, pkg.icon)));
});

test('explorer menus train on folders and classify image files only', () => {
  const explorer = pkg.contributes.menus['explorer/context'] as { command: string; when: string }[];
  const train = explorer.find((m) => m.command === 'imageTrainer.trainClassifier');
  const classify = explorer.find((m) => m.command === 'imageTrainer.classifyImage');
  assert.equal(train?.when, 'explorerResourceIsFolder');
  const regex = /resourceExtname =~ \/(.+)\/i$/.exec(classify?.when ?? '');
  assert.ok(regex, classify?.when);
  const re = new RegExp(regex[1], 'i');
  for (const ext of ['.jpg', '.JPEG', '.png', '.webp', '.gif', '.tif']) assert.ok(re.test(ext), ext);
  for (const ext of ['.txt', '.jpgx', '.svg']) assert.ok(!re.test(ext), ext);
  assert.match(classify?.when ?? '', /!explorerResourceIsFolder/);
});

test('the Image Datasets view lives in the explorer with a welcome view', () => {
  assert.deepEqual(
    pkg.contributes.views.explorer.map((v: { id: string; name: string }) => [v.id, v.name]),
    [['imageTrainer.datasets', 'Image Datasets']],
  );
  assert.ok(
    pkg.contributes.viewsWelcome.some(
      (w: { view: string; contents: string }) => w.view === 'imageTrainer.datasets' && /No image datasets found/.test(w.contents),
    ),
  );
});

test('Check Dataset is offered on Explorer folders and on dataset rows of the tree, and Open Dataset Doctor on their Doctor row', () => {
  const menus = pkg.contributes.menus as Record<string, { command: string; when: string }[]>;
  assert.equal(menus['explorer/context']!.find((m) => m.command === 'imageTrainer.checkDataset')?.when, 'explorerResourceIsFolder');
  const onTree = menus['view/item/context']!.filter((m) => m.command === 'imageTrainer.checkDataset');
  assert.deepEqual(
    onTree.map((m) => m.when),
    ['view == imageTrainer.datasets && viewItem == dataset'],
  );
  const open = menus['view/item/context']!.find((m) => m.command === 'imageTrainer.openDoctorReport');
  const viewItem = new RegExp(/viewItem =~ \/(.+)\/$/.exec(open?.when ?? '')![1]!);
  assert.ok(viewItem.test('dataset') && viewItem.test('doctor') && !viewItem.test('run-finished'), open?.when);
});
