// A listening socket a broker bound for the daemon and passed in (fd 3,
// named by $HANDOFF_LISTEN_FD): which fd to adopt, and the checks it must
// pass before serveDaemon serves on it. Serving it is daemon-server.ts's job.
import { closeFd, duplicateFd, FdServer } from '@handoff/fdpass';
import { BackendSdkError } from '../errors.js';

/**
 * BROKER_ENV.listenFd and BROKER_ENV.endpoint, spelled out: broker-attachment.ts
 * imports the server, so the server cannot import it back (its tests set
 * the variables through BROKER_ENV, so the names cannot drift apart).
 */
const LISTEN_FD_ENV = 'HANDOFF_LISTEN_FD';
const ENDPOINT_ENV = 'HANDOFF_ENDPOINT';

export type InheritedListenerErrorCode =
  /** $HANDOFF_LISTEN_FD (or the listenFd option) is not a file descriptor number. */
  | 'BAD_LISTEN_FD'
  /** The fd is not open, not a socket, not listening, or not an AF_UNIX stream socket. */
  | 'NOT_A_LISTENER'
  /** The socket is bound to another path than the daemon's endpoint. */
  | 'WRONG_ENDPOINT';

/** An inherited listener that serveDaemon cannot serve on. */
export class InheritedListenerError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:InheritedListenerError';
  override readonly name = 'InheritedListenerError';
  declare readonly code: InheritedListenerErrorCode;
  readonly fd: number;
  constructor(code: InheritedListenerErrorCode, fd: number, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.fd = fd;
  }
}

/**
 * The fd serveDaemon should adopt: `option` when given, else
 * $HANDOFF_LISTEN_FD when $HANDOFF_ENDPOINT names this endpoint (the
 * broker bound it for us). The variable is removed from `env` whenever it
 * is read, so no child of the daemon inherits it. Null: bind our own.
 */
export function listenFdFor(
  endpoint: string,
  option: number | undefined,
  env: NodeJS.ProcessEnv = process.env,
): number | null {
  if (option !== undefined) return checkFdNumber(String(option));
  const raw = env[LISTEN_FD_ENV];
  if (raw === undefined || env[ENDPOINT_ENV] !== endpoint) return null;
  delete env[LISTEN_FD_ENV];
  return checkFdNumber(raw);
}

function checkFdNumber(raw: string): number {
  if (!/^(0|[1-9][0-9]{0,6})$/.test(raw))
    throw new InheritedListenerError('BAD_LISTEN_FD', -1, `not a file descriptor number: "${raw}"`);
  return Number(raw);
}

/**
 * Checks that `fd` is a listening AF_UNIX stream socket bound to
 * `endpoint`, and returns a close-on-exec duplicate of it for the server to
 * own (the inherited fd is not close-on-exec: the daemon's own children
 * must not hold it). The inherited fd is closed once it passed; when it
 * does not pass it is left open (it is not ours to close) and a typed error
 * is thrown.
 */
export function takeInheritedListener(fd: number, endpoint: string): number {
  let dup: number;
  try {
    dup = duplicateFd(fd);
  } catch (error) {
    throw new InheritedListenerError('NOT_A_LISTENER', fd, `fd ${fd} is not open`, error);
  }
  // FdServer.fromFd does the checks (listening, AF_UNIX, kind) and reads the
  // bound path; paused at once (before the loop can poll it), it accepts
  // nothing, and closing it closes only the duplicate it was given.
  let inspector: FdServer;
  try {
    inspector = FdServer.fromFd(dup);
  } catch (error) {
    closeFd(dup);
    throw new InheritedListenerError(
      'NOT_A_LISTENER',
      fd,
      `fd ${fd} is not a listening AF_UNIX socket (${(error as { code?: string }).code ?? (error as Error).message})`,
      error,
    );
  }
  inspector.pause();
  const { kind, path } = inspector;
  inspector.close();
  if (kind !== 'stream')
    throw new InheritedListenerError(
      'NOT_A_LISTENER',
      fd,
      `fd ${fd} is a ${kind} socket; a daemon endpoint is a stream socket`,
    );
  if (path !== endpoint)
    throw new InheritedListenerError(
      'WRONG_ENDPOINT',
      fd,
      `fd ${fd} is bound to ${JSON.stringify(path)}, not to the endpoint ${JSON.stringify(endpoint)}`,
    );
  const owned = duplicateFd(fd);
  closeFd(fd);
  return owned;
}
