// The error class of the prefork dispatcher (master and worker side). A
// stable `code` to switch on; when a syscall failed underneath, `errnoCode`
// / `errno` / `syscall` are copied from *that* failure (never re-read from
// some global "last error"), and the message names it. Wire decoding faults
// are DispatchWireError (wire.ts).
import { BackendSdkError } from '../errors.js';

export type DispatchErrorCode =
  /** A listener could not be bound (EADDRINUSE, EACCES, …). */
  | 'LISTEN_FAILED'
  /** A worker's channel (socketpair) could not be created (EMFILE, ENFILE, …). */
  | 'CHANNEL_FAILED'
  /** A worker process could not be spawned (ENOENT, EAGAIN, EMFILE, …). */
  | 'SPAWN_FAILED'
  /** A worker exited or broke its channel before reporting ready. */
  | 'WORKER_START_FAILED'
  /** A worker did not report ready in time, or the hello never came. */
  | 'START_TIMEOUT'
  /** serveDispatched in a process that no dispatcher spawned. */
  | 'NOT_A_WORKER'
  /** The channel between master and worker closed (or a write to it failed). */
  | 'CHANNEL_CLOSED'
  /** The other side broke the dispatch protocol. */
  | 'PROTOCOL';

interface SyscallFailure {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
}

export class DispatchError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:DispatchError';
  override readonly name = 'DispatchError';
  declare readonly code: DispatchErrorCode;
  /** The errno name of the underlying failure (e.g. 'EMFILE'), when there was one. */
  readonly errnoCode?: string;
  /** Its errno value, as the failing layer reported it. */
  readonly errno?: number;
  readonly syscall?: string;

  constructor(
    code: DispatchErrorCode,
    message: string,
    options: { cause?: unknown; errnoCode?: string; errno?: number; syscall?: string } = {},
  ) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    if (options.errnoCode !== undefined) this.errnoCode = options.errnoCode;
    if (options.errno !== undefined) this.errno = options.errno;
    if (options.syscall !== undefined) this.syscall = options.syscall;
  }

  /**
   * Wraps the failure of one operation, taking errno details from that very
   * error: "<context>: EMFILE (socketpair)".
   */
  static from(code: DispatchErrorCode, context: string, cause: unknown): DispatchError {
    const f = (cause ?? {}) as SyscallFailure;
    const errnoCode =
      typeof f.code === 'string' && /^E[A-Z0-9]+$/.test(f.code) ? f.code : undefined;
    const syscall = typeof f.syscall === 'string' ? f.syscall : undefined;
    const errno = typeof f.errno === 'number' ? f.errno : undefined;
    const detail =
      errnoCode !== undefined
        ? `${errnoCode}${syscall ? ` (${syscall})` : ''}`
        : cause instanceof Error
          ? cause.message
          : String(cause);
    return new DispatchError(code, `${context}: ${detail}`, {
      cause,
      ...(errnoCode === undefined ? {} : { errnoCode }),
      ...(errno === undefined ? {} : { errno }),
      ...(syscall === undefined ? {} : { syscall }),
    });
  }
}
