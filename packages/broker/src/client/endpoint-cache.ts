// The endpoint cache ("Hello-skip"): after a brokered connect, connectService
// remembers the daemon's socket (Negotiated.backend_pipe) and the identity
// the broker vouches for, and later connects straight to the daemon. Each
// hit is verified by the kernel before a byte is written: SO_PEERCRED of the
// connected socket must name the recorded pid (and our uid), and that pid's
// /proc start time must be the recorded one. Anything else drops the entry
// and the caller goes through the broker again, in the same call.
//
// Where the identity comes from: a handed-off socket's SO_PEERCRED names the
// broker (it accepted the connect), and Negotiated carries no daemon pid. So
// after the first brokered connect the cache asks the broker itself, off the
// hot path, with LIST_INSTANCES for the service: the instance whose endpoint
// is backend_pipe, in state "ready", carries the pid the broker verified
// (probe + SO_PEERCRED of its control channel + start time, DESIGN §2.4).
// Its start time is read from /proc at once. Until that answer is in, the
// entry is not used.
import { closeSync, openSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { AdminVerb, type Negotiated } from '@handoff/protocol';
import { adminRequest } from './admin-client.js';
import { procStartTicksAt } from './proc-start-time.js';

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
  /** Field 22 of /proc/<pid>/stat when the identity was recorded. */
  startTicks: number;
  /**
   * /proc/<pid>/stat, open while the entry lives: it reads only while that
   * very process exists (a recycled pid gets ESRCH), and a pread is cheaper
   * than opening the file on every hit. Closed when the entry goes.
   */
  statFd: number;
  /** Our uid when recorded: the daemon's must be it. */
  uid: number;
}

interface Entry {
  backendPipe: string;
  negotiated: Negotiated;
  identity: DaemonIdentity | null;
  learning: boolean;
  /** performance.now() before which a failed lookup is not tried again. */
  retryAt: number;
}

type PeerCredentialsOf = (socket: Socket) => { pid: number; uid: number };

const entries = new Map<string, Entry>();
let peerCredentialsOf: PeerCredentialsOf | null = null;
let loadingCredentials: Promise<void> | null = null;

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
  await loadPeerCredentials();
  if (peerCredentialsOf === null) return null;
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
    return { pid, startTicks, statFd, uid };
  }
  return null;
}

/**
 * SO_PEERCRED comes from @handoff/fdpass, loaded on first use so that
 * importing @handoff/broker/client never loads the addon.
 */
function loadPeerCredentials(): Promise<void> {
  loadingCredentials ??= import('@handoff/fdpass').then(
    (fdpass) => {
      peerCredentialsOf = fdpass.peerCredentials as PeerCredentialsOf;
    },
    () => {
      peerCredentialsOf = null;
    },
  );
  return loadingCredentials;
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
 * SO_PEERCRED already names the peer, so the first bytes are queued as
 * early as on a bare net.connect (Node sends them on 'connect'). Only when
 * the socket is not connected yet (no peer: the connect failed, or is still
 * being made) does it wait for 'connect' or 'error'. A hit costs one
 * getsockopt and one pread more than a bare net.connect. `signal` is
 * checked before the check; an abort then throws what `aborted()` makes.
 */
export function connectCached(
  key: string,
  initialData: Uint8Array | undefined,
  signal: AbortSignal | undefined,
  aborted: () => Error,
): Promise<CachedConnection | null> | CachedConnection | null {
  const entry = entries.get(key);
  if (entry === undefined || entry.identity === null || peerCredentialsOf === null) return null;
  const socket = connect({ path: entry.backendPipe });
  const peer = peerOf(socket);
  // pid 0: no peer yet. Anything else is a connected peer, judged now.
  if (peer !== null && peer.pid !== 0)
    return judged(key, entry, socket, peer, initialData, signal, aborted);
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
    return judged(key, entry, socket, peerOf(socket), initialData, signal, aborted);
  });
}

/** SO_PEERCRED of `socket`, or null when it cannot be read. */
function peerOf(socket: Socket): { pid: number; uid: number } | null {
  try {
    return peerCredentialsOf?.(socket) ?? null;
  } catch {
    return null;
  }
}

/** The hit, when `peer` is the recorded process; null (entry dropped, socket closed) otherwise. */
function judged(
  key: string,
  entry: Entry,
  socket: Socket,
  peer: { pid: number; uid: number } | null,
  initialData: Uint8Array | undefined,
  signal: AbortSignal | undefined,
  aborted: () => Error,
): CachedConnection | null {
  if (signal?.aborted) {
    socket.on('error', ignore);
    socket.destroy();
    throw aborted();
  }
  const identity = entry.identity;
  if (
    identity === null ||
    peer === null ||
    peer.pid !== identity.pid ||
    peer.uid !== identity.uid ||
    procStartTicksAt(identity.statFd) !== identity.startTicks
  ) {
    // Not the daemon the broker vouched for (restarted, gone with its pid
    // reused, or someone else bound the path): not one byte goes to it.
    socket.on('error', ignore);
    socket.destroy();
    dropEntry(key);
    return null;
  }
  // Yours from here, as on the reconnect route: an error (a reset, a failed
  // write) is emitted from a later tick, once the caller holds the socket.
  if (initialData !== undefined && initialData.length > 0) socket.write(initialData);
  return { socket, route: 'cache', negotiated: entry.negotiated };
}

function ignore(): void {}
