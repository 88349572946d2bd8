// One script builds every bundle in parallel: `node esbuild.mjs [--watch] [--production]`.
// Type checking is separate (`npm run typecheck`).
import * as esbuild from 'esbuild';

const watch = process.argv.includes('--watch');
const production = process.argv.includes('--production');

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
    external: platform === 'node' ? nodeExternals : [],
    logLevel: 'warning',
  };
}

const configs = [
  createConfig('src/extension/extension.ts', 'dist/extension.js', 'node'),
  createConfig('src/training/main.ts', 'dist/training.js', 'node'),
  createConfig('src/webview/main.ts', 'dist/webview.js', 'browser'),
];

if (watch) {
  const contexts = await Promise.all(configs.map((c) => esbuild.context(c)));
  await Promise.all(contexts.map((c) => c.watch()));
  console.log('watching…');
} else {
  await Promise.all(configs.map((c) => esbuild.build(c)));
}
