// sharp, loaded on first use. A warm rerun finds every image in the scan index and every vector
// in the feature cache, so it never reads a header or decodes a pixel, and loading libvips costs
// about 60 ms of start-up here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type SharpModule from 'sharp';
import { TrainerError } from '../util/errors';

let loaded: typeof SharpModule | undefined;

/**
 * The sharp function, required the first time it is asked for. When its native part cannot load
 * (a VSIX or an install for another platform), the error says which platform and what to install,
 * instead of a dlopen stack, and every image of the run is not blamed for it.
 */
export function sharp(): typeof SharpModule {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded ??= require('sharp') as typeof SharpModule;
  } catch (err) {
    throw sharpLoadError(err);
  }
  return loaded;
}

/** Why sharp cannot load, in words a user can act on. */
export function sharpLoadError(err: unknown): TrainerError {
  const platform = `${process.platform}-${process.arch}`;
  const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
  return new TrainerError(
    'backend',
    `The image decoder (sharp) cannot load on ${platform}: ${reason} Install the Image Trainer VSIX built for ${platform}, or for the command line reinstall it on this machine (npm install -g image-trainer) so that npm fetches sharp's ${platform} binaries.`,
    { cause: err },
  );
}

/** sharp's version: from the loaded module, else from its package.json (read, not loaded). */
export function sharpVersion(): string {
  if (loaded) return String(loaded.versions?.sharp ?? 'unknown');
  try {
    // sharp's `exports` hide package.json from require; its entry point sits in lib/.
    const manifest = path.join(path.dirname(require.resolve('sharp')), '..', 'package.json');
    return String((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { version?: string }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}
