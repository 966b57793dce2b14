// The one error class the package throws or emits, and the helpers that turn
// native errno results into it. Users switch on `code`.
import { getSystemErrorName } from 'node:util';

/** Codes of our own; syscall failures use the errno name (e.g. 'EAGAIN'). */
export type FdPassErrorCode =
  | 'ERR_TOO_MANY_FDS'
  | 'ERR_CONTROL_TRUNCATED'
  | 'ERR_DATA_TRUNCATED'
  | 'ERR_SOCKET_CLOSED'
  | 'ERR_FDS_NEED_DATA'
  | 'ERR_INVALID_FD'
  | 'ERR_INCOMPLETE_SESSION'
  | 'ERR_SESSION_WOULD_BLOCK'
  | 'ERR_SESSION_TOO_LARGE'
  | 'ERR_NATIVE_LOAD'
  | (string & {});

export interface FdPassErrorOptions {
  errno?: number;
  syscall?: string;
  cause?: unknown;
}

export class FdPassError extends Error {
  override name = 'FdPassError';
  readonly code: FdPassErrorCode;
  readonly errno?: number;
  readonly syscall?: string;

  constructor(code: FdPassErrorCode, message: string, options: FdPassErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.syscall !== undefined) this.syscall = options.syscall;
  }
}

/** Builds the error for a failed syscall from a positive errno. */
export function errnoError(errno: number, syscall: string, context?: string): FdPassError {
  const code = errnoName(errno);
  const where = context === undefined ? syscall : `${syscall} ${context}`;
  return new FdPassError(code, `${code}: ${where} failed`, { errno, syscall });
}

// Filled from the addon's own table when it loads: libuv does not name every
// errno (ETOOMANYREFS comes back as "Unknown system error -109").
let platformNames: Readonly<Record<string, string>> = {};

export function registerErrnoNames(names: Readonly<Record<string, string>>): void {
  platformNames = names;
}

export function errnoName(errno: number): string {
  const known = platformNames[String(errno)];
  if (known !== undefined) return known;
  try {
    const name = getSystemErrorName(-errno);
    return name.startsWith('Unknown') ? `E${errno}` : name;
  } catch {
    return `E${errno}`;
  }
}

interface NativeSystemError {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
}

/**
 * Converts an error thrown by the addon: syscall failures carry code, errno
 * and syscall; usage errors (TypeError) are rethrown unchanged because they
 * are programming mistakes, not runtime conditions.
 */
export function fromNative(err: unknown, context?: string): Error {
  if (err instanceof TypeError) return err;
  const e = err as NativeSystemError;
  if (typeof e?.errno === 'number' && typeof e.syscall === 'string') {
    const out = errnoError(e.errno, e.syscall, context);
    return out;
  }
  return err instanceof Error ? err : new Error(String(err));
}
