// What `@tensorflow/tfjs-node-gpu` 4.x needs on this machine, checked piece by piece, so a user
// learns why the GPU is not used instead of watching a silent fallback to the CPU.
// tfjs-node-gpu 4.x loads libtensorflow 2.9, built for CUDA 11.2 and cuDNN 8.1: it dlopens the
// CUDA 11 sonames below, and CUDA 12 / cuDNN 9 libraries do not satisfy it.

import { execFile } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';

export interface GpuDiagnosisEnv {
  /** Folders the dynamic loader searches first (default: `process.env.LD_LIBRARY_PATH`). */
  ldLibraryPath?: string;
  /** Folders where CUDA is often installed but the loader may not look (default: /usr/local/cuda*, /opt/cuda …). */
  searchDirs?: string[];
  /** Ask `nvidia-smi` for the driver and the GPUs (default true). */
  runNvidiaSmi?: boolean;
  /** PATH used to find `nvidia-smi` (default: `process.env.PATH`). */
  path?: string;
  /** Also consult the system library cache (`ldconfig -p`) and /lib, /usr/lib (default true). */
  systemLibraries?: boolean;
  /** Where the kernel module reports its version (default `/proc/driver/nvidia/version`). */
  procDriverVersionPath?: string;
}

export interface LibraryCheck {
  /** The exact file the GPU build loads, e.g. `libcudart.so.11.0`. */
  soname: string;
  /** What it is, in words. */
  role: string;
  /** Where the loader will find it (LD_LIBRARY_PATH or the system library path), if anywhere. */
  loadable?: string;
  /** Copies outside the loader's path (found, but LD_LIBRARY_PATH must name their folder). */
  elsewhere: string[];
  /** Other versions of the same library that were found, e.g. `/usr/local/cuda-12.2/lib64/libcudart.so.12`. */
  otherVersions: string[];
}

export interface GpuDiagnosis {
  /** Every piece is in place (driver and libraries); tfjs-node-gpu should find the GPU. */
  ready: boolean;
  platform: string;
  driver: {
    found: boolean;
    version?: string;
    gpus: string[];
    source?: 'nvidia-smi' | 'proc';
    detail: string;
  };
  libraries: LibraryCheck[];
  /** Sonames the loader cannot find. */
  missing: string[];
  /** One actionable sentence per problem. */
  problems: string[];
  /** One line for the user. */
  summary: string;
}

/** The driver version CUDA 11.x needs on Linux (minor-version compatibility). */
const MIN_DRIVER_CUDA11 = '450.80.02';

interface RequiredLibrary {
  soname: string;
  /** Prefix shared by every version, to spot e.g. libcudart.so.12 beside a missing libcudart.so.11.0. */
  family: string;
  role: string;
}

const LINUX_LIBRARIES: RequiredLibrary[] = [
  { soname: 'libcuda.so.1', family: 'libcuda.so', role: 'NVIDIA driver library' },
  { soname: 'libcudart.so.11.0', family: 'libcudart.so', role: 'CUDA 11 runtime' },
  { soname: 'libcublas.so.11', family: 'libcublas.so', role: 'cuBLAS (CUDA 11)' },
  { soname: 'libcublasLt.so.11', family: 'libcublasLt.so', role: 'cuBLASLt (CUDA 11)' },
  { soname: 'libcufft.so.10', family: 'libcufft.so', role: 'cuFFT (CUDA 11)' },
  { soname: 'libcurand.so.10', family: 'libcurand.so', role: 'cuRAND (CUDA 11)' },
  { soname: 'libcusolver.so.11', family: 'libcusolver.so', role: 'cuSOLVER (CUDA 11)' },
  { soname: 'libcusparse.so.11', family: 'libcusparse.so', role: 'cuSPARSE (CUDA 11)' },
  { soname: 'libcudnn.so.8', family: 'libcudnn.so', role: 'cuDNN 8' },
];

const WINDOWS_LIBRARIES: RequiredLibrary[] = [
  { soname: 'nvcuda.dll', family: 'nvcuda', role: 'NVIDIA driver library' },
  { soname: 'cudart64_110.dll', family: 'cudart64_', role: 'CUDA 11 runtime' },
  { soname: 'cublas64_11.dll', family: 'cublas64_', role: 'cuBLAS (CUDA 11)' },
  { soname: 'cublasLt64_11.dll', family: 'cublasLt64_', role: 'cuBLASLt (CUDA 11)' },
  { soname: 'cufft64_10.dll', family: 'cufft64_', role: 'cuFFT (CUDA 11)' },
  { soname: 'curand64_10.dll', family: 'curand64_', role: 'cuRAND (CUDA 11)' },
  { soname: 'cusolver64_11.dll', family: 'cusolver64_', role: 'cuSOLVER (CUDA 11)' },
  { soname: 'cusparse64_11.dll', family: 'cusparse64_', role: 'cuSPARSE (CUDA 11)' },
  { soname: 'cudnn64_8.dll', family: 'cudnn64_', role: 'cuDNN 8' },
];

const CPU_HINT = 'or use the CPU backends (native TensorFlow CPU or WebAssembly)';

/** Checks the NVIDIA driver and the CUDA 11 / cuDNN 8 libraries tfjs-node-gpu 4.x loads, and explains what is missing. */
export async function diagnoseGpu(env: GpuDiagnosisEnv = {}): Promise<GpuDiagnosis> {
  const platform = `${process.platform}-${process.arch}`;
  const windows = process.platform === 'win32';
  if (!['linux-x64', 'win32-x64'].includes(platform)) {
    const line = `tfjs-node-gpu runs only on Linux and Windows x64 with an NVIDIA GPU; this machine is ${platform}: use the CPU backends (WebAssembly, or native TensorFlow CPU where it installs).`;
    return {
      ready: false,
      platform,
      driver: { found: false, gpus: [], detail: 'not checked' },
      libraries: [],
      missing: [],
      problems: [line],
      summary: `GPU backend unavailable: ${line}`,
    };
  }
  const pathDirs = splitPath(env.path ?? process.env.PATH);
  const loaderDirs = windows ? pathDirs : splitPath(env.ldLibraryPath ?? process.env.LD_LIBRARY_PATH);
  const systemLibraries = env.systemLibraries ?? true;
  const cache = systemLibraries && !windows ? await readLdconfigCache() : [];
  if (systemLibraries && !windows) loaderDirs.push('/lib', '/usr/lib', '/lib64', '/usr/lib64');
  const extraDirs = [...(env.searchDirs ?? (await defaultCudaDirs(windows)))];
  // /usr/local/cuda is usually a link to /usr/local/cuda-X.Y: look at each real folder once.
  const seen = new Set<string>();
  const firstSpelling = async (dirs: string[]) => {
    const kept: string[] = [];
    for (const dir of dirs) {
      const real = await fsp.realpath(dir).catch(() => undefined);
      if (real === undefined || seen.has(real)) continue;
      seen.add(real);
      kept.push(dir);
    }
    return kept;
  };
  loaderDirs.splice(0, loaderDirs.length, ...(await firstSpelling(loaderDirs)));
  extraDirs.splice(0, extraDirs.length, ...(await firstSpelling(extraDirs)));

  const driver = await findDriver(env, pathDirs, windows);
  const libraries: LibraryCheck[] = [];
  const required = windows ? WINDOWS_LIBRARIES : LINUX_LIBRARIES;
  const listings = new Map<string, string[]>();
  const list = async (dir: string) => {
    let names = listings.get(dir);
    if (!names) {
      names = await fsp.readdir(dir).catch(() => [] as string[]);
      listings.set(dir, names);
    }
    return names;
  };
  for (const lib of required) {
    const check: LibraryCheck = { soname: lib.soname, role: lib.role, elsewhere: [], otherVersions: [] };
    const cached = cache.find((c) => c.soname === lib.soname);
    for (const dir of loaderDirs) {
      if ((await list(dir)).includes(lib.soname)) {
        check.loadable = path.join(dir, lib.soname);
        break;
      }
    }
    check.loadable ??= cached?.path;
    for (const dir of extraDirs) {
      if (!check.loadable && (await list(dir)).includes(lib.soname)) check.elsewhere.push(path.join(dir, lib.soname));
    }
    const others = new Set<string>();
    for (const dir of unique([...loaderDirs, ...extraDirs])) {
      for (const name of await list(dir)) if (isOtherVersion(name, lib, windows)) others.add(path.join(dir, name));
    }
    for (const c of cache) if (isOtherVersion(c.soname, lib, windows)) others.add(c.path);
    check.otherVersions = [...others].sort();
    libraries.push(check);
  }

  const missing = libraries.filter((l) => !l.loadable).map((l) => l.soname);
  const problems = explainProblems(driver, libraries, windows);
  const ready = driver.found && missing.length === 0 && problems.length === 0;
  return { ready, platform, driver, libraries, missing, problems, summary: summarize(ready, driver, libraries, missing) };
}

/** Turns a native module load error (or TensorFlow's dlopen log line) into one sentence that says what to do. */
export function explainNativeLoadError(message: string): string {
  const firstLine =
    message
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? message;
  const so = /([\w.+-]+\.so(?:\.[\d.]+)?)\s*:\s*cannot open shared object file/.exec(message)?.[1] ?? /([\w.+-]+\.dll)/i.exec(message)?.[1];
  const notInstalled = /cannot find module ['"](@tensorflow\/tfjs-node(?:-gpu)?)['"]/i.exec(message);
  if (notInstalled) {
    return `${notInstalled[1]} is not installed: run "Image Trainer: Install GPU Backend" (it needs internet access to download libtensorflow), or keep training on WebAssembly.`;
  }
  const glibc = /(GLIBC(?:XX)?_[\d.]+)'? not found/.exec(message);
  if (glibc) {
    return `This system's C library is too old for the native TensorFlow binary (it needs ${glibc[1]}): use a newer Linux (glibc 2.27 or later, e.g. Ubuntu 18.04+) or container, or keep training on WebAssembly.`;
  }
  if (/invalid ELF header|wrong ELF class|not a valid Win32 application|Exec format error|mach-o/i.test(message)) {
    return `The native TensorFlow module was built for another operating system or processor (probably installed on a different machine, e.g. outside a Remote/WSL session): reinstall it on this machine, or keep training on WebAssembly. (${firstLine})`;
  }
  if (/NODE_MODULE_VERSION/.test(message) || (/N-?API/i.test(message) && /version/i.test(message))) {
    return `The native TensorFlow module was built for another Node.js version: reinstall it with this Node.js (${process.version}), or keep training on WebAssembly. (${firstLine})`;
  }
  if (/libcudart\.so\.11\.0|cudart64_110\.dll/.test(message)) {
    return `The CUDA 11 runtime (libcudart.so.11.0) was not found: tfjs-node-gpu 4.x is built for CUDA 11.x and cuDNN 8 (CUDA 12 does not work). Install CUDA 11.8 + cuDNN 8 and add their lib64 folder to LD_LIBRARY_PATH, ${CPU_HINT}.`;
  }
  if (/libcudnn\.so\.8|cudnn64_8\.dll/.test(message)) {
    return `cuDNN 8 (libcudnn.so.8) was not found: tfjs-node-gpu 4.x needs cuDNN 8 for CUDA 11 (cuDNN 9 does not work). Install cuDNN 8.x for CUDA 11 and add its folder to LD_LIBRARY_PATH, ${CPU_HINT}.`;
  }
  if (/libcuda\.so\.1|nvcuda\.dll/.test(message)) {
    return `The NVIDIA driver library (libcuda.so.1) was not found: install the NVIDIA driver (≥ ${MIN_DRIVER_CUDA11}), or in a container start it with the NVIDIA Container Toolkit (--gpus all); ${CPU_HINT}.`;
  }
  const mathLib =
    /\b(lib(?:cublasLt|cublas|cufft|curand|cusolver|cusparse)\.so\.\d+|(?:cublasLt|cublas|cufft|curand|cusolver|cusparse)64_\d+\.dll)/.exec(
      message,
    );
  if (mathLib) {
    return `The CUDA 11 library ${mathLib[1]} was not found: it comes with the CUDA 11 toolkit (11.2–11.8) that tfjs-node-gpu 4.x needs; install it and add its lib64 folder to LD_LIBRARY_PATH, ${CPU_HINT}.`;
  }
  if (
    /cannot find module\b.*tfjs_binding\.node/i.test(message) ||
    /libtensorflow[\w.]*\s*:\s*cannot open shared object/.test(message) ||
    /tensorflow\.dll/i.test(message)
  ) {
    return `The native TensorFlow module is installed without its binary (tfjs_binding.node / libtensorflow): its install script could not download libtensorflow from storage.googleapis.com, usually because the machine was offline or behind a proxy. Reinstall the backend with internet access, or keep training on WebAssembly. (${firstLine})`;
  }
  if (/CUDA driver version is insufficient|CUDA_ERROR_SYSTEM_DRIVER_MISMATCH/i.test(message)) {
    return `The NVIDIA driver is too old for CUDA 11: update it to ${MIN_DRIVER_CUDA11} or later, ${CPU_HINT}.`;
  }
  if (/no CUDA-capable device|CUDA_ERROR_NO_DEVICE|failed call to cuInit/i.test(message)) {
    return `CUDA found no usable GPU (no NVIDIA device visible to this process; in a container pass --gpus all, and check CUDA_VISIBLE_DEVICES): ${CPU_HINT}.`;
  }
  if (so)
    return `A library the native TensorFlow module needs is missing: ${so}. Install it or add its folder to LD_LIBRARY_PATH, ${CPU_HINT}.`;
  return `The native TensorFlow module failed to load: ${firstLine}`;
}

async function findDriver(env: GpuDiagnosisEnv, pathDirs: string[], windows: boolean): Promise<GpuDiagnosis['driver']> {
  const notes: string[] = [];
  if (env.runNvidiaSmi ?? true) {
    const exe = await findExecutable(windows ? 'nvidia-smi.exe' : 'nvidia-smi', pathDirs);
    if (!exe) notes.push('nvidia-smi is not on PATH');
    else {
      const result = await run(exe, ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader']);
      if (result.code === 0) {
        const rows = result.stdout
          .split('\n')
          .map((l) => l.trim())
          .filter(Boolean)
          .map((l) => l.split(',').map((c) => c.trim()));
        const version = rows[0]?.[1];
        const gpus = rows.map((r) => (r[2] ? `${r[0]} (${r[2]})` : r[0]));
        if (version && gpus.length > 0) {
          return { found: true, version, gpus, source: 'nvidia-smi', detail: `NVIDIA driver ${version}, ${gpus.join(', ')}` };
        }
        notes.push('nvidia-smi lists no GPU');
      } else {
        const said = (result.stdout + result.stderr)
          .split('\n')
          .map((l) => l.trim())
          .find(Boolean);
        notes.push(`nvidia-smi failed${said ? `: ${said}` : ` (exit ${result.code})`}`);
      }
    }
  }
  if (!windows) {
    const procPath = env.procDriverVersionPath ?? '/proc/driver/nvidia/version';
    const text = await fsp.readFile(procPath, 'utf8').catch(() => undefined);
    const version = text && /Kernel Module\s+([\d.]+)/.exec(text)?.[1];
    if (version)
      return {
        found: true,
        version,
        gpus: [],
        source: 'proc',
        detail: `NVIDIA kernel module ${version} (${notes.join('; ') || 'nvidia-smi not used'})`,
      };
    notes.push(`${procPath} does not exist`);
  }
  return { found: false, gpus: [], detail: notes.join('; ') };
}

function explainProblems(driver: GpuDiagnosis['driver'], libs: LibraryCheck[], windows: boolean): string[] {
  const problems: string[] = [];
  const byName = (prefix: string) => libs.find((l) => l.soname.startsWith(prefix))!;
  const pathVar = windows ? 'PATH' : 'LD_LIBRARY_PATH';
  if (!driver.found) {
    problems.push(
      `No NVIDIA driver found (${driver.detail}): install the NVIDIA driver (≥ ${MIN_DRIVER_CUDA11} for CUDA 11); in a container, start it with the NVIDIA Container Toolkit (--gpus all); ${CPU_HINT}.`,
    );
  } else if (driver.version && !windows && compareVersions(driver.version, MIN_DRIVER_CUDA11) < 0) {
    problems.push(`NVIDIA driver ${driver.version} is older than CUDA 11 needs (≥ ${MIN_DRIVER_CUDA11}): update the driver, ${CPU_HINT}.`);
  }
  const driverLib = byName(windows ? 'nvcuda' : 'libcuda.so');
  if (driver.found && !driverLib.loadable) {
    problems.push(
      `The driver is there but its library ${driverLib.soname} is not on the loader path${whereElse(driverLib)}: add its folder to ${pathVar}.`,
    );
  }

  const cudart = byName(windows ? 'cudart64' : 'libcudart.so');
  const cudnn = byName(windows ? 'cudnn64' : 'libcudnn.so');
  const toolkit = libs.filter((l) => l !== cudart && l !== cudnn && l !== driverLib);
  const hasCuda12 = [cudart, ...toolkit].some((l) => l.otherVersions.some((p) => /\.so\.12|64_12/.test(path.basename(p))));
  if (!cudart.loadable) {
    if (cudart.elsewhere.length > 0) {
      problems.push(
        `${cudart.soname} is in ${path.dirname(cudart.elsewhere[0])} but not on the loader path: add that folder to ${pathVar} before starting VS Code${windows ? '' : ' (or register it with ldconfig)'}.`,
      );
    } else if (cudart.otherVersions.length > 0 || hasCuda12) {
      const found = unique(cudart.otherVersions.map((p) => path.basename(p))).join(', ') || 'CUDA 12 libraries';
      const where = cudart.otherVersions.length > 0 ? ` in ${unique(cudart.otherVersions.map((p) => path.dirname(p))).join(', ')}` : '';
      problems.push(
        `tfjs-node-gpu 4.x is built for CUDA 11.x/cuDNN 8; found ${cudaLabel(cudart.otherVersions)} (${found}${where}) but not ${cudart.soname}: install CUDA 11.8 + cuDNN 8 beside it and add their lib64 folder to ${pathVar}, ${CPU_HINT}.`,
      );
    } else {
      problems.push(
        `${cudart.soname} (the CUDA 11 runtime) was not found on ${pathVar} or in the system library path: tfjs-node-gpu 4.x needs CUDA 11.x (11.8 recommended) + cuDNN 8; install them, ${CPU_HINT}.`,
      );
    }
  } else {
    // The runtime is there; name the CUDA 11 math libraries that are not.
    const lost = toolkit.filter((l) => !l.loadable);
    if (lost.length > 0) {
      const elsewhere = lost.filter((l) => l.elsewhere.length > 0);
      problems.push(
        `CUDA 11 libraries missing from the loader path: ${lost.map((l) => l.soname).join(', ')}${elsewhere.length > 0 ? ` (found in ${unique(elsewhere.map((l) => path.dirname(l.elsewhere[0]))).join(', ')}: add to ${pathVar})` : ''}; they come with the full CUDA 11 toolkit, ${CPU_HINT}.`,
      );
    }
  }
  if (!cudnn.loadable) {
    if (cudnn.elsewhere.length > 0) {
      problems.push(`${cudnn.soname} is in ${path.dirname(cudnn.elsewhere[0])} but not on the loader path: add that folder to ${pathVar}.`);
    } else if (cudnn.otherVersions.length > 0) {
      problems.push(
        `tfjs-node-gpu 4.x needs cuDNN 8 (${cudnn.soname}); found only ${unique(cudnn.otherVersions.map((p) => path.basename(p))).join(', ')} in ${unique(cudnn.otherVersions.map((p) => path.dirname(p))).join(', ')}: install cuDNN 8.x for CUDA 11 beside it, ${CPU_HINT}.`,
      );
    } else {
      problems.push(
        `${cudnn.soname} (cuDNN 8) was not found on ${pathVar} or in the system library path: install cuDNN 8.x for CUDA 11, ${CPU_HINT}.`,
      );
    }
  }
  return problems;
}

function summarize(ready: boolean, driver: GpuDiagnosis['driver'], libs: LibraryCheck[], missing: string[]): string {
  if (ready) {
    const gpus = driver.gpus.length > 0 ? ` (${driver.gpus.join(', ')})` : '';
    return `GPU pieces for tfjs-node-gpu 4.x are in place: NVIDIA driver ${driver.version}${gpus}, CUDA 11 runtime and cuDNN 8.`;
  }
  const parts: string[] = [];
  if (!driver.found) parts.push('no NVIDIA driver found');
  const keyMissing = missing.filter((m) => /cudart|cudnn/.test(m));
  const otherMissing = missing.filter((m) => !/cudart|cudnn|libcuda\.so|nvcuda/.test(m));
  if (keyMissing.length > 0) {
    const mismatch = unique(
      libs.filter((l) => keyMissing.includes(l.soname) && l.otherVersions.length > 0).map((l) => path.basename(l.otherVersions[0])),
    );
    parts.push(
      `${joinWords(keyMissing)} not found${mismatch.length > 0 ? ` (found ${mismatch.join(', ')} instead: wrong CUDA/cuDNN version)` : ''}`,
    );
  }
  if (otherMissing.length > 0 && keyMissing.length === 0) parts.push(`${joinWords(otherMissing)} not found`);
  if (parts.length === 0) parts.push('the driver or CUDA setup has a problem (see details)');
  return `GPU backend unavailable: ${parts.join('; ')}.`;
}

interface CachedLibrary {
  soname: string;
  path: string;
}

/** The system library cache (`ldconfig -p`), filtered to this process's architecture. */
async function readLdconfigCache(): Promise<CachedLibrary[]> {
  const arch = process.arch === 'x64' ? 'x86-64' : process.arch === 'arm64' ? 'AArch64' : undefined;
  for (const exe of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const result = await run(exe, ['-p']);
    if (result.code !== 0) continue;
    const libs: CachedLibrary[] = [];
    for (const line of result.stdout.split('\n')) {
      const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)/.exec(line);
      if (m && (!arch || m[2].includes(arch))) libs.push({ soname: m[1], path: m[3] });
    }
    return libs;
  }
  return [];
}

async function defaultCudaDirs(windows: boolean): Promise<string[]> {
  if (windows) {
    const base = path.join(process.env.ProgramFiles ?? 'C:\\Program Files', 'NVIDIA GPU Computing Toolkit', 'CUDA');
    const versions = await fsp.readdir(base).catch(() => [] as string[]);
    return versions.map((v) => path.join(base, v, 'bin'));
  }
  const dirs = [
    '/usr/local/cuda/lib64',
    '/usr/local/cuda/targets/x86_64-linux/lib',
    '/opt/cuda/lib64',
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/wsl/lib',
  ];
  for (const name of await fsp.readdir('/usr/local').catch(() => [] as string[])) {
    if (/^cuda-\d/.test(name))
      dirs.push(`/usr/local/${name}/lib64`, `/usr/local/${name}/lib`, `/usr/local/${name}/targets/x86_64-linux/lib`);
  }
  return dirs;
}

function isOtherVersion(name: string, lib: RequiredLibrary, windows: boolean): boolean {
  if (name === lib.soname) return false;
  if (windows) return name.toLowerCase().startsWith(lib.family.toLowerCase()) && name.toLowerCase().endsWith('.dll');
  // `libcudart.so.12` or `libcudart.so.12.2.140` beside a wanted `libcudart.so.11.0`: another major
  // version. The unversioned dev link `libcudart.so` and `libcudart.so.11.8.89` (same major) are not.
  if (!name.startsWith(`${lib.family}.`)) return false;
  const major = /^(\d+)/.exec(name.slice(lib.family.length + 1))?.[1];
  const wanted = /^(\d+)/.exec(lib.soname.slice(lib.family.length + 1))?.[1];
  return major !== undefined && major !== wanted;
}

function cudaLabel(others: string[]): string {
  const majors = unique(
    others
      .map((p) => /\.so\.(\d+)/.exec(path.basename(p))?.[1] ?? /64_(\d\d)/.exec(path.basename(p))?.[1])
      .filter((m): m is string => m !== undefined),
  );
  return majors.length > 0 ? `CUDA ${majors.sort((a, b) => Number(a) - Number(b)).join(' and ')}` : 'another CUDA version';
}

async function findExecutable(name: string, dirs: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    const full = path.join(dir, name);
    try {
      await fsp.access(full, 1 /* X_OK */);
      if ((await fsp.stat(full)).isFile()) return full;
    } catch {
      // not here
    }
  }
  return undefined;
}

function run(exe: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(exe, args, { timeout: 10_000, maxBuffer: 4 * 1024 * 1024, windowsHide: true }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function whereElse(lib: LibraryCheck): string {
  return lib.elsewhere.length > 0 ? ` (it is in ${path.dirname(lib.elsewhere[0])})` : '';
}

function splitPath(value: string | undefined): string[] {
  return (value ?? '').split(path.delimiter).filter((d) => d !== '');
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

function joinWords(xs: string[]): string {
  return xs.length <= 1 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs[xs.length - 1]}`;
}
