#!/usr/bin/env node
// Installs the end-to-end harness's VS Code (code-server) into the git-ignored .vscode-test/ folder.
// Idempotent: a second run finds the marker of a complete install and returns at once.
// The browser (Debian's chromium), ripgrep and the kerberos headers code-server compiles against
// come from apt (see .ci/run); playwright-core, @vscode/vsce and mocha are devDependencies.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

// 4.100.3 is the last code-server line that runs on Node 20 (4.104+ need Node 22).
const codeServerVersion = '4.100.3';
// @vscode/ripgrep's postinstall downloads this tarball from GitHub unless its cache holds it.
const ripgrepCache = { dir: 'vscode-ripgrep-cache-1.15.11', file: 'ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz' };

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const harnessRoot = path.join(repoRoot, '.vscode-test');
const installDir = path.join(harnessRoot, 'code-server');
const marker = path.join(installDir, `.installed-${codeServerVersion}`);
const codeServerBin = path.join(installDir, 'node_modules', '.bin', 'code-server');

const started = Date.now();
const seconds = () => ((Date.now() - started) / 1000).toFixed(1);

if (fs.existsSync(marker) && fs.existsSync(codeServerBin)) {
  console.log(`e2e setup: code-server ${codeServerVersion} already installed in .vscode-test/ (${seconds()} s)`);
  process.exit(0);
}

const missing = [];
if (!fs.existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')) missing.push('chromium');
if (!fs.existsSync('/usr/bin/rg')) missing.push('ripgrep');
if (!fs.existsSync('/usr/include/gssapi/gssapi.h') && !fs.existsSync('/usr/bin/krb5-config')) missing.push('libkrb5-dev');
if (missing.length > 0) {
  console.error(
    `e2e setup: missing Debian packages: ${missing.join(', ')}.\n` +
      `Install them first (as root): apt-get update && apt-get install -y ${missing.join(' ')}`,
  );
  process.exit(1);
}

const tmpDir = path.join(harnessRoot, 'tmp');
fs.mkdirSync(path.join(tmpDir, ripgrepCache.dir), { recursive: true });
const tarball = path.join(tmpDir, ripgrepCache.dir, ripgrepCache.file);
if (!fs.existsSync(tarball)) {
  const stage = fs.mkdtempSync(path.join(tmpDir, 'rg-'));
  fs.copyFileSync('/usr/bin/rg', path.join(stage, 'rg'));
  execFileSync('tar', ['czf', tarball, '-C', stage, 'rg']);
  fs.rmSync(stage, { recursive: true, force: true });
}

fs.mkdirSync(installDir, { recursive: true });
const manifest = path.join(installDir, 'package.json');
if (!fs.existsSync(manifest)) {
  fs.writeFileSync(manifest, JSON.stringify({ name: 'image-trainer-e2e-code-server', private: true }, null, 2) + '\n');
}

console.log(`e2e setup: installing code-server ${codeServerVersion} into .vscode-test/code-server (takes minutes)…`);
execFileSync('npm', ['install', '--prefix', installDir, '--no-audit', '--no-fund', '--no-save', `code-server@${codeServerVersion}`], {
  cwd: installDir,
  stdio: 'inherit',
  env: {
    ...process.env,
    TMPDIR: tmpDir,
    // code-server's postinstall refuses to run as root without it.
    npm_config_unsafe_perm: 'true',
    // npm 11 skips dependency install scripts by default, and code-server's nested install in
    // lib/vscode rejects an inherited allow-scripts list.
    npm_config_dangerously_allow_all_scripts: 'true',
    // node-pty's postinstall runs `npx node-gyp`, which a user npmrc with yes=false cancels.
    npm_config_yes: 'true',
  },
});
// code-server writes a default config on first start: keep it out of the user's home.
const versionOutput = execFileSync(codeServerBin, ['--version'], {
  encoding: 'utf8',
  env: { ...process.env, XDG_CONFIG_HOME: path.join(harnessRoot, 'xdg', 'config'), XDG_DATA_HOME: path.join(harnessRoot, 'xdg', 'data') },
});
const version = versionOutput.split('\n').find((line) => /^\d+\.\d+\.\d+ /.test(line)) ?? versionOutput;
if (!version.startsWith(`${codeServerVersion} `)) {
  console.error(`e2e setup: expected code-server ${codeServerVersion}, got "${version.trim()}"`);
  process.exit(1);
}
fs.writeFileSync(marker, `${version}\n`);
console.log(`e2e setup: code-server ${version} installed in ${seconds()} s`);
