// The endpoint cache ("Hello-skip"): after a brokered connect, connectService
// remembers the daemon's socket (Negotiated.backend_pipe) and the identity
// the broker vouches for, and later connects straight to the daemon. Each
// hit is verified by the kernel before a byte is written: SO_PEERCRED of the
// connected socket must name the recorded pid (and our uid), and that very
// process must still be running. The entry holds a pidfd of it
// (@handoff/fdpass ProcessHandle): one native call checks both. Where the
// kernel has no pidfd (before 5.3), it holds /proc/<pid>/stat open instead
// and compares the start time, a few µs more per hit. Anything else drops
// the entry and the caller goes through the broker again, in the same call.
//
// Where the identity comes from: a handed-off socket's SO_PEERCRED names the
// broker (it accepted the connect), and Negotiated carries no daemon pid. So
// after the first brokered connect the cache asks the broker itself, off the
// hot path, with LIST_INSTANCES for the service: the instance whose endpoint
// is backend_pipe, in state "ready", carries the pid the broker verified
// (probe + SO_PEERCRED of its control channel + start time, DESIGN §2.4).
// The process is pinned at once (pidfd, or its /proc start time). Until that
// answer is in, the entry is not used.
import { closeSync, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { ProcessHandle } from '@handoff/fdpass';
import { AdminVerb, type Negotiated } from '@handoff/protocol';
import { adminRequest } from './admin-client.js';
import { procStartTicksAt } from './proc-start-time.js';
import { connectUnix } from './unix-connect.js';

/** `on` (`1`, `true`, `yes`) or `off` (`0`, `false`, `no`) for every call of the process. */
export const ENDPOINT_CACHE_ENV = 'HANDOFF_ENDPOINT_CACHE';

/**
 * Off until a caller asks: a cached connect skips what the broker does per
 * Hello (version policy after a reload, rate limit, trace context, its
 * counters), so it is opted into, per call or per process.
 */
export const ENDPOINT_CACHE_DEFAULT = false;

/** Entries per process; the least recently used goes first. */
export const ENDPOINT_CACHE_MAX_ENTRIES = 64;

/** Deadline of the one LIST_INSTANCES exchange that records an identity. */
const LEARN_TIMEOUT_MS = 1000;

/** After a failed lookup, how long an entry waits before the next one. */
const LEARN_RETRY_MS = 30_000;

interface DaemonIdentity {
  pid: number;
  /** Our uid when recorded: the daemon's must be it. */
  uid: number;
  /** A pidfd of the process, open while the entry lives; null where the kernel has none. */
  handle: ProcessHandle | null;
  /**
   * Without a handle: /proc/<pid>/stat, open while the entry lives. It reads
   * only while that very process exists (a recycled pid gets ESRCH), and a
   * pread is cheaper than opening the file on every hit. -1 with a handle.
   */
  statFd: number;
  /** Without a handle: field 22 of /proc/<pid>/stat when recorded. */
  startTicks: number;
}

type Fdpass = typeof import('@handoff/fdpass');

interface Entry {
  backendPipe: string;
  negotiated: Negotiated;
  identity: DaemonIdentity | null;
  learning: boolean;
  /** performance.now() before which a failed lookup is not tried again. */
  retryAt: number;
}

const entries = new Map<string, Entry>();
/** @handoff/fdpass once loaded (null: it cannot be, and the cache is never used). */
let fdpass: Fdpass | null = null;
let loadingFdpass: Promise<void> | null = null;
/** Off only in tests, to run the /proc fallback on a kernel that has pidfds. */
let processHandles = true;

/** @internal Tests: pin identities by /proc start time, as without pidfds. */
export function useProcessHandles(on: boolean): void {
  processHandles = on;
}

/**
 * Whether this call may use the cache. HANDOFF_ENDPOINT_CACHE=off wins over
 * everything (the operator's switch); then `endpointCache` of the call; then
 * HANDOFF_ENDPOINT_CACHE=on; then ENDPOINT_CACHE_DEFAULT.
 */
export function endpointCacheEnabled(option: boolean | undefined): boolean {
  if (option === false) return false;
  const env = process.env[ENDPOINT_CACHE_ENV]?.trim().toLowerCase();
  if (env === 'off' || env === '0' || env === 'false' || env === 'no') return false;
  if (option === true) return true;
  if (env === 'on' || env === '1' || env === 'true' || env === 'yes') return true;
  return ENDPOINT_CACHE_DEFAULT;
}

/** brokerPath, service and wanted version: what the broker routed on. */
export function endpointCacheKey(brokerPath: string, service: string, version: string): string {
  return `${brokerPath}\0${service}\0${version}`;
}

/** Forgets every entry (tests, or a program that knows the daemons changed). */
export function clearEndpointCache(): void {
  for (const key of [...entries.keys()]) dropEntry(key);
}

function dropEntry(key: string): void {
  const entry = entries.get(key);
  if (entry === undefined) return;
  entries.delete(key);
  closeIdentity(entry.identity);
}

function closeIdentity(identity: DaemonIdentity | null): void {
  if (identity === null) return;
  if (identity.handle !== null) {
    identity.handle.close();
    return;
  }
  try {
    closeSync(identity.statFd);
  } catch {}
}

/** How many entries hold a verified identity (tests and diagnostics). */
export function endpointCacheSize(): number {
  let n = 0;
  for (const e of entries.values()) if (e.identity !== null) n++;
  return n;
}

/**
 * Remembers where a brokered connect ended up and, once per entry, asks the
 * broker who serves there. Never throws and never delays the caller.
 */
export function rememberEndpoint(
  key: string,
  brokerPath: string,
  service: string,
  negotiated: Negotiated,
): void {
  const backendPipe = negotiated.backendPipe;
  if (backendPipe === '') return;
  let entry = entries.get(key);
  if (entry === undefined || entry.backendPipe !== backendPipe) {
    dropEntry(key);
    entry = { backendPipe, negotiated, identity: null, learning: false, retryAt: 0 };
    setEntry(key, entry);
  }
  if (entry.identity !== null || entry.learning || performance.now() < entry.retryAt) return;
  entry.learning = true;
  const learning = entry;
  const done = learnIdentity(brokerPath, service, backendPipe).then(
    (identity) => {
      learning.learning = false;
      if (identity === null) learning.retryAt = performance.now() + LEARN_RETRY_MS;
      // The entry may have been dropped or replaced meanwhile.
      else if (entries.get(key) === learning) learning.identity = identity;
      else closeIdentity(identity);
    },
    () => {
      learning.learning = false;
      learning.retryAt = performance.now() + LEARN_RETRY_MS;
    },
  );
  inFlight.add(done);
  void done.finally(() => inFlight.delete(done));
}

const inFlight = new Set<Promise<void>>();

/** Resolves once every identity lookup started so far has ended (tests, benchmarks). */
export async function endpointCacheSettled(): Promise<void> {
  while (inFlight.size > 0) await Promise.all(inFlight);
}

function setEntry(key: string, entry: Entry): void {
  entries.delete(key);
  entries.set(key, entry);
  while (entries.size > ENDPOINT_CACHE_MAX_ENTRIES)
    dropEntry(entries.keys().next().value as string);
}

async function learnIdentity(
  brokerPath: string,
  service: string,
  backendPipe: string,
): Promise<DaemonIdentity | null> {
  await loadFdpass();
  if (fdpass === null) return null;
  const reply = await adminRequest(
    brokerPath,
    { verb: AdminVerb.LIST_INSTANCES, json: true, serviceName: service },
    { timeoutMs: LEARN_TIMEOUT_MS },
  );
  const body = JSON.parse(reply.body) as { instances?: unknown };
  if (!Array.isArray(body.instances)) return null;
  for (const instance of body.instances as Array<Record<string, unknown>>) {
    if (instance.endpoint !== backendPipe || instance.state !== 'ready') continue;
    const pid = instance.pid;
    if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return null;
    const uid = process.getuid?.();
    if (uid === undefined) return null;
    const handle = openHandle(fdpass, pid);
    if (handle !== null) return { pid, uid, handle, statFd: -1, startTicks: -1 };
    let statFd: number;
    try {
      statFd = openSync(`/proc/${pid}/stat`, 'r');
    } catch {
      return null;
    }
    const startTicks = procStartTicksAt(statFd);
    if (startTicks === null) {
      closeSync(statFd);
      return null;
    }
    return { pid, uid, handle: null, statFd, startTicks };
  }
  return null;
}

/**
 * A pidfd of `pid`, or null where there is none to be had (a kernel before
 * 5.3, a seccomp filter, an addon built before ProcessHandle): then the
 * /proc start time pins it. A pid already gone is null too, and the stat
 * open that follows fails the same way.
 */
function openHandle(module: Fdpass, pid: number): ProcessHandle | null {
  if (!processHandles || typeof module.ProcessHandle !== 'function') return null;
  try {
    return module.ProcessHandle.open(pid);
  } catch {
    return null;
  }
}

/**
 * SO_PEERCRED and pidfds come from @handoff/fdpass, loaded on first use so
 * that importing @handoff/broker/client never loads the addon.
 */
function loadFdpass(): Promise<void> {
  loadingFdpass ??= import('@handoff/fdpass').then(
    (module) => {
      fdpass = module;
    },
    () => {
      fdpass = null;
    },
  );
  return loadingFdpass;
}

export interface CachedConnection {
  socket: Socket;
  route: 'cache';
  negotiated: Negotiated;
}

/**
 * Connects straight to the cached daemon and checks who answered before
 * writing anything. Null (the entry is gone) when there is no verified
 * entry, the socket cannot be connected, or the peer is not the recorded
 * process; the caller then asks the broker. A Unix-socket connect() is
 * settled by the kernel inside the call (connected, or ENOENT /
 * ECONNREFUSED / EAGAIN), so this needs no deadline of its own and stays
 * off the connectService timer machinery. Usually the check runs at once:
 * net.connect() has made the connect() syscall before it returns, and
 * SO_PEERCRED already names the peer, so `initialData` reaches the daemon
 * inside this call (fdpass writeNow), sooner than a bare net.connect sends
 * it (on 'connect', a loop turn later). Only when the socket is not
 * connected yet (no peer: the connect failed, or is still being made) does
 * it wait for 'connect' or 'error'. A hit costs two native calls more than
 * a bare net.connect: the check (a getsockopt and a poll of the pidfd) and
 * the send. `signal` is checked before the check; an abort then throws
 * what `aborted()` makes.
 */
export function connectCached(
  key: string,
  initialData: Uint8Array | undefined,
  signal: AbortSignal | undefined,
  aborted: () => Error,
): Promise<CachedConnection | null> | CachedConnection | null {
  const entry = entries.get(key);
  const identity = entry?.identity ?? null;
  if (entry === undefined || identity === null || fdpass === null) return null;
  const socket = connectUnix(entry.backendPipe);
  const verdict = peerVerdict(fdpass, identity, socket);
  if (verdict !== null)
    return judged(fdpass, key, entry, socket, verdict, initialData, signal, aborted);
  const module = fdpass;
  return new Promise<boolean>((resolve) => {
    const onConnect = () => {
      socket.removeListener('error', onError);
      resolve(false);
    };
    const onError = () => {
      socket.removeListener('connect', onConnect);
      resolve(true);
    };
    socket.once('connect', onConnect);
    socket.once('error', onError);
  }).then((failed) => {
    if (failed) {
      socket.on('error', ignore);
      socket.destroy();
      dropEntry(key);
      return null;
    }
    // Connected and still no peer to name: not the daemon.
    const connected = peerVerdict(module, identity, socket) ?? false;
    return judged(module, key, entry, socket, connected, initialData, signal, aborted);
  });
}

/**
 * Whether the peer of `socket` is the recorded process: true or false, or
 * null while the kernel names no peer yet (a connect in progress, or one
 * that failed).
 */
function peerVerdict(module: Fdpass, identity: DaemonIdentity, socket: Socket): boolean | null {
  try {
    if (identity.handle !== null)
      return module.peerIsProcess(socket, identity.handle, identity.uid);
    const peer = module.peerCredentials(socket);
    if (peer.pid === 0) return null;
    return (
      peer.pid === identity.pid &&
      peer.uid === identity.uid &&
      procStartTicksAt(identity.statFd) === identity.startTicks
    );
  } catch {
    return null;
  }
}

/** The hit when `isDaemon`; null (entry dropped, socket closed) otherwise. */
function judged(
  module: Fdpass,
  key: string,
  entry: Entry,
  socket: Socket,
  isDaemon: boolean,
  initialData: Uint8Array | undefined,
  signal: AbortSignal | undefined,
  aborted: () => Error,
): CachedConnection | null {
  if (signal?.aborted) {
    socket.on('error', ignore);
    socket.destroy();
    throw aborted();
  }
  if (!isDaemon) {
    // Not the daemon the broker vouched for (restarted, gone with its pid
    // reused, or someone else bound the path): not one byte goes to it.
    socket.on('error', ignore);
    socket.destroy();
    dropEntry(key);
    return null;
  }
  // Yours from here, as on the reconnect route: an error (a reset, a failed
  // write) is emitted from a later tick, once the caller holds the socket.
  if (initialData !== undefined && initialData.length > 0) {
    // Sent now, not on Node's 'connect' a loop turn later, behind the rest
    // of this call and the caller's code. Whenever the daemon, woken by the
    // connect, was ready for it sooner than that, the wait showed: a cache
    // hit was ~1.2× a bare connect (tools/bench/RESULTS.md, 2026-12-07
    // 09:07). Node writes whatever the kernel did not take.
    const taken = module.writeNow(socket, initialData);
    if (taken < initialData.length) socket.write(initialData.subarray(taken));
  }
  return { socket, route: 'cache', negotiated: entry.negotiated };
}

function ignore(): void {}
