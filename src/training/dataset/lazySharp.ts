// sharp, loaded on first use. A warm rerun finds every image in the scan index and every vector
// in the feature cache, so it never reads a header or decodes a pixel, and loading libvips costs
// about 60 ms of start-up here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type SharpModule from 'sharp';

let loaded: typeof SharpModule | undefined;

/** The sharp function, required the first time it is asked for. */
export function sharp(): typeof SharpModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('sharp') as typeof SharpModule;
  return loaded;
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
