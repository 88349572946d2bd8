import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diagnoseGpu, explainNativeLoadError } from '../../../../src/training/backend/gpuDiagnostics';
import type { GpuDiagnosisEnv } from '../../../../src/training/backend/gpuDiagnostics';

// The probe looks at the file system and at PATH, so folders of empty `.so` files and small
// nvidia-smi scripts are its real input here.
const CUDA11 = [
  'libcudart.so.11.0',
  'libcublas.so.11',
  'libcublasLt.so.11',
  'libcufft.so.10',
  'libcurand.so.10',
  'libcusolver.so.11',
  'libcusparse.so.11',
];
const ALL = ['libcuda.so.1', ...CUDA11, 'libcudnn.so.8'];

let tmpRoot: string;
let emptyBin: string;
let smiBin: string;
let brokenSmiBin: string;

function libDir(name: string, files: string[]): string {
  const dir = path.join(tmpRoot, name);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) fs.writeFileSync(path.join(dir, f), '');
  return dir;
}

function script(dir: string, body: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'nvidia-smi');
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return dir;
}

/** An environment that sees only what the test puts there. */
function isolated(over: GpuDiagnosisEnv): GpuDiagnosisEnv {
  return {
    ldLibraryPath: '',
    searchDirs: [],
    path: emptyBin,
    systemLibraries: false,
    procDriverVersionPath: path.join(tmpRoot, 'no-proc-version'),
    ...over,
  };
}

before(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'gpu-diagnostics-'));
  emptyBin = fs.mkdtempSync(path.join(tmpRoot, 'bin-'));
  smiBin = script(path.join(tmpRoot, 'smi'), 'echo "NVIDIA H200, 550.54.15, 143771 MiB"');
  brokenSmiBin = script(
    path.join(tmpRoot, 'smi-broken'),
    `echo "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9`,
  );
});

after(() => {
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

test('with no driver and no CUDA libraries, the diagnosis names exactly what is missing', async () => {
  const d = await diagnoseGpu(isolated({}));
  assert.equal(d.ready, false);
  assert.equal(d.driver.found, false);
  assert.match(d.driver.detail, /nvidia-smi is not on PATH/);
  assert.match(d.driver.detail, /no-proc-version does not exist/);
  assert.deepEqual(d.missing, ALL);
  assert.equal(d.summary, 'GPU backend unavailable: no NVIDIA driver found; libcudart.so.11.0 and libcudnn.so.8 not found.');
  assert.equal(d.problems.length, 3);
  assert.match(
    d.problems[0],
    /^No NVIDIA driver found \(nvidia-smi is not on PATH;.*\): install the NVIDIA driver \(≥ 450\.80\.02 for CUDA 11\)/,
  );
  assert.match(d.problems[1], /^libcudart\.so\.11\.0 \(the CUDA 11 runtime\) was not found on LD_LIBRARY_PATH/);
  assert.match(d.problems[2], /^libcudnn\.so\.8 \(cuDNN 8\) was not found/);
});

test('only CUDA 12 and cuDNN 9 installed is explained as a version mismatch', async () => {
  const cuda12 = libDir('cuda-12/lib64', [
    'libcudart.so.12',
    'libcudart.so.12.2.140',
    'libcublas.so.12',
    'libcudnn.so.9',
    'libcudart.so',
    'libcuda.so.1',
  ]);
  const d = await diagnoseGpu(isolated({ ldLibraryPath: cuda12, path: smiBin }));
  assert.equal(d.ready, false);
  assert.equal(d.driver.version, '550.54.15');
  assert.deepEqual(d.missing, [...CUDA11, 'libcudnn.so.8']);
  const cudart = d.libraries.find((l) => l.soname === 'libcudart.so.11.0')!;
  assert.deepEqual(cudart.otherVersions, [path.join(cuda12, 'libcudart.so.12'), path.join(cuda12, 'libcudart.so.12.2.140')]);
  assert.equal(
    d.problems[0],
    `tfjs-node-gpu 4.x is built for CUDA 11.x/cuDNN 8; found CUDA 12 (libcudart.so.12, libcudart.so.12.2.140 in ${cuda12}) but not libcudart.so.11.0: install CUDA 11.8 + cuDNN 8 beside it and add their lib64 folder to LD_LIBRARY_PATH, or use the CPU backends (native TensorFlow CPU or WebAssembly).`,
  );
  assert.match(d.problems[1], /^tfjs-node-gpu 4\.x needs cuDNN 8 \(libcudnn\.so\.8\); found only libcudnn\.so\.9 in /);
  assert.match(
    d.summary,
    /libcudart\.so\.11\.0 and libcudnn\.so\.8 not found \(found libcudart\.so\.12, libcudnn\.so\.9 instead: wrong CUDA\/cuDNN version\)/,
  );
});

test('a driver and every CUDA 11 / cuDNN 8 library on LD_LIBRARY_PATH is ready', async () => {
  const dir = libDir('cuda-11.8/lib64', ALL);
  const d = await diagnoseGpu(isolated({ ldLibraryPath: dir, path: smiBin }));
  assert.deepEqual(d.problems, []);
  assert.equal(d.ready, true);
  assert.deepEqual(d.driver.gpus, ['NVIDIA H200 (143771 MiB)']);
  assert.equal(d.driver.source, 'nvidia-smi');
  assert.equal(
    d.summary,
    'GPU pieces for tfjs-node-gpu 4.x are in place: NVIDIA driver 550.54.15 (NVIDIA H200 (143771 MiB)), CUDA 11 runtime and cuDNN 8.',
  );
  assert.equal(d.libraries.find((l) => l.soname === 'libcudnn.so.8')?.loadable, path.join(dir, 'libcudnn.so.8'));
});

test('CUDA 11 installed outside the loader path is found and the fix names the folder', async () => {
  const driverDir = libDir('driver', ['libcuda.so.1']);
  const hidden = libDir('opt-cuda-11.8/lib64', [...CUDA11, 'libcudnn.so.8']);
  const d = await diagnoseGpu(isolated({ ldLibraryPath: driverDir, searchDirs: [hidden], path: smiBin }));
  assert.equal(d.ready, false);
  assert.deepEqual(d.libraries.find((l) => l.soname === 'libcudart.so.11.0')?.elsewhere, [path.join(hidden, 'libcudart.so.11.0')]);
  assert.equal(
    d.problems[0],
    `libcudart.so.11.0 is in ${hidden} but not on the loader path: add that folder to LD_LIBRARY_PATH before starting VS Code (or register it with ldconfig).`,
  );
  assert.equal(d.problems[1], `libcudnn.so.8 is in ${hidden} but not on the loader path: add that folder to LD_LIBRARY_PATH.`);
});

test('the CUDA 11 runtime without the math libraries names the ones that are missing', async () => {
  const dir = libDir('partial-cuda', ['libcuda.so.1', 'libcudart.so.11.0', 'libcublas.so.11', 'libcudnn.so.8']);
  const d = await diagnoseGpu(isolated({ ldLibraryPath: dir, path: smiBin }));
  assert.equal(d.ready, false);
  assert.deepEqual(d.missing, ['libcublasLt.so.11', 'libcufft.so.10', 'libcurand.so.10', 'libcusolver.so.11', 'libcusparse.so.11']);
  assert.match(
    d.problems[0],
    /^CUDA 11 libraries missing from the loader path: libcublasLt\.so\.11, libcufft\.so\.10, libcurand\.so\.10, libcusolver\.so\.11, libcusparse\.so\.11; they come with the full CUDA 11 toolkit/,
  );
  assert.equal(
    d.summary,
    'GPU backend unavailable: libcublasLt.so.11, libcufft.so.10, libcurand.so.10, libcusolver.so.11 and libcusparse.so.11 not found.',
  );
});

test('the kernel module version is read when nvidia-smi is absent, and a driver too old for CUDA 11 is named', async () => {
  const dir = libDir('old-driver', ALL);
  const proc = path.join(tmpRoot, 'proc-version');
  fs.writeFileSync(
    proc,
    'NVRM version: NVIDIA UNIX x86_64 Kernel Module  418.226.00  Wed Jan 12 10:53:23 UTC 2022\nGCC version:  gcc version 7.5.0\n',
  );
  const d = await diagnoseGpu(isolated({ ldLibraryPath: dir, procDriverVersionPath: proc }));
  assert.equal(d.driver.found, true);
  assert.equal(d.driver.source, 'proc');
  assert.equal(d.driver.version, '418.226.00');
  assert.equal(d.ready, false);
  assert.deepEqual(d.problems, [
    'NVIDIA driver 418.226.00 is older than CUDA 11 needs (≥ 450.80.02): update the driver, or use the CPU backends (native TensorFlow CPU or WebAssembly).',
  ]);
});

test('an nvidia-smi that cannot reach the driver is quoted', async () => {
  const d = await diagnoseGpu(isolated({ path: brokenSmiBin }));
  assert.equal(d.driver.found, false);
  assert.match(d.driver.detail, /^nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver\./);
  assert.match(d.problems[0], /^No NVIDIA driver found \(nvidia-smi failed: NVIDIA-SMI has failed/);
});

test('on this machine, with its real PATH and library cache, every missing piece comes with an explanation', async () => {
  // How long this takes is a speed target of `npm run bench`, not a test.
  const d = await diagnoseGpu();
  assert.ok(d.summary.length > 0);
  assert.equal(d.ready, d.driver.found && d.missing.length === 0 && d.problems.length === 0);
  if (!d.ready) assert.ok(d.problems.length > 0, d.summary);
  for (const soname of d.missing) assert.ok(d.problems.some((p) => p.includes(soname)) || !d.driver.found, soname);
});

test('native load errors become one actionable sentence', () => {
  const cases: [string, RegExp][] = [
    [
      'Error: libcudart.so.11.0: cannot open shared object file: No such file or directory',
      /^The CUDA 11 runtime \(libcudart\.so\.11\.0\) was not found: tfjs-node-gpu 4\.x is built for CUDA 11\.x and cuDNN 8 \(CUDA 12 does not work\)/,
    ],
    [
      "2024-05-01 W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file",
      /^cuDNN 8 \(libcudnn\.so\.8\) was not found: tfjs-node-gpu 4\.x needs cuDNN 8 for CUDA 11 \(cuDNN 9 does not work\)/,
    ],
    [
      'Error: libcublasLt.so.11: cannot open shared object file: No such file or directory',
      /^The CUDA 11 library libcublasLt\.so\.11 was not found/,
    ],
    [
      "Error: /lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.29' not found (required by /home/u/.image-trainer/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/../../deps/lib/libtensorflow.so.2)",
      /^This system's C library is too old for the native TensorFlow binary \(it needs GLIBC_2\.29\)/,
    ],
    [
      "Error: Cannot find module '/home/u/.image-trainer/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node'\nRequire stack:\n- /home/u/.image-trainer/node_modules/@tensorflow/tfjs-node-gpu/dist/binding.js",
      /^The native TensorFlow module is installed without its binary \(tfjs_binding\.node \/ libtensorflow\): its install script could not download libtensorflow/,
    ],
    [
      'Error: libtensorflow.so.2: cannot open shared object file: No such file or directory',
      /could not download libtensorflow from storage\.googleapis\.com/,
    ],
    [
      "Error: Cannot find module '@tensorflow/tfjs-node-gpu'\nRequire stack:\n- /x/dist/training.js",
      /^@tensorflow\/tfjs-node-gpu is not installed: run "Image Trainer: Install GPU Backend"/,
    ],
    [
      'Error: /x/tfjs_binding.node: invalid ELF header',
      /^The native TensorFlow module was built for another operating system or processor/,
    ],
    [
      'The module was compiled against a different Node.js version using NODE_MODULE_VERSION 93. This version of Node.js requires NODE_MODULE_VERSION 115.',
      /^The native TensorFlow module was built for another Node\.js version/,
    ],
    [
      'E tensorflow/stream_executor/cuda/cuda_driver.cc:271] failed call to cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable device is detected',
      /^CUDA found no usable GPU/,
    ],
    ['Error: libfoo.so.3: cannot open shared object file', /^A library the native TensorFlow module needs is missing: libfoo\.so\.3\./],
    ['Segmentation fault somewhere\nmore', /^The native TensorFlow module failed to load: Segmentation fault somewhere$/],
  ];
  for (const [message, expected] of cases) assert.match(explainNativeLoadError(message), expected, message);
});
