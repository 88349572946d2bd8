// One error type for everything the engine reports to a user. Its `kind` crosses the process
// boundary (FailedNotification) so the host can offer the action that fits; the message alone
// is for people.
import type { ErrorKind } from '../../shared/types';

/** A failure the user can act on, with its kind and, once known, the run folder it concerns. */
export class TrainerError extends Error {
  override readonly name: string = 'TrainerError';
  /** The run folder this failure was recorded in (set by the run once it has one). */
  runDir?: string;

  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The run was cancelled by the user (Ctrl-C, the Cancel button, an aborted signal). */
export class RunCancelled extends TrainerError {
  override readonly name = 'RunCancelled';

  constructor(message = 'Training was cancelled.') {
    super('cancelled', message);
  }
}

// File-system codes that mean "this disk or folder cannot take the write", not a bug.
const DISK_CODES = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'EEXIST', 'EMFILE', 'ENFILE']);

/** The kind of any thrown value: a TrainerError's own, an abort → `cancelled`, a full or read-only disk → `disk`, else `internal`. */
export function errorKindOf(err: unknown): ErrorKind {
  if (err instanceof TrainerError) return err.kind;
  if (err instanceof Error && err.name === 'AbortError') return 'cancelled';
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && DISK_CODES.has(code)) return 'disk';
  return 'internal';
}

/** Throws `RunCancelled` when `signal` has been aborted (the cooperative cancel check of every stage). */
export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new RunCancelled();
}
