// One script builds every bundle in parallel: `node esbuild.mjs [--watch] [--production] [--outdir=DIR]`.
// Type checking is separate (`npm run typecheck`).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');
// The packaging script builds into its staging folder, leaving the development dist/ alone.
const outdir = process.argv.find((a) => a.startsWith('--outdir='))?.slice('--outdir='.length) ?? 'dist';

// Native or WebAssembly packages are loaded from node_modules at run time, never bundled:
// sharp and the tfjs backends locate their binaries relative to their own package folders, and the
// native tfjs packages and onnxruntime are optional.
const nodeExternals = [
  'vscode',
  'sharp',
  '@tensorflow/tfjs',
  '@tensorflow/tfjs-core',
  '@tensorflow/tfjs-layers',
  '@tensorflow/tfjs-backend-wasm',
  '@tensorflow/tfjs-backend-cpu',
  '@tensorflow/tfjs-node',
  '@tensorflow/tfjs-node-gpu',
  'onnxruntime-node',
];

// The production build (the VSIX) bundles the pure-JavaScript tfjs packages into dist/training.js,
// so the package ships none of node_modules/@tensorflow (hundreds of MB); the WebAssembly backend's
// binaries are copied to <outdir>/wasm, where the backend loader looks first. sharp and the
// optional native backends stay external.
const productionNodeExternals = nodeExternals.filter(
  (name) =>
    ![
      '@tensorflow/tfjs',
      '@tensorflow/tfjs-core',
      '@tensorflow/tfjs-layers',
      '@tensorflow/tfjs-backend-wasm',
      '@tensorflow/tfjs-backend-cpu',
    ].includes(name),
);

/** Shared options for one bundle. */
function createConfig(entry, outfile, platform) {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform,
    format: platform === 'node' ? 'cjs' : 'iife',
    target: platform === 'node' ? 'node20' : 'es2022',
    sourcemap: production ? false : 'linked',
    minify: production,
    external: platform === 'node' ? (production ? productionNodeExternals : nodeExternals) : [],
    logLevel: 'warning',
  };
}

const configs = [
  createConfig('src/extension/extension.ts', path.join(outdir, 'extension.js'), 'node'),
  createConfig('src/training/main.ts', path.join(outdir, 'training.js'), 'node'),
  createConfig('src/webview/main.ts', path.join(outdir, 'webview.js'), 'browser'),
];

/** Copies the tfjs WebAssembly binaries next to the bundled backend (production builds only). */
function copyWasmBinaries() {
  const require = createRequire(import.meta.url);
  const wasmDist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const target = path.join(outdir, 'wasm');
  fs.mkdirSync(target, { recursive: true });
  for (const file of fs.readdirSync(wasmDist).filter((f) => f.endsWith('.wasm'))) {
    fs.copyFileSync(path.join(wasmDist, file), path.join(target, file));
  }
}

if (watch) {
  const contexts = await Promise.all(configs.map((c) => esbuild.context(c)));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('watching…');
} else {
  await Promise.all(configs.map((c) => esbuild.build(c)));
  if (production) copyWasmBinaries();
}
