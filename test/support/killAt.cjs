// Fault injection for crash tests: preloaded with `node --require test/support/killAt.cjs`, it
// SIGKILLs the process at the N-th file-system write event on a path matching a pattern, so a test
// can stop the real CLI at an exact point (before or after a rename, half-way through a write).
//
//   KILL_AT_PATTERN  regular expression tested on the path (a rename's destination)
//   KILL_AT_OP       rename | write | append | open (open for writing) | sync; default write
//   KILL_AT_N        which matching event (1 = the first); default 1
//   KILL_AT_WHEN     before | after | during (during: half the data is written, then the kill); default before
//   KILL_AT_CONTENT  for renames: only count a rename whose source file's text matches this regular
//                    expression (e.g. the status.json that says the run finished, however many came before)
//
// Wrapped: fs.rename(Sync), fs.promises.rename, fs.writeFile(Sync), fs.promises.writeFile,
// fs.appendFile(Sync), fs.promises.appendFile, fs.promises.open for writing and the handle's
// writeFile / write / sync. Nothing is wrapped when KILL_AT_PATTERN is unset.
'use strict';
const fs = require('node:fs');

const pattern = process.env.KILL_AT_PATTERN ? new RegExp(process.env.KILL_AT_PATTERN) : undefined;
const op = process.env.KILL_AT_OP || 'write';
const target = Number(process.env.KILL_AT_N || '1');
const when = process.env.KILL_AT_WHEN || 'before';
const content = process.env.KILL_AT_CONTENT ? new RegExp(process.env.KILL_AT_CONTENT) : undefined;
let seen = 0;

function die() {
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL is delivered at once; never let the caller go on in the meantime.
  for (;;);
}

/** True when this event is the one to kill at. */
function hit(kind, file, args) {
  if (kind !== op || !pattern.test(String(file))) return false;
  if (content && kind === 'rename' && !(args && matchesContent(args[0]))) return false;
  seen++;
  return seen === target;
}

function matchesContent(source) {
  try {
    return content.test(fs.readFileSync(String(source), 'utf8'));
  } catch {
    return false;
  }
}

function half(data) {
  if (typeof data === 'string') return data.slice(0, Math.floor(data.length / 2));
  const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(0);
  return bytes.subarray(0, Math.floor(bytes.byteLength / 2));
}

function wrapAsync(owner, name, kind, fileArg, dataArg) {
  const real = owner[name];
  owner[name] = async function (...args) {
    if (!hit(kind, args[fileArg], args)) return real.apply(this, args);
    if (when === 'before') die();
    if (when === 'during' && dataArg !== undefined) {
      await real.apply(this, [...args.slice(0, dataArg), half(args[dataArg]), ...args.slice(dataArg + 1)]);
      die();
    }
    const result = await real.apply(this, args);
    die();
    return result;
  };
}

function wrapSync(owner, name, kind, fileArg, dataArg) {
  const real = owner[name];
  owner[name] = function (...args) {
    if (!hit(kind, args[fileArg], args)) return real.apply(this, args);
    if (when === 'before') die();
    if (when === 'during' && dataArg !== undefined) {
      real.apply(this, [...args.slice(0, dataArg), half(args[dataArg]), ...args.slice(dataArg + 1)]);
      die();
    }
    real.apply(this, args);
    die();
  };
}

function wrapCallback(owner, name, kind, fileArg) {
  const real = owner[name];
  owner[name] = function (...args) {
    if (hit(kind, args[fileArg])) {
      if (when === 'before' || when === 'during') die();
      const callback = args.pop();
      return real.apply(this, [...args, (...results) => (die(), callback(...results))]);
    }
    return real.apply(this, args);
  };
}

/** Wraps the writing methods of a handle opened for writing on `file`. */
function wrapHandle(handle, file) {
  for (const [name, dataArg] of [
    ['writeFile', 0],
    ['write', 0],
    ['appendFile', 0],
  ]) {
    const real = handle[name].bind(handle);
    handle[name] = async (...args) => {
      if (!hit('write', file)) return real(...args);
      if (when === 'before') die();
      if (when === 'during') {
        await real(half(args[dataArg]));
        die();
      }
      const result = await real(...args);
      die();
      return result;
    };
  }
  const sync = handle.sync.bind(handle);
  handle.sync = async () => {
    if (!hit('sync', file)) return sync();
    if (when === 'before') die();
    await sync();
    die();
  };
  return handle;
}

if (pattern) {
  const p = fs.promises;
  wrapAsync(p, 'rename', 'rename', 1);
  wrapAsync(p, 'writeFile', 'write', 0, 1);
  wrapAsync(p, 'appendFile', 'append', 0, 1);
  wrapSync(fs, 'renameSync', 'rename', 1);
  wrapSync(fs, 'writeFileSync', 'write', 0, 1);
  wrapSync(fs, 'appendFileSync', 'append', 0, 1);
  wrapCallback(fs, 'rename', 'rename', 1);
  wrapCallback(fs, 'writeFile', 'write', 0);
  wrapCallback(fs, 'appendFile', 'append', 0);
  const open = p.open;
  p.open = async function (file, flags, ...rest) {
    const writing = typeof flags === 'string' ? /[wa+]/.test(flags) : typeof flags === 'number' && (flags & 3) !== 0;
    if (writing && hit('open', file)) {
      if (when === 'before') die();
      const handle = await open.call(this, file, flags, ...rest);
      die();
      return handle;
    }
    const handle = await open.call(this, file, flags, ...rest);
    return writing && pattern.test(String(file)) ? wrapHandle(handle, String(file)) : handle;
  };
}
