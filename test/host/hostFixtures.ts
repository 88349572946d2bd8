// Helpers of the host tests: the extension's API, throwaway datasets inside the workspace, waiting.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ImageTrainerApi } from '../../src/extension/extension';

export const extensionId = 'image-trainer.image-trainer';

/** The activated extension's API. */
export async function imageTrainer(): Promise<ImageTrainerApi> {
  const extension = vscode.extensions.getExtension<ImageTrainerApi>(extensionId);
  if (!extension) throw new Error(`${extensionId} is not installed in this extension host`);
  return extension.activate();
}

/** The first workspace folder (the harness opens one). */
export function workspaceRoot(): string {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) throw new Error('the host tests need a workspace folder');
  return folder.uri.fsPath;
}

/** samples/leaves of the repository, found upward from the compiled test file or the extension. */
export function sampleLeaves(): string {
  const starts = [__dirname, vscode.extensions.getExtension(extensionId)?.extensionPath ?? __dirname];
  for (const start of starts) {
    for (let dir = start; path.dirname(dir) !== dir; dir = path.dirname(dir)) {
      const candidate = path.join(dir, 'samples', 'leaves');
      if (fs.existsSync(path.join(candidate, 'scab'))) return candidate;
    }
  }
  throw new Error('samples/leaves not found above the test files');
}

/** A folder for this test file's fixtures inside the workspace, removed by `cleanup`. */
export function fixtureFolder(name: string): { dir: string; cleanup(): void } {
  const dir = path.join(workspaceRoot(), `host-${name}-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Copies the first `perClass` photos of each named class of the leaf sample into `root`. */
export function copyLeaves(root: string, perClass: number, classes = ['black_rot', 'cedar_rust', 'healthy', 'scab']): string {
  const source = sampleLeaves();
  for (const cls of classes) {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    for (const photo of fs.readdirSync(path.join(source, cls)).sort().slice(0, perClass)) {
      fs.copyFileSync(path.join(source, cls, photo), path.join(root, cls, photo));
    }
  }
  return root;
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Process ids of this extension host's children running the training bundle (Linux /proc). */
export function trainingChildren(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes('training.js')) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** True if a process with this id exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sets workspace settings for the duration of a suite; returns the undo. */
export async function withSettings(values: Record<string, unknown>): Promise<() => Promise<void>> {
  const config = vscode.workspace.getConfiguration('imageTrainer');
  const previous = Object.fromEntries(Object.keys(values).map((k) => [k, config.inspect(k)?.workspaceValue]));
  for (const [key, value] of Object.entries(values)) await config.update(key, value, vscode.ConfigurationTarget.Workspace);
  // The update resolves when the settings file is written; the configuration the extension reads
  // follows through a file watcher (code-server relays it from the remote side), which can briefly
  // see the file half-written: wait until the values show and stay for a few reads in a row.
  let stable = 0;
  await waitFor(
    `the settings ${Object.keys(values).join(', ')} to apply`,
    () => {
      const now = vscode.workspace.getConfiguration('imageTrainer');
      const applied = Object.entries(values).every(([k, v]) => JSON.stringify(now.get(k)) === JSON.stringify(v));
      stable = applied ? stable + 1 : 0;
      return stable >= 5;
    },
    15_000,
  );
  return async () => {
    for (const [key, value] of Object.entries(previous)) await config.update(key, value, vscode.ConfigurationTarget.Workspace);
  };
}
