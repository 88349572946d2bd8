#!/usr/bin/env node
// `npm run package [-- --target <t> | --all] [--out-dir DIR] [--cached] [--without-onnxruntime]`:
// builds the production bundles once, then for each target a staging folder that holds only what
// the extension needs at run time on that platform, packs it with `vsce package --target`, checks
// the contents and prints size and file count. The development dist/ is left alone.
//
// Without --target or --all it packs the platform it runs on as `image-trainer-<version>.vsix`
// (what the end-to-end tests install); with them, `image-trainer-<target>-<version>.vsix` each.
// --cached skips a target whose VSIX was built from the same inputs (a content key kept under
// .vscode-test/vsix-build/keys).
//
// Run-time contents: package.json, README/CHANGELOG/LICENSE, dist/ (minified bundles with tfjs
// inside training.js, and dist/wasm/*.wasm), media/ (the embedded base model, the walkthrough),
// samples/leaves (the walkthrough's sample dataset), and node_modules for the packages the bundles
// load at run time: sharp with the target's native parts (fetched from the npm registry when the
// target is not this machine), onnxruntime-node with only the target's binaries, and
// @vscode-elements/elements only if the extension host serves it from node_modules.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const workDir = path.join(repoRoot, '.vscode-test', 'vsix-build');
const packCache = path.join(repoRoot, '.vscode-test', 'npm-packs');

// The VS Code Marketplace's platform targets this extension ships. `sharp` names sharp's
// per-platform packages (@img/sharp-<sharp>, @img/sharp-libvips-<sharp> where `libvips`);
// `onnx` names onnxruntime-node's binary folder (bin/napi-v*/<onnx>/), null where onnxruntime-node
// 1.30 has no binary that loads there (no darwin-x64 build; its linux builds need glibc): those
// VSIXes leave it out and features run on tfjs WebAssembly, as diagnostics explain.
const TARGETS = {
  'linux-x64': { sharp: 'linux-x64', libvips: true, onnx: 'linux/x64' },
  'linux-arm64': { sharp: 'linux-arm64', libvips: true, onnx: 'linux/arm64' },
  'darwin-x64': { sharp: 'darwin-x64', libvips: true, onnx: null },
  'darwin-arm64': { sharp: 'darwin-arm64', libvips: true, onnx: 'darwin/arm64' },
  'win32-x64': { sharp: 'win32-x64', libvips: false, onnx: 'win32/x64' },
  'alpine-x64': { sharp: 'linuxmusl-x64', libvips: true, onnx: null },
};

// Dependencies a package needs only for its install script (ONNX Runtime's binary download).
const installOnlyDependencies = { 'onnxruntime-node': ['adm-zip', 'global-agent'] };

// Files the bundles load from a package they otherwise bundle: the threaded WebAssembly loader
// (src/training/backend/wasmThreads.ts) requires the Emscripten factory and pthread worker script of
// the threaded build from @tensorflow/tfjs-backend-wasm. Only these files are packaged, under a
// manifest without dependencies.
const packageFilesAtRunTime = {
  '@tensorflow/tfjs-backend-wasm': ['wasm-out/tfjs-backend-wasm-threaded-simd.js', 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js'],
};

// Inputs of a VSIX besides the target: a VSIX whose key matches these files' hash is up to date.
const keyInputs = [
  'scripts/package.mjs',
  'esbuild.mjs',
  'package.json',
  'package-lock.json',
  '.vscodeignore',
  'README.md',
  'CHANGELOG.md',
  'LICENSE',
  'src',
  'media',
  'samples',
  'docs',
];

const mb = (n) => `${(n / 1024 / 1024).toFixed(2)} MB`;

main();

/** Parses the arguments, builds the bundles once and packs every requested target. */
function main() {
  const args = process.argv.slice(2);
  const valueOf = (flag) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const manifest = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
  const requested = valueOf('--target');
  const all = args.includes('--all');
  const targets = all ? Object.keys(TARGETS) : [requested ?? hostTarget()];
  for (const t of targets) {
    if (!TARGETS[t]) fail(`unknown target "${t}"; known: ${Object.keys(TARGETS).join(', ')}`);
  }
  const outDir = path.resolve(repoRoot, valueOf('--out-dir') ?? '.');
  const withOnnxRuntime = !args.includes('--without-onnxruntime');
  const vsixPathOf = (t) =>
    !all && !requested
      ? path.resolve(repoRoot, process.env.VSIX_OUT ?? `${manifest.name}-${manifest.version}.vsix`)
      : path.join(outDir, `${manifest.name}-${t}-${manifest.version}.vsix`);

  const inputsKey = hashInputs();
  const keyOf = (t) => `${inputsKey} ${t} ${withOnnxRuntime ? 'onnx' : 'no-onnx'}`;
  const pending = targets.filter((t) => !(args.includes('--cached') && isUpToDate(vsixPathOf(t), keyOf(t))));
  for (const t of targets.filter((x) => !pending.includes(x))) console.log(`VSIX ${path.relative(repoRoot, vsixPathOf(t))}: up to date`);
  if (pending.length === 0) return;

  const distDir = path.join(workDir, 'dist');
  fs.rmSync(distDir, { recursive: true, force: true });
  execFileSync(process.execPath, ['esbuild.mjs', '--production', `--outdir=${distDir}`], { cwd: repoRoot, stdio: 'inherit' });

  const problems = [];
  for (const t of pending) {
    const started = Date.now();
    const vsixPath = vsixPathOf(t);
    fs.mkdirSync(path.dirname(vsixPath), { recursive: true });
    const runtimePackages = stageTarget(t, manifest, distDir, withOnnxRuntime);
    packStage(t, vsixPath);
    const found = checkVsix(t, vsixPath, runtimePackages).map((p) => `${t}: ${p}`);
    problems.push(...found);
    if (found.length === 0) {
      fs.mkdirSync(path.dirname(keyFileOf(vsixPath)), { recursive: true });
      fs.writeFileSync(keyFileOf(vsixPath), keyOf(t));
    } else fs.rmSync(keyFileOf(vsixPath), { force: true });
    console.log(`  (${t} in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }
  if (problems.length > 0) fail(`the VSIX is wrong:\n  ${problems.join('\n  ')}`);
}

/** The Marketplace target of the machine this runs on. */
function hostTarget() {
  const musl = process.platform === 'linux' && !process.report?.getReport().header.glibcVersionRuntime;
  return musl ? `alpine-${process.arch}` : `${process.platform}-${process.arch}`;
}

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}

/** Hash of every file the VSIXes are made from. */
function hashInputs() {
  const hash = createHash('sha256');
  const visit = (rel) => {
    const abs = path.join(repoRoot, rel);
    if (!fs.existsSync(abs)) return;
    if (fs.statSync(abs).isDirectory()) {
      for (const name of fs.readdirSync(abs).sort()) visit(path.join(rel, name));
    } else {
      hash.update(`${rel}\0`).update(fs.readFileSync(abs));
    }
  };
  keyInputs.forEach(visit);
  return hash.digest('hex');
}

/** Where the content key of a VSIX is kept (in the git-ignored build folder, not beside the VSIX). */
function keyFileOf(vsixPath) {
  return path.join(workDir, 'keys', `${createHash('sha256').update(vsixPath).digest('hex').slice(0, 16)}.key`);
}

function isUpToDate(vsixPath, key) {
  return fs.existsSync(vsixPath) && fs.existsSync(keyFileOf(vsixPath)) && fs.readFileSync(keyFileOf(vsixPath), 'utf8') === key;
}

/** Fills the target's staging folder; returns the run-time packages it holds. */
function stageTarget(target, manifest, distDir, withOnnxRuntime) {
  const stage = path.join(workDir, 'stage', target);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  fs.cpSync(distDir, path.join(stage, 'dist'), { recursive: true });

  // What the bundles load from node_modules at run time: sharp (native, always external), the
  // optional ONNX Runtime when the training bundle imports it and the target has binaries for it,
  // @vscode-elements/elements when the extension serves it to the webview from node_modules.
  const runtimePackages = ['sharp'];
  const bundleText = (name) => fs.readFileSync(path.join(distDir, name), 'utf8');
  // ONNX Runtime (its linux-x64 part: 17 MB of the VSIX) extracts features 1.4-2x faster than tfjs
  // WebAssembly; `--without-onnxruntime` packs a small VSIX that falls back to WebAssembly.
  if (withOnnxRuntime && TARGETS[target].onnx && /["']onnxruntime-node["']/.test(bundleText('training.js')))
    runtimePackages.push('onnxruntime-node');
  if (bundleText('extension.js').includes('@vscode-elements/elements')) runtimePackages.push('@vscode-elements/elements');

  // The packaged manifest declares only the run-time dependencies (vsce copies exactly their tree).
  const packagedManifest = { ...manifest, dependencies: {} };
  for (const name of runtimePackages)
    packagedManifest.dependencies[name] = manifest.dependencies?.[name] ?? manifest.optionalDependencies?.[name];
  for (const field of ['optionalDependencies', 'devDependencies', 'scripts', 'bin', 'files']) delete packagedManifest[field];

  for (const file of ['LICENSE', 'README.md', 'CHANGELOG.md', '.vscodeignore']) {
    if (fs.existsSync(path.join(repoRoot, file))) fs.copyFileSync(path.join(repoRoot, file), path.join(stage, file));
  }
  fs.cpSync(path.join(repoRoot, 'media'), path.join(stage, 'media'), { recursive: true });
  // The walkthrough's *Try the sample* copies this dataset for the user (700 KB).
  fs.cpSync(path.join(repoRoot, 'samples', 'leaves'), path.join(stage, 'samples', 'leaves'), { recursive: true });
  fs.copyFileSync(path.join(repoRoot, 'samples', 'PROVENANCE.md'), path.join(stage, 'samples', 'PROVENANCE.md'));
  // The README links to docs/*.md; packaged, the links work in the Extensions view.
  if (fs.existsSync(path.join(repoRoot, 'docs'))) fs.cpSync(path.join(repoRoot, 'docs'), path.join(stage, 'docs'), { recursive: true });

  const seen = new Set();
  for (const name of runtimePackages) copyPackageTree(stage, target, name, repoRoot, seen);
  addSharpNativeParts(stage, target);

  for (const [name, files] of Object.entries(packageFilesAtRunTime)) {
    const pkgDir = resolvePackageDir(name, repoRoot);
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
    const dest = path.join(stage, 'node_modules', name);
    for (const file of files) {
      fs.mkdirSync(path.dirname(path.join(dest, file)), { recursive: true });
      fs.copyFileSync(path.join(pkgDir, file), path.join(dest, file));
    }
    const trimmed = {
      name: pkg.name,
      version: pkg.version,
      license: pkg.license,
      description: `${files.length} run-time files of ${pkg.name}`,
    };
    fs.writeFileSync(path.join(dest, 'package.json'), JSON.stringify(trimmed, null, 2) + '\n');
    packagedManifest.dependencies[name] = pkg.version;
  }
  fs.writeFileSync(path.join(stage, 'package.json'), JSON.stringify(packagedManifest, null, 2) + '\n');
  return runtimePackages;
}

/** Whether a package is one of sharp's per-platform native packages (any platform). */
function isSharpPlatformPackage(name) {
  return /^@img\/sharp-(?!.*colour)/.test(name);
}

/**
 * Copies a package and, transitively, the dependencies it has installed, into the staging
 * node_modules: sharp's per-platform packages are left to addSharpNativeParts, and of
 * onnxruntime-node's binaries only the target's folder is copied.
 */
function copyPackageTree(stage, target, name, fromDir, seen) {
  if (isSharpPlatformPackage(name)) return;
  const pkgDir = resolvePackageDir(name, fromDir);
  if (!pkgDir || seen.has(pkgDir)) return;
  seen.add(pkgDir);
  const relative = path.relative(repoRoot, pkgDir);
  const onnxBin = name === 'onnxruntime-node' ? path.join(pkgDir, 'bin') : undefined;
  const keepOnnx = TARGETS[target].onnx?.split('/');
  fs.cpSync(pkgDir, path.join(stage, relative), {
    recursive: true,
    dereference: true,
    // bin/napi-vN/<os>/<arch>: keep the target's os folder and, inside it, the target's arch.
    filter: (src) => {
      if (!onnxBin || !src.startsWith(onnxBin + path.sep)) return true;
      const [, os, arch] = path.relative(onnxBin, src).split(path.sep);
      return (os === undefined || os === keepOnnx[0]) && (arch === undefined || arch === keepOnnx[1]);
    },
  });
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  const installOnly = installOnlyDependencies[pkg.name] ?? [];
  if (installOnly.length > 0) {
    // The packaged copy never runs its install script, so it declares only its run-time dependencies.
    for (const dep of installOnly) delete pkg.dependencies[dep];
    delete pkg.scripts;
    fs.writeFileSync(path.join(stage, relative, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
  }
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) copyPackageTree(stage, target, dep, pkgDir, seen);
}

/**
 * Puts the target's sharp native packages (the ones sharp's optionalDependencies pin) into the
 * staging node_modules: from this machine's node_modules when it has that exact version, else
 * fetched from the npm registry with `npm pack` (cached under .vscode-test/npm-packs).
 */
function addSharpNativeParts(stage, target) {
  const sharpDir = resolvePackageDir('sharp', repoRoot);
  const pins = JSON.parse(fs.readFileSync(path.join(sharpDir, 'package.json'), 'utf8')).optionalDependencies;
  const { sharp, libvips } = TARGETS[target];
  const names = [`@img/sharp-${sharp}`, ...(libvips ? [`@img/sharp-libvips-${sharp}`] : [])];
  for (const name of names) {
    const version = pins[name];
    if (!version) fail(`sharp ${sharpDir} pins no ${name}`);
    const dest = path.join(stage, 'node_modules', name);
    const local = resolvePackageDir(name, sharpDir);
    if (local && JSON.parse(fs.readFileSync(path.join(local, 'package.json'), 'utf8')).version === version) {
      fs.cpSync(local, dest, { recursive: true, dereference: true });
      continue;
    }
    const tarball = fetchTarball(name, version);
    fs.mkdirSync(dest, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', dest, '--strip-components=1'], { stdio: 'inherit' });
  }
}

/** The path of `name@version`'s tarball, fetched from the npm registry once. */
function fetchTarball(name, version) {
  const file = path.join(packCache, `${name.replace('@', '').replace('/', '-')}-${version}.tgz`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(packCache, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = execFileSync(npm, ['pack', `${name}@${version}`, '--json', '--pack-destination', packCache], {
    cwd: packCache,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  });
  const packed = path.join(packCache, JSON.parse(out)[0].filename);
  if (packed !== file) fs.renameSync(packed, file);
  return file;
}

/** Finds an installed package the way Node does, walking up node_modules folders (null if absent). */
function resolvePackageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === path.dirname(dir)) return null;
  }
}

/** Runs vsce in the target's staging folder. */
function packStage(target, vsixPath) {
  const vsce = path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
  // --no-rewrite-relative-links: the README's relative links and images point at files packaged
  // beside it; --allow-missing-repository: the project has no public repository yet.
  execFileSync(
    process.execPath,
    [vsce, 'package', '--target', target, '--out', vsixPath, '--dependencies', '--no-rewrite-relative-links', '--allow-missing-repository'],
    { cwd: path.join(workDir, 'stage', target), stdio: 'inherit' },
  );
}

/** Checks a VSIX's file list against what the target needs, prints its size; returns the problems. */
function checkVsix(target, vsixPath, runtimePackages) {
  const entries = listZip(vsixPath);
  const files = entries
    .map((e) => e.name)
    .filter((n) => n.startsWith('extension/'))
    .map((n) => n.slice('extension/'.length));
  const { sharp, libvips, onnx } = TARGETS[target];
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
  if (!files.some((f) => f.startsWith('samples/leaves/'))) problems.push('missing the sample dataset samples/leaves');
  if (!files.some((f) => f.startsWith(`node_modules/@img/sharp-${sharp}/lib/`) && f.endsWith('.node')))
    problems.push(`missing sharp's ${sharp} native module`);
  if (libvips && !files.some((f) => f.startsWith(`node_modules/@img/sharp-libvips-${sharp}/lib/`))) problems.push('missing libvips');
  if (runtimePackages.includes('onnxruntime-node')) {
    const binding = new RegExp(`^node_modules/onnxruntime-node/bin/napi-v\\d+/${onnx}/onnxruntime_binding\\.node$`);
    if (!files.some((f) => binding.test(f))) problems.push(`missing ONNX Runtime's ${onnx} binding`);
  }
  const otherPlatform = (f) =>
    (/^node_modules\/@img\/sharp-/.test(f) &&
      !f.startsWith(`node_modules/@img/sharp-${sharp}/`) &&
      !f.startsWith(`node_modules/@img/sharp-libvips-${sharp}/`)) ||
    (/^node_modules\/onnxruntime-node\/bin\/napi-v\d+\/[^/]+\//.test(f) &&
      !new RegExp(`^node_modules/onnxruntime-node/bin/napi-v\\d+/${onnx}/`).test(f));
  const forbidden = files.filter(
    (f) =>
      otherPlatform(f) ||
      /^(src|test|scripts|types|bin)\/|\.map$|(^|\/)\.vscode-test\/|\.ts$|^node_modules\/@tensorflow\/(?!tfjs-backend-wasm\/(package\.json|wasm-out\/tfjs-backend-wasm-threaded-simd(\.worker)?\.js)$)/.test(
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
  console.log(
    [...byFolder]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, v]) => `  ${mb(v).padStart(9)}  ${k}`)
      .join('\n'),
  );
  console.log(`VSIX ${path.relative(repoRoot, vsixPath)} (${target}): ${mb(size)} (${mb(unpacked)} unpacked), ${files.length} files`);
  return problems;
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
