// The structure of every platform VSIX: its native parts are present and are executables of the
// right format and architecture (read from their headers), nothing of another platform is inside,
// every module the bundles load is packed (or is optional and guarded), and its size.
//
// The VSIXes are built by `npm run package -- --all --out-dir .vscode-test/vsix --cached`: the
// first run builds all six (about a minute, sharp's foreign parts fetched once from the npm
// registry into .vscode-test/npm-packs), a later run rebuilds only when a file the VSIXes are
// made from changed (a content key per VSIX under .vscode-test/vsix-build/keys), so this file stays fast in repeated runs.
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { isBuiltin } from 'node:module';
import * as path from 'node:path';
import { readZipEntries, type ZipEntry } from '../support/zipEntries';

const repoRoot = path.resolve(__dirname, '../..');
const vsixDir = path.join(repoRoot, '.vscode-test', 'vsix');
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

type Format = 'elf' | 'mach-o' | 'pe';
type Arch = 'x64' | 'arm64';

interface Expected {
  format: Format;
  arch: Arch;
  /** sharp's platform name in @img/sharp-<name>. */
  sharp: string;
  /** onnxruntime-node's binary folder, or null where the VSIX must not carry it. */
  onnx: string | null;
}

const TARGETS: Record<string, Expected> = {
  'linux-x64': { format: 'elf', arch: 'x64', sharp: 'linux-x64', onnx: 'linux/x64' },
  'linux-arm64': { format: 'elf', arch: 'arm64', sharp: 'linux-arm64', onnx: 'linux/arm64' },
  'darwin-x64': { format: 'mach-o', arch: 'x64', sharp: 'darwin-x64', onnx: null },
  'darwin-arm64': { format: 'mach-o', arch: 'arm64', sharp: 'darwin-arm64', onnx: 'darwin/arm64' },
  'win32-x64': { format: 'pe', arch: 'x64', sharp: 'win32-x64', onnx: 'win32/x64' },
  'alpine-x64': { format: 'elf', arch: 'x64', sharp: 'linuxmusl-x64', onnx: null },
};

// Modules a bundle may load without the VSIX packing them: the host provides `vscode`; node-fetch
// (inside tfjs) tries `encoding` in a try/catch; onnxruntime-node is optional and its import is
// guarded (features fall back to tfjs WebAssembly, and diagnostics say why).
const PROVIDED_OR_GUARDED = new Set(['vscode', 'encoding', 'onnxruntime-node']);

const NATIVE_FILE = /\.(node|dylib|dll|exe)$|\.so(\.\d+)*$/;

/** The format and architecture an executable's header declares (null when it is none of ELF, Mach-O, PE). */
function executableKind(bytes: Buffer): { format: Format; arch: Arch | string } | null {
  if (bytes.length >= 20 && bytes.readUInt32BE(0) === 0x7f454c46) {
    const machine = bytes[5] === 2 ? bytes.readUInt16BE(18) : bytes.readUInt16LE(18);
    return { format: 'elf', arch: machine === 0x3e ? 'x64' : machine === 0xb7 ? 'arm64' : `e_machine 0x${machine.toString(16)}` };
  }
  const machO = (cputype: number) =>
    cputype === 0x01000007 ? 'x64' : cputype === 0x0100000c ? 'arm64' : `cputype 0x${cputype.toString(16)}`;
  if (bytes.length >= 8 && bytes.readUInt32LE(0) === 0xfeedfacf) return { format: 'mach-o', arch: machO(bytes.readUInt32LE(4)) };
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0xcafebabe) {
    // A universal binary: every slice must be the target's architecture.
    const slices = new Set<string>();
    for (let i = 0; i < bytes.readUInt32BE(4); i++) slices.add(machO(bytes.readUInt32BE(8 + 20 * i)));
    return { format: 'mach-o', arch: [...slices].join('+') };
  }
  if (bytes.length >= 0x40 && bytes.toString('latin1', 0, 2) === 'MZ') {
    const pe = bytes.readUInt32LE(0x3c);
    if (bytes.toString('latin1', pe, pe + 4) === 'PE\0\0') {
      const machine = bytes.readUInt16LE(pe + 4);
      return { format: 'pe', arch: machine === 0x8664 ? 'x64' : machine === 0xaa64 ? 'arm64' : `machine 0x${machine.toString(16)}` };
    }
  }
  return null;
}

/** Bare module names a bundle passes to require() or import() as string literals. */
function loadedModules(bundle: string): Set<string> {
  const names = new Set<string>();
  for (const m of bundle.matchAll(/\b(?:require|import)\(\s*["']([^"'./][^"']*)["']\s*\)/g)) {
    const spec = m[1];
    names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
  return names;
}

const vsixPath = (target: string) => path.join(vsixDir, `image-trainer-${target}-${version}.vsix`);

before(() => {
  execFileSync(process.execPath, ['scripts/package.mjs', '--all', '--out-dir', vsixDir, '--cached'], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 15 * 60_000,
  });
});

for (const [target, expected] of Object.entries(TARGETS)) {
  describe(`the ${target} VSIX`, () => {
    let entries: Map<string, ZipEntry>;
    before(() => {
      entries = new Map(
        readZipEntries(vsixPath(target))
          .filter((e) => e.name.startsWith('extension/'))
          .map((e) => [e.name.slice('extension/'.length), e]),
      );
    });

    test(`declares ${target} as its target platform`, () => {
      const manifest = readZipEntries(vsixPath(target)).find((e) => e.name === 'extension.vsixmanifest');
      assert.match(manifest?.read().toString('utf8') ?? '', new RegExp(`TargetPlatform="${target}"`));
    });

    test(`holds sharp's ${expected.sharp} module and every native file is ${expected.format} ${expected.arch}`, () => {
      const natives = [...entries.keys()].filter((f) => NATIVE_FILE.test(f));
      assert.ok(
        natives.some((f) => f.startsWith(`node_modules/@img/sharp-${expected.sharp}/lib/`) && f.endsWith('.node')),
        `no sharp ${expected.sharp} .node file in ${natives.join(', ')}`,
      );
      const wrong = natives
        .map((f) => ({ f, kind: executableKind(entries.get(f)!.read()) }))
        .filter(({ kind }) => kind?.format !== expected.format || kind.arch !== expected.arch)
        .map(({ f, kind }) => `${f}: ${kind ? `${kind.format} ${kind.arch}` : 'not an executable'}`);
      assert.deepEqual(wrong, []);
    });

    test(
      expected.onnx ? `holds only onnxruntime-node's ${expected.onnx} binaries` : 'leaves out onnxruntime-node, which has no binary for it',
      () => {
        const onnxFiles = [...entries.keys()].filter((f) => f.startsWith('node_modules/onnxruntime-node/bin/'));
        if (expected.onnx === null) {
          assert.ok(!entries.has('node_modules/onnxruntime-node/package.json'));
          return;
        }
        assert.ok(
          onnxFiles.some((f) =>
            new RegExp(`^node_modules/onnxruntime-node/bin/napi-v\\d+/${expected.onnx}/onnxruntime_binding\\.node$`).test(f),
          ),
        );
        assert.deepEqual(
          onnxFiles.filter((f) => !new RegExp(`^node_modules/onnxruntime-node/bin/napi-v\\d+/${expected.onnx}/`).test(f)),
          [],
        );
      },
    );

    test("holds nothing of another platform's sharp", () => {
      const foreign = [...entries.keys()].filter(
        (f) =>
          f.startsWith('node_modules/@img/sharp-') &&
          !f.startsWith(`node_modules/@img/sharp-${expected.sharp}/`) &&
          !f.startsWith(`node_modules/@img/sharp-libvips-${expected.sharp}/`),
      );
      assert.deepEqual(foreign, []);
    });

    test('packs every module its bundles load, and every dependency of a packed package', () => {
      const packed = (name: string) => entries.has(`node_modules/${name}/package.json`);
      const missing: string[] = [];
      for (const bundle of ['dist/extension.js', 'dist/training.js']) {
        const text = entries.get(bundle)!.read().toString('utf8');
        for (const name of loadedModules(text)) {
          if (!isBuiltin(name) && !PROVIDED_OR_GUARDED.has(name) && !packed(name)) missing.push(`${bundle} loads ${name}`);
        }
      }
      for (const [file, entry] of entries) {
        const m = /^(node_modules\/(?:@[^/]+\/)?[^/]+)\/package\.json$/.exec(file);
        if (!m || file.includes('/node_modules/', 'node_modules/'.length)) continue;
        const pkg = JSON.parse(entry.read().toString('utf8')) as { name: string; dependencies?: Record<string, string> };
        for (const dep of Object.keys(pkg.dependencies ?? {})) if (!packed(dep)) missing.push(`${pkg.name} needs ${dep}`);
      }
      assert.deepEqual(missing, []);
    });

    test('carries the sample dataset and reports its size', (t) => {
      assert.ok([...entries.keys()].some((f) => /^samples\/leaves\/[^/]+\/[^/]+\.(jpe?g|png)$/i.test(f)));
      const size = fs.statSync(vsixPath(target)).size;
      const unpacked = [...entries.values()].reduce((sum, e) => sum + e.size, 0);
      t.diagnostic(
        `${target}: ${(size / 1024 / 1024).toFixed(1)} MB (${(unpacked / 1024 / 1024).toFixed(1)} MB unpacked, ${entries.size} files)`,
      );
      // The Marketplace refuses packages over 200 MB; a VSIX this size means a platform's binaries leaked in.
      assert.ok(size < 60 * 1024 * 1024, `${target} VSIX is ${size} bytes`);
    });
  });
}
