// The one error class the package throws or emits, and the helpers that turn
// native errno results into it. Users switch on `code`. fdpass sits below
// @handoff/protocol, so the cross-copy brand is implemented here, not imported.
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
  | 'ERR_NATIVE'
  | (string & {});

export interface FdPassErrorOptions {
  errno?: number;
  syscall?: string;
  cause?: unknown;
}

/** FdPassError or a subclass: each has its own brand, `'<package>:<ClassName>'`. */
interface FdPassErrorClass {
  readonly brand: string;
}

/**
 * `instanceof FdPassError` holds across two loaded copies of this package
 * (two versions in one tree, or a bundled copy beside an installed one): the
 * check reads a `Symbol.for` brand stamped on each instance, not the
 * prototype chain. The same mechanism as `BrandedError` in the protocol package: a
 * subclass sets its own `static brand` and is checked by it too.
 */
export class FdPassError extends Error {
  static readonly brand: string = '@handoff/fdpass:FdPassError';

  override name = 'FdPassError';
  readonly code: FdPassErrorCode;
  readonly errno?: number;
  readonly syscall?: string;
  /**
   * Set on an error thrown by FdSocket.writeBatch(): how many messages before
   * the failing one were sent or queued.
   */
  readonly messagesWritten?: number;

  constructor(code: FdPassErrorCode, message: string, options: FdPassErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.syscall !== undefined) this.syscall = options.syscall;
    // The brand of this class and of each class above it, up to Error.
    for (
      let c: unknown = new.target;
      typeof c === 'function' && c !== Error;
      c = Object.getPrototypeOf(c)
    ) {
      if (Object.hasOwn(c, 'brand')) {
        Object.defineProperty(this, Symbol.for((c as unknown as FdPassErrorClass).brand), {
          value: true,
        });
      }
    }
  }

  // `this` is the class `instanceof` was asked about (FdPassError or a
  // subclass): a subclass without a brand of its own is checked by prototype.
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: must be the class checked against, not FdPassError
    const checked = this as FdPassErrorClass;
    if (!Object.hasOwn(checked, 'brand')) {
      return Function.prototype[Symbol.hasInstance].call(checked, value);
    }
    if (typeof value !== 'object' || value === null) return false;
    return (value as Record<symbol, unknown>)[Symbol.for(checked.brand)] === true;
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
 * are programming mistakes, not runtime conditions. Anything thrown that is
 * not an Error at all becomes ERR_NATIVE, with the thrown value as `cause`.
 */
export function fromNative(err: unknown, context?: string): Error {
  if (err instanceof TypeError) return err;
  const e = err as NativeSystemError;
  if (typeof e?.errno === 'number' && typeof e.syscall === 'string') {
    const out = errnoError(e.errno, e.syscall, context);
    return out;
  }
  if (err instanceof Error) return err;
  const where = context === undefined ? '' : ` (${context})`;
  return new FdPassError('ERR_NATIVE', `the addon threw a non-Error: ${String(err)}${where}`, {
    cause: err,
  });
}
