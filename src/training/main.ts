// Entry of the training bundle (dist/training.js). Forked by the extension with an IPC channel and
// no arguments, it serves one training run; run from a terminal, it is the `image-trainer` CLI.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { serveChildProcess } from './childProcess';
import { runCli } from './cli';

/** The product's root folder (holds package.json and media/), found upward from this file. */
export function findExtensionRoot(start: string = __dirname): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'image-trainer') return dir;
    } catch {
      // keep walking up
    }
    if (path.dirname(dir) === dir) return path.resolve(start, '..');
  }
}

if (require.main === module || process.argv[1]?.endsWith('image-trainer.js')) {
  const root = findExtensionRoot();
  if (process.send && process.argv.length <= 2) serveChildProcess(root);
  else void runCli(process.argv, root);
}
