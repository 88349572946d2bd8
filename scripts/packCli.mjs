#!/usr/bin/env node
// `npm run pack:cli [-- --out-dir DIR]`: the command-line tool as an npm package. It stages
// out/cli-package/ with a package.json of its own (the root package.json is the extension's
// manifest and its dependencies are the development tree) and runs `npm pack` there, writing
// out/image-trainer-<version>.tgz. A user installs it with `npm install -g <tarball>`.
//
// The tarball holds only what the CLI needs: bin/, dist/training.js (the production bundle, tfjs
// inside), dist/wasm/*.wasm, the embedded base model, and the two files of
// @tensorflow/tfjs-backend-wasm the threaded WebAssembly loader requires at run time (as a bundled
// dependency). npm installs sharp (with this platform's native parts) from the registry;
// onnxruntime-node is optional, and without it the CLI runs on WebAssembly.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outDirArg = args.indexOf('--out-dir') >= 0 ? args[args.indexOf('--out-dir') + 1] : 'out';
const outDir = path.resolve(repoRoot, outDirArg);
const stage = path.join(repoRoot, 'out', 'cli-package');
const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const embeddedModel = 'media/models/mobilenet_v2_0.35_224_no_top';
// Files the bundle loads from a package it otherwise bundles (see src/training/backend/wasmThreads.ts).
const wasmLoaderFiles = ['wasm-out/tfjs-backend-wasm-threaded-simd.js', 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js'];

fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });
execFileSync(process.execPath, ['esbuild.mjs', '--production', `--outdir=${path.join(stage, 'dist')}`], {
  cwd: repoRoot,
  stdio: 'inherit',
});
// The CLI needs only the training bundle; the build also writes the extension's and the webview's.
for (const file of ['extension.js', 'webview.js']) fs.rmSync(path.join(stage, 'dist', file), { force: true });
fs.cpSync(path.join(repoRoot, 'bin'), path.join(stage, 'bin'), { recursive: true });
fs.cpSync(path.join(repoRoot, embeddedModel), path.join(stage, embeddedModel), { recursive: true });
fs.copyFileSync(path.join(repoRoot, 'LICENSE'), path.join(stage, 'LICENSE'));

const wasmPkgDir = path.dirname(fileURLToPath(import.meta.resolve('@tensorflow/tfjs-backend-wasm/package.json')));
const wasmPkg = JSON.parse(fs.readFileSync(path.join(wasmPkgDir, 'package.json'), 'utf8'));
const wasmDest = path.join(stage, 'node_modules', '@tensorflow', 'tfjs-backend-wasm');
for (const file of wasmLoaderFiles) {
  fs.mkdirSync(path.dirname(path.join(wasmDest, file)), { recursive: true });
  fs.copyFileSync(path.join(wasmPkgDir, file), path.join(wasmDest, file));
}
const trimmedWasmPkg = {
  name: wasmPkg.name,
  version: wasmPkg.version,
  license: wasmPkg.license,
  description: `${wasmLoaderFiles.length} run-time files of ${wasmPkg.name}`,
};
fs.writeFileSync(path.join(wasmDest, 'package.json'), JSON.stringify(trimmedWasmPkg, null, 2) + '\n');

const cliManifest = {
  // findExtensionRoot() finds the embedded model beside the package.json named image-trainer.
  name: manifest.name,
  version: manifest.version,
  description: manifest.description,
  license: manifest.license,
  keywords: manifest.keywords,
  engines: { node: manifest.engines.node },
  bin: manifest.bin,
  files: ['bin/', 'dist/', `${embeddedModel}/`],
  dependencies: { sharp: manifest.dependencies.sharp, [wasmPkg.name]: wasmPkg.version },
  bundleDependencies: [wasmPkg.name],
  optionalDependencies: manifest.optionalDependencies,
};
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(cliManifest, null, 2) + '\n');
fs.writeFileSync(
  path.join(stage, 'README.md'),
  `# image-trainer\n\n${manifest.description}\n\n` +
    '```sh\nimage-trainer train <folder>            # one subfolder per class\n' +
    'image-trainer predict <run-folder> <image>\nimage-trainer diagnose\nimage-trainer --help\n```\n',
);

fs.mkdirSync(outDir, { recursive: true });
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const packed = JSON.parse(
  execFileSync(npm, ['pack', '--json', '--pack-destination', outDir], {
    cwd: stage,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  }),
)[0];
const tarball = path.join(outDir, packed.filename);
console.log(
  `CLI package ${path.relative(process.cwd(), tarball)}: ${(packed.size / 1024 / 1024).toFixed(2)} MB, ${packed.entryCount} files`,
);
