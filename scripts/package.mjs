#!/usr/bin/env node
// `npm run package`: builds the production bundles into a staging folder that holds only what the
// extension needs at run time, packs it as a linux-x64 VSIX with vsce, checks the contents and
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

execFileSync(process.execPath, ['esbuild.mjs', '--production', `--outdir=${path.join(stage, 'dist')}`], { cwd: repoRoot, stdio: 'inherit' });

const runtimePackages = ['sharp'];
const extensionBundle = fs.readFileSync(path.join(stage, 'dist', 'extension.js'), 'utf8');
if (extensionBundle.includes('@vscode-elements/elements')) runtimePackages.push('@vscode-elements/elements');

// The packaged manifest declares only the run-time dependencies (vsce copies exactly their tree).
const packagedManifest = { ...manifest, dependencies: {} };
for (const name of runtimePackages) packagedManifest.dependencies[name] = manifest.dependencies[name];
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

/** Copies a package and, transitively, the dependencies it has installed, into the staging node_modules. */
function copyPackageTree(name, fromDir, seen = new Set()) {
  const pkgDir = resolvePackageDir(name, fromDir);
  if (!pkgDir || seen.has(pkgDir)) return;
  seen.add(pkgDir);
  const relative = path.relative(repoRoot, pkgDir);
  fs.cpSync(pkgDir, path.join(stage, relative), { recursive: true, dereference: true });
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
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

const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
execFileSync(process.execPath, [vsce, 'package', '--target', target, '--out', vsixPath, '--dependencies'], { cwd: stage, stdio: 'inherit' });

const entries = listZip(vsixPath);
const files = entries.map((e) => e.name).filter((n) => n.startsWith('extension/')).map((n) => n.slice('extension/'.length));
const required = [
  'package.json', 'dist/extension.js', 'dist/training.js', 'dist/webview.js',
  'dist/wasm/tfjs-backend-wasm.wasm', 'dist/wasm/tfjs-backend-wasm-simd.wasm',
  'media/models/mobilenet_v2_0.35_224_no_top/model.json', 'media/models/mobilenet_v2_0.35_224_no_top/weights.bin',
  'node_modules/sharp/package.json',
];
const problems = required.filter((f) => !files.includes(f)).map((f) => `missing ${f}`);
if (!files.some((f) => /^node_modules\/@img\/sharp-linux-x64\/lib\/.*\.node$/.test(f))) problems.push('missing sharp\'s linux-x64 native module');
if (!files.some((f) => /^node_modules\/@img\/sharp-libvips-linux-x64\/lib\/libvips-cpp\.so/.test(f))) problems.push('missing libvips');
const forbidden = files.filter((f) => /^(src|test|scripts|samples|types|bin)\/|\.map$|(^|\/)\.vscode-test\/|^node_modules\/@tensorflow\/|\.ts$/.test(f));
problems.push(...forbidden.map((f) => `should not be packaged: ${f}`));

const size = fs.statSync(vsixPath).size;
const unpacked = entries.reduce((sum, e) => sum + e.size, 0);
const byFolder = new Map();
for (const e of entries) {
  const top = e.name.replace(/^extension\//, '').split('/').slice(0, e.name.includes('node_modules/@') ? 3 : 2).join('/');
  byFolder.set(top, (byFolder.get(top) ?? 0) + e.size);
}
const mb = (n) => `${(n / 1024 / 1024).toFixed(2)} MB`;
console.log([...byFolder].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, v]) => `  ${mb(v).padStart(9)}  ${k}`).join('\n'));
console.log(`VSIX ${path.relative(repoRoot, vsixPath)}: ${mb(size)} (${mb(unpacked)} unpacked), ${files.length} files, ${((Date.now() - started) / 1000).toFixed(1)} s`);
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
