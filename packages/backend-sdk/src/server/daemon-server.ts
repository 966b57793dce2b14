// serveDaemon: the serving glue a daemon author calls. It listens on a
// private Unix socket, checks each peer's uid with SO_PEERCRED, runs the
// endpoint mux over each connection's bytes, answers identity probes
// itself, and dispatches framed requests to the daemon's handler — several
// in flight per connection, answered in any order. Legacy-wire connections
// are handed to the daemon with every byte already read. Connections handed
// off by a broker enter through adopt() and are served the same way. This
// file accepts, refuses and closes connections; serving one is
// connection.ts's job, and a request that cannot be answered fails its
// connection alone.
import { EventEmitter } from 'node:events';
import { fstatSync } from 'node:fs';
import { chmod, stat, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { fdOf } from '@handoff/fdpass';
import { BackendEndpointMux } from '../mux.js';
import { PeerPolicy } from '../peer-policy.js';
import { preparePrivateSocketPath } from '../private-socket.js';
import { SlotSet } from '../slot-set.js';
import { Connection, type ConnectionHost } from './connection.js';
import { ServerConnectionError } from './errors.js';
import { listenFdFor, takeInheritedListener } from './inherited-listener.js';
import type { CloseOptions, ServeDaemonOptions } from './options.js';

/**
 * Events: 'connection' ({ connectionId, peer, adopted }), 'connectionClosed'
 * (connectionId; framed connections only — a legacy one is the daemon's once
 * handed over), 'connectionError' (ServerConnectionError), 'legacy'
 * (connectionId), 'close'. Listeners attached as soon as serveDaemon
 * resolves (before the caller's next await) see every connection, including
 * one that arrived while it was starting.
 */
export interface DaemonServer extends EventEmitter {
  readonly endpoint: string;
  /** Open framed connections (legacy ones are the daemon's). */
  readonly connectionCount: number;
  /**
   * Serves a connection handed off by a broker; `buffered` are bytes already
   * read from it, `prelude` bytes to send it before anything else (written
   * in the same batch as the answers to `buffered`). Returns false when the
   * connection is refused (closing, peer uid not allowed, connection limit):
   * the socket is then destroyed and nothing was written to it.
   */
  adopt(socket: Socket, buffered?: Uint8Array, prelude?: Uint8Array): boolean;
  /** Stops accepting, lets in-flight requests finish until the deadline, removes the socket file. */
  close(options?: CloseOptions): Promise<void>;
}

export async function serveDaemon(options: ServeDaemonOptions): Promise<DaemonServer> {
  const server = new DaemonServerImpl(options);
  await server.listen();
  server.openGate();
  return server;
}

/**
 * For a rehearsal of the handoff path (handoff-rehearsal.ts): `server`'s
 * adopt() minus the events, so the daemon's own code never sees the
 * rehearsal's connection. Null for a server that is not serveDaemon's, and
 * for one whose mux would not answer `clientBytes` itself as a probe (a
 * legacy detector that claims them would hand the connection to the daemon).
 */
export function rehearsalAdopter(
  server: Pick<DaemonServer, 'adopt'>,
  clientBytes: Uint8Array,
): DaemonServer['adopt'] | null {
  if (!(server instanceof DaemonServerImpl)) return null;
  try {
    if (server.muxer.poll(clientBytes).kind !== 'ProbeAnswered') return null;
  } catch {
    return null;
  }
  return (socket, buffered, prelude) => server.adoptUnseen(socket, buffered, prelude);
}

class DaemonServerImpl extends EventEmitter implements DaemonServer, ConnectionHost {
  readonly endpoint: string;
  readonly #mux: BackendEndpointMux;
  readonly #options: ServeDaemonOptions;
  readonly #peers: PeerPolicy;
  /**
   * Connections refused for their peer. A broker whose offer is refused
   * offers the same client once more before falling back: the same
   * connection under a new fd. It is refused again, but reported once.
   */
  readonly #refused = new RecentSockets(64);
  readonly #maxConnections: number;
  /** Open framed connections (a SlotSet, not a Set: see slot-set.ts). */
  readonly #connections = new SlotSet<Connection>();
  readonly #server: Server;
  #nextConnectionId = 1;
  #closing: Promise<void> | null = null;
  #socketInode: bigint | null = null;
  /**
   * Connections that arrived before serveDaemon resolved (the socket listens
   * before its mode and inode are settled). Served once the caller has had
   * its turn to attach listeners, so it sees a 'connection' event for every
   * connection — a daemon counting open connections for its idle timeout
   * must not miss one. They were accepted paused: nothing was read.
   */
  #early: Socket[] | null = [];

  constructor(options: ServeDaemonOptions) {
    super();
    this.#options = options;
    this.endpoint = options.endpoint;
    const ids = [...options.payloadProtocols].map((p) => (typeof p === 'number' ? p : p.id));
    this.#mux = new BackendEndpointMux({
      daemon: options.identity,
      servedPayloadProtocols: ids,
      ...(options.legacyDetector ? { legacyDetector: options.legacyDetector } : {}),
    });
    this.#peers = new PeerPolicy(options.allowedUids);
    this.#maxConnections = options.maxConnections ?? 1024;
    this.#server = createServer({ pauseOnConnect: true }, (socket) => {
      if (this.#early !== null) this.#early.push(socket);
      else this.#accept(socket, undefined, false);
    });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  async listen(): Promise<void> {
    const inherited = listenFdFor(this.endpoint, this.#options.listenFd);
    if (inherited !== null) return this.#listenOn(takeInheritedListener(inherited, this.endpoint));
    await preparePrivateSocketPath(this.endpoint);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ path: this.endpoint, readableAll: false, writableAll: false }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    await chmod(this.endpoint, 0o600);
    this.#socketInode = (await stat(this.endpoint, { bigint: true })).ino;
  }

  /**
   * Serves a listener bound by someone else (a broker). Its file is still
   * removed at close if it is the one we served: the daemon is its last
   * user (the broker stops routing to it first), and a daemon that outlived
   * a killed broker must not leave a dead socket file behind.
   */
  async #listenOn(fd: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ fd }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#socketInode =
      (await stat(this.endpoint, { bigint: true }).catch(() => null))?.ino ?? null;
  }

  /**
   * Serves the early connections after the code awaiting serveDaemon ran:
   * its continuation is a microtask, and setImmediate comes after those.
   */
  openGate(): void {
    setImmediate(() => {
      const early = this.#early ?? [];
      this.#early = null;
      for (const socket of early) this.#accept(socket, undefined, false);
    });
  }

  adopt(socket: Socket, buffered?: Uint8Array, prelude?: Uint8Array): boolean {
    return this.#accept(socket, buffered, true, prelude);
  }

  /** adopt() without the 'connection' and 'connectionClosed' events: see rehearsalAdopter. */
  adoptUnseen(socket: Socket, buffered?: Uint8Array, prelude?: Uint8Array): boolean {
    return this.#accept(socket, buffered, true, prelude, false);
  }

  #accept(
    socket: Socket,
    buffered: Uint8Array | undefined,
    adopted: boolean,
    prelude?: Uint8Array,
    seen = true,
  ): boolean {
    const id = this.#nextConnectionId++;
    if (this.#closing) {
      socket.destroy();
      return false;
    }
    const verdict = this.#peers.check(socket);
    if (!verdict.allowed) {
      // Before destroy(): the inode is read through the fd.
      const again = this.#refused.seen(socket);
      socket.destroy();
      if (!again) {
        this.emit(
          'connectionError',
          new ServerConnectionError('PEER_REJECTED', id, verdict.reason, verdict.cause),
        );
      }
      return false;
    }
    const { peer } = verdict;
    if (this.#connections.size >= this.#maxConnections) {
      socket.destroy();
      this.emit(
        'connectionError',
        new ServerConnectionError(
          'TOO_MANY_CONNECTIONS',
          id,
          `over the ${this.#maxConnections}-connection limit`,
        ),
      );
      return false;
    }
    const connection = new Connection(this, id, socket, peer);
    connection.slot = this.#connections.add(connection);
    // 'close' comes once: `on`, not `once`, which wraps every listener.
    socket.on('close', () => {
      this.#connections.delete(connection.slot, connection);
      connection.abortAll();
      if (seen) this.emit('connectionClosed', id);
    });
    if (seen) this.emit('connection', { connectionId: id, peer, adopted });
    connection.start(buffered, prelude);
    return true;
  }

  /** @internal */ get muxer(): BackendEndpointMux {
    return this.#mux;
  }
  /** @internal */ get serveOptions(): ServeDaemonOptions {
    return this.#options;
  }
  /** @internal */ get isClosing(): boolean {
    return this.#closing !== null;
  }
  /** @internal */ handOverLegacy(connection: Connection): void {
    this.#connections.delete(connection.slot, connection);
  }

  close(options: CloseOptions = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.deadlineMs ?? 5000);
    return this.#closing;
  }

  async #shutdown(deadlineMs: number): Promise<void> {
    const stopped = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const connection of this.#connections) connection.drain();
    const drained = Promise.all(this.#connections.values().map((c) => c.closed));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    for (const connection of this.#connections) connection.destroy();
    await Promise.all([stopped, ...this.#connections.values().map((c) => c.closed)]);
    await this.#removeSocketFile();
    this.emit('close');
  }

  /** Removes the socket file only if it is still the one we bound. */
  async #removeSocketFile(): Promise<void> {
    try {
      const info = await stat(this.endpoint, { bigint: true });
      if (info.ino === this.#socketInode) await unlink(this.endpoint);
    } catch {
      // Already gone.
    }
  }
}

/**
 * The last few sockets seen, by inode: every fd of one connection — ours,
 * the broker's, each copy passed to us — shares it, and sockfs never hands
 * an inode out twice while it is in use.
 */
class RecentSockets {
  readonly #inodes = new Set<bigint>();
  readonly #capacity: number;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Remembers the socket; true if it was already remembered. Unknown inodes never match. */
  seen(socket: Socket): boolean {
    let inode: bigint;
    try {
      inode = fstatSync(fdOf(socket), { bigint: true }).ino;
    } catch {
      return false;
    }
    if (this.#inodes.has(inode)) return true;
    this.#inodes.add(inode);
    if (this.#inodes.size > this.#capacity) {
      const oldest = this.#inodes.values().next().value;
      if (oldest !== undefined) this.#inodes.delete(oldest);
    }
    return false;
  }
}
