#!/usr/bin/env node
// `npm run package [-- --without-onnxruntime]`: builds the production bundles into a staging
// folder that holds only what the extension needs at run time, packs it as a linux-x64 VSIX with vsce, checks the contents and
// prints size and file count. The development dist/ is left alone.
//
// Run-time contents: package.json, README/LICENSE, dist/ (minified bundles with tfjs inside
// training.js, and dist/wasm/*.wasm), media/ (the embedded base model), and node_modules for the
// packages the bundles load at run time (sharp with its linux-x64 native parts, and
// @vscode-elements/elements only if the extension host serves it from node_modules).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const stage = path.join(repoRoot, '.vscode-test', 'vsix-stage');
const target = 'linux-x64';
const started = Date.now();

const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const vsixPath = path.join(repoRoot, process.env.VSIX_OUT ?? `${manifest.name}-${manifest.version}.vsix`);

fs.rmSync(stage, { recursive: true, force: true });
fs.mkdirSync(stage, { recursive: true });

execFileSync(process.execPath, ['esbuild.mjs', '--production', `--outdir=${path.join(stage, 'dist')}`], {
  cwd: repoRoot,
  stdio: 'inherit',
});

// What the bundles load from node_modules at run time: sharp (native, always external), the
// optional ONNX Runtime when the training bundle imports it, @vscode-elements/elements when the
// extension serves it to the webview from node_modules instead of bundling it.
const runtimePackages = ['sharp'];
const bundleText = (name) => fs.readFileSync(path.join(stage, 'dist', name), 'utf8');
// ONNX Runtime (linux-x64 part: 17 MB of the VSIX) extracts features 1.4-2x faster than tfjs
// WebAssembly; `--without-onnxruntime` packs a small VSIX that falls back to WebAssembly.
const withOnnxRuntime = !process.argv.includes('--without-onnxruntime');
if (withOnnxRuntime && /["']onnxruntime-node["']/.test(bundleText('training.js'))) runtimePackages.push('onnxruntime-node');
if (bundleText('extension.js').includes('@vscode-elements/elements')) runtimePackages.push('@vscode-elements/elements');
// Dependencies a package needs only for its install script (ONNX Runtime's binary download).
const installOnlyDependencies = { 'onnxruntime-node': ['adm-zip', 'global-agent'] };

// The packaged manifest declares only the run-time dependencies (vsce copies exactly their tree).
const packagedManifest = { ...manifest, dependencies: {} };
for (const name of runtimePackages)
  packagedManifest.dependencies[name] = manifest.dependencies?.[name] ?? manifest.optionalDependencies?.[name];
delete packagedManifest.optionalDependencies;
delete packagedManifest.devDependencies;
delete packagedManifest.scripts;
delete packagedManifest.bin;
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(packagedManifest, null, 2) + '\n');

for (const file of ['LICENSE', 'README.md', 'CHANGELOG.md', '.vscodeignore']) {
  if (fs.existsSync(path.join(repoRoot, file))) fs.copyFileSync(path.join(repoRoot, file), path.join(stage, file));
}
if (!fs.existsSync(path.join(stage, 'README.md'))) {
  fs.writeFileSync(path.join(stage, 'README.md'), `# ${manifest.displayName}\n\n${manifest.description}\n`);
}
fs.cpSync(path.join(repoRoot, 'media'), path.join(stage, 'media'), { recursive: true });
// The README links to docs/*.md; packaged, the links work in the Extensions view.
if (fs.existsSync(path.join(repoRoot, 'docs'))) fs.cpSync(path.join(repoRoot, 'docs'), path.join(stage, 'docs'), { recursive: true });

/** Copies a package and, transitively, the dependencies it has installed, into the staging node_modules. */
function copyPackageTree(name, fromDir, seen = new Set()) {
  const pkgDir = resolvePackageDir(name, fromDir);
  if (!pkgDir || seen.has(pkgDir)) return;
  seen.add(pkgDir);
  const relative = path.relative(repoRoot, pkgDir);
  fs.cpSync(pkgDir, path.join(stage, relative), { recursive: true, dereference: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const installOnly = installOnlyDependencies[pkg.name] ?? [];
  if (installOnly.length > 0) {
    // The packaged copy never runs its install script, so it declares only its run-time dependencies.
    for (const dep of installOnly) delete pkg.dependencies[dep];
    delete pkg.scripts;
    fs.writeFileSync(path.join(stage, relative, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  }
  // Optional dependencies are the per-platform native packages: only the installed ones exist.
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) copyPackageTree(dep, pkgDir, seen);
}

/** Finds an installed package the way Node does, walking up node_modules folders (null if absent). */
function resolvePackageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === path.dirname(dir)) return null;
  }
}

for (const name of runtimePackages) copyPackageTree(name, repoRoot);

// Files the bundles load from a package they otherwise bundle: the threaded WebAssembly loader
// (src/training/backend/wasmThreads.ts) requires the Emscripten factory and pthread worker script of the
// threaded build from @tensorflow/tfjs-backend-wasm. Only these files are packaged, under a
// manifest without dependencies.
const packageFilesAtRunTime = {
  '@tensorflow/tfjs-backend-wasm': ['wasm-out/tfjs-backend-wasm-threaded-simd.js', 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js'],
};
for (const [name, files] of Object.entries(packageFilesAtRunTime)) {
  const pkgDir = resolvePackageDir(name, repoRoot);
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const target = path.join(stage, 'node_modules', name);
  for (const file of files) {
    fs.mkdirSync(path.dirname(path.join(target, file)), { recursive: true });
    fs.copyFileSync(path.join(pkgDir, file), path.join(target, file));
  }
  const trimmed = {
    name: pkg.name,
    version: pkg.version,
    license: pkg.license,
    description: `${files.length} run-time files of ${pkg.name}`,
  };
  fs.writeFileSync(path.join(target, 'package.json'), JSON.stringify(trimmed, null, 2) + '\n');
  packagedManifest.dependencies[name] = pkg.version;
}
fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(packagedManifest, null, 2) + '\n');

const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
// --no-rewrite-relative-links: the repository URL is not a GitHub/GitLab one, and the README's
// relative links point at files packaged beside it.
execFileSync(process.execPath, [vsce, 'package', '--target', target, '--out', vsixPath, '--dependencies', '--no-rewrite-relative-links'], {
  cwd: stage,
  stdio: 'inherit',
});

const entries = listZip(vsixPath);
const files = entries
  .map((e) => e.name)
  .filter((n) => n.startsWith('extension/'))
  .map((n) => n.slice('extension/'.length));
const required = [
  'package.json',
  'dist/extension.js',
  'dist/training.js',
  'dist/webview.js',
  'dist/wasm/tfjs-backend-wasm.wasm',
  'dist/wasm/tfjs-backend-wasm-simd.wasm',
  'media/models/mobilenet_v2_0.35_224_no_top/model.json',
  'media/models/mobilenet_v2_0.35_224_no_top/weights.bin',
  'node_modules/sharp/package.json',
  'node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js',
  'node_modules/@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js',
];
const problems = required.filter((f) => !files.includes(f)).map((f) => `missing ${f}`);
if (!files.some((f) => /^node_modules\/@img\/sharp-linux-x64\/lib\/.*\.node$/.test(f)))
  problems.push("missing sharp's linux-x64 native module");
if (!files.some((f) => /^node_modules\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so/.test(f))) problems.push('missing libvips');
if (
  runtimePackages.includes('onnxruntime-node') &&
  !files.some((f) => /^node_modules\/onnxruntime-node\/bin\/napi-v\d+\/linux\/x64\/onnxruntime_binding\.node$/.test(f))
) {
  problems.push("missing ONNX Runtime's linux-x64 binding");
}
const forbidden = files.filter((f) =>
  /^(src|test|scripts|samples|types|bin)\/|\.map$|(^|\/)\.vscode-test\/|^node_modules\/@tensorflow\/(?!tfjs-backend-wasm\/(package\.json|wasm-out\/tfjs-backend-wasm-threaded-simd(\.worker)?\.js)$)|\.ts$|^node_modules\/onnxruntime-node\/bin\/napi-v\d+\/(darwin|win32|linux\/arm64)\//.test(
    f,
  ),
);
problems.push(...forbidden.map((f) => `should not be packaged: ${f}`));

const size = fs.statSync(vsixPath).size;
const unpacked = entries.reduce((sum, e) => sum + e.size, 0);
const byFolder = new Map();
for (const e of entries) {
  const top = e.name
    .replace(/^extension\//, '')
    .split('/')
    .slice(0, e.name.includes('node_modules/@') ? 3 : 2)
    .join('/');
  byFolder.set(top, (byFolder.get(top) ?? 0) + e.size);
}
const mb = (n) => `${(n / 1024 / 1024).toFixed(2)} MB`;
console.log(
  [...byFolder]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12)
    .map(([k, v]) => `  ${mb(v).padStart(9)}  ${k}`)
    .join('\n'),
);
console.log(
  `VSIX ${path.relative(repoRoot, vsixPath)}: ${mb(size)} (${mb(unpacked)} unpacked), ${files.length} files, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
if (problems.length > 0) {
  console.error(`package: the VSIX is wrong:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}

/** Lists a zip file's entries (name, uncompressed size) from its central directory. */
function listZip(file) {
  const buf = fs.readFileSync(file);
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  const count = buf.readUInt16LE(eocd + 10);
  let offset = buf.readUInt32LE(eocd + 16);
  const result = [];
  for (let i = 0; i < count; i++) {
    const nameLength = buf.readUInt16LE(offset + 28);
    const extraLength = buf.readUInt16LE(offset + 30);
    const commentLength = buf.readUInt16LE(offset + 32);
    result.push({ name: buf.toString('utf8', offset + 46, offset + 46 + nameLength), size: buf.readUInt32LE(offset + 24) });
    offset += 46 + nameLength + extraLength + commentLength;
  }
  return result;
}
