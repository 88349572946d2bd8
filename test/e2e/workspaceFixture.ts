// Throwaway workspaces for the end-to-end tests: a copy of the leaf sample, optionally with one
// image moved into the wrong class, and workspace settings that keep a training run short.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { splitKey } from '../../src/training/dataset/datasetSplit';
import { repoRoot } from './harness';

export const datasetName = 'leaves';

/** Training settings of the end-to-end runs: short, seeded, on the engine's default backend choice. */
export const fastTrainingSettings = {
  'imageTrainer.epochs': 8,
  'imageTrainer.batchSize': 8,
  'imageTrainer.seed': 7,
  'imageTrainer.valSplit': 0.25,
  'imageTrainer.patience': 0,
  'imageTrainer.fineTuneLayers': 0,
};

export interface MisplacedImage {
  /** Path relative to the dataset root, where the image lies now (in the wrong class). */
  relativePath: string;
  /** The class the image really shows, and the class folder it was put in. */
  trueClass: string;
  wrongClass: string;
}

export interface Workspace {
  root: string;
  datasetRoot: string;
  classes: string[];
  /** Images per class folder as laid out on disk. */
  counts: Record<string, number>;
  misplaced?: MisplacedImage;
  writeSettings(settings: Record<string, unknown>): void;
  remove(): void;
}

/**
 * Copies samples/leaves into a fresh workspace. With `misplace`, moves one image of `trueClass`
 * into `wrongClass`: the one the seeded split is surest to hold out for validation, so the trained
 * model is evaluated on it and the confusion is certain to show.
 */
export function createLeavesWorkspace(misplace?: { trueClass: string; wrongClass: string }): Workspace {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'image-trainer-e2e-ws-'));
  const datasetRoot = path.join(root, datasetName);
  fs.cpSync(path.join(repoRoot, 'samples', datasetName), datasetRoot, { recursive: true });
  let misplaced: MisplacedImage | undefined;
  if (misplace) {
    const seed = fastTrainingSettings['imageTrainer.seed'];
    const candidates = fs
      .readdirSync(path.join(datasetRoot, misplace.trueClass))
      .sort()
      .map((name) => {
        const sha256 = createHash('sha256')
          .update(fs.readFileSync(path.join(datasetRoot, misplace.trueClass, name)))
          .digest('hex');
        return { name, key: splitKey(sha256, seed) };
      });
    const chosen = candidates.reduce((best, c) => (c.key < best.key ? c : best));
    if (chosen.key >= fastTrainingSettings['imageTrainer.valSplit'])
      throw new Error('no image of the class falls into the validation split');
    fs.renameSync(path.join(datasetRoot, misplace.trueClass, chosen.name), path.join(datasetRoot, misplace.wrongClass, chosen.name));
    misplaced = { relativePath: `${misplace.wrongClass}/${chosen.name}`, ...misplace };
  }
  const classes = fs
    .readdirSync(datasetRoot)
    .filter((d) => fs.statSync(path.join(datasetRoot, d)).isDirectory())
    .sort();
  const counts = Object.fromEntries(classes.map((c) => [c, fs.readdirSync(path.join(datasetRoot, c)).length]));
  const settingsFile = path.join(root, '.vscode', 'settings.json');
  const workspace: Workspace = {
    root,
    datasetRoot,
    classes,
    counts,
    misplaced,
    writeSettings(settings) {
      fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
      fs.writeFileSync(settingsFile, JSON.stringify(settings, null, 2));
    },
    remove() {
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
  workspace.writeSettings(fastTrainingSettings);
  return workspace;
}

/** Run folders of the workspace's default runs folder, oldest first. */
export function runFolders(workspace: Workspace): string[] {
  const runsDir = path.join(workspace.root, '.image-trainer', 'runs');
  if (!fs.existsSync(runsDir)) return [];
  return fs
    .readdirSync(runsDir)
    .filter((d) => d.startsWith(`${datasetName}-`))
    .sort()
    .map((d) => path.join(runsDir, d));
}

/** sha256 of every file under a folder, keyed by relative path: to prove a checkpoint is untouched. */
export function hashTree(dir: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    result[path.relative(dir, file)] = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  }
  return result;
}
