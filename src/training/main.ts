// Entry of the training bundle (dist/training.js). Forked by the extension with an IPC channel and
// no arguments, it serves one training run; run from a terminal, it is the `image-trainer` CLI.
import { findExtensionRoot } from './models/baseModel';
import { serveChildProcess } from './childProcess';
import { runCli } from './cli';

if (require.main === module || process.argv[1]?.endsWith('image-trainer.js')) {
  const root = findExtensionRoot();
  if (process.send && process.argv.length <= 2) serveChildProcess(root);
  else void runCli(process.argv, root);
}
