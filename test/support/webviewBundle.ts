// The panel's webview bundle built for a test page in a real browser: as `npm run build` builds
// dist/webview.js, into a folder of the test's own.
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const repoRoot = path.resolve(__dirname, '../..');

/** Builds src/webview/main.ts into `<dir>/webview.js` and returns that path. */
export async function buildWebviewBundle(dir: string): Promise<string> {
  const outfile = path.join(dir, 'webview.js');
  await esbuild.build({
    entryPoints: [path.join(repoRoot, 'src/webview/main.ts')],
    outfile,
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    logLevel: 'warning',
  });
  return outfile;
}
