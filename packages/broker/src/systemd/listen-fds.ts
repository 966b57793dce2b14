// Socket activation (sd_listen_fds): reads LISTEN_PID / LISTEN_FDS /
// LISTEN_FDNAMES, picks the broker's listener, and adopts it as an FdServer.
// Not the server itself (broker-server.ts) nor notifications (notify.ts).
import { closeFd, duplicateFd, FdPassError, type FdServer } from '@handoff/fdpass';
import { SocketActivationError } from './errors.js';

/** The first inherited fd (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** The LISTEN_FDNAMES entry the broker's client socket goes by (FileDescriptorName=). */
export const BROKER_FD_NAME = 'broker';

export interface InheritedFd {
  fd: number;
  /** From LISTEN_FDNAMES; systemd's default is "unknown". */
  name: string;
}

const LISTEN_KEYS = ['LISTEN_PID', 'LISTEN_PIDFDID', 'LISTEN_FDS', 'LISTEN_FDNAMES'] as const;

/**
 * The fds passed to this process, or null when none were (no LISTEN_FDS, or
 * LISTEN_PID names another process: the variables were inherited from a
 * parent and are not for us). Throws SocketActivationError BAD_LISTEN_FDS
 * for variables meant for us but malformed.
 */
export function parseListenFds(env: NodeJS.ProcessEnv, pid: number): InheritedFd[] | null {
  const { LISTEN_PID: listenPid, LISTEN_FDS: listenFds, LISTEN_FDNAMES: names } = env;
  if (listenFds === undefined || listenPid === undefined) return null;
  if (!/^[1-9][0-9]*$/.test(listenPid)) {
    throw new SocketActivationError('BAD_LISTEN_FDS', `LISTEN_PID is not a pid: "${listenPid}"`);
  }
  if (Number(listenPid) !== pid) return null;
  if (!/^(0|[1-9][0-9]{0,5})$/.test(listenFds)) {
    throw new SocketActivationError('BAD_LISTEN_FDS', `LISTEN_FDS is not a count: "${listenFds}"`);
  }
  const count = Number(listenFds);
  // Empty means no names given (as unset does).
  const nameList = names === undefined || names === '' ? [] : names.split(':');
  if (nameList.length > 0 && nameList.length !== count) {
    throw new SocketActivationError(
      'BAD_LISTEN_FDS',
      `LISTEN_FDNAMES has ${nameList.length} name(s) for ${count} fd(s): "${names}"`,
    );
  }
  return Array.from({ length: count }, (_, i) => ({
    fd: LISTEN_FDS_START + i,
    name: nameList[i] || 'unknown',
  }));
}

/** Removes the LISTEN_* variables so that nothing this process spawns sees them. */
export function unsetListenEnv(env: NodeJS.ProcessEnv): void {
  for (const key of LISTEN_KEYS) delete env[key];
}

/**
 * The fd the broker serves clients on: the one named "broker", else the
 * only one. Throws BAD_LISTEN_FDS when that is ambiguous or there is none.
 */
export function pickBrokerFd(fds: readonly InheritedFd[]): InheritedFd {
  const named = fds.filter((f) => f.name === BROKER_FD_NAME);
  if (named.length === 1) return named[0]!;
  if (named.length === 0 && fds.length === 1) return fds[0]!;
  const listed = fds.map((f) => `${f.fd} (${f.name})`).join(', ') || 'none';
  throw new SocketActivationError(
    'BAD_LISTEN_FDS',
    `cannot tell which inherited fd is the broker's client socket: expected one named "${BROKER_FD_NAME}" or exactly one fd; got ${listed}`,
  );
}

/**
 * Takes an inherited fd as the broker's listener: it must be a listening
 * AF_UNIX stream socket (else NOT_A_LISTENER). The fd is moved to a
 * close-on-exec duplicate first — inherited fds are not close-on-exec, and
 * spawned daemons must not hold the broker's socket — and the original is
 * closed either way.
 */
export function adoptListener(inherited: InheritedFd, adopt: (fd: number) => FdServer): FdServer {
  const { fd, name } = inherited;
  const what = `inherited fd ${fd}${name === '' ? '' : ` (${name})`}`;
  let dup: number;
  try {
    dup = duplicateFd(fd);
  } catch (error) {
    throw new SocketActivationError(
      'NOT_A_LISTENER',
      `${what} is not open (${(error as { code?: string }).code ?? (error as Error).message})`,
      { cause: error },
    );
  }
  closeFd(fd);
  let server: FdServer;
  try {
    server = adopt(dup);
  } catch (error) {
    // fromFd leaves the fd to us when its checks refuse it (the only way it fails in practice).
    try {
      closeFd(dup);
    } catch {
      // Closed by fromFd after all: nothing held.
    }
    // The code, not the message: that names the duplicate, not the fd the user passed.
    const why = error instanceof FdPassError ? error.code : String(error);
    throw new SocketActivationError(
      'NOT_A_LISTENER',
      `${what} is not a listening Unix socket (${why})`,
      { cause: error },
    );
  }
  if (server.kind !== 'stream') {
    server.close();
    throw new SocketActivationError(
      'NOT_A_LISTENER',
      `${what} is a ${server.kind} socket; the broker's client socket is a stream socket (ListenStream=)`,
    );
  }
  return server;
}

/** Closes inherited fds nobody adopted, so that they do not outlive their purpose. */
export function closeUnused(fds: readonly InheritedFd[], used: InheritedFd): void {
  for (const f of fds) {
    if (f.fd === used.fd) continue;
    try {
      closeFd(f.fd);
    } catch {
      // Already closed: nothing held.
    }
  }
}
