// startBroker: the broker process's wiring. One private Unix socket for
// clients (Hello routing and admin), one control socket for the daemons it
// spawns (persistent handoff channels), service definitions reloaded on
// change, metrics, and a bounded close. Policy lives in the modules it
// wires: hello-router, handoff/, backend-registry, version-policy, spawn-budget.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { lstatSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PeerPolicy, preparePrivateSocketPath, SlotSet } from '@handoff/backend-sdk';
import { FdServer, type FdSocket } from '@handoff/fdpass';
import { type DaemonProcess, ErrorCode, PROTOCOL_VERSION } from '@handoff/protocol';
import pino, { type Logger } from 'pino';
import { handleAdminRequest } from './admin.js';
import { BackendRegistry, shuttingDown } from './backend-registry.js';
import { brokerAdminProvider } from './broker-admin.js';
import type { ServiceConfigError, ServiceDefinition } from './config/definition.js';
import { loadServiceDefinitions } from './config/load.js';
import { watchServiceDefinitions } from './config/watch.js';
import { BackendChannel } from './handoff/control-channel.js';
import { HandoffTokenPool } from './handoff/token-pool.js';
import { CLIENT_SOCKET_OPTIONS, type ClientMode, serveClient } from './hello-router.js';
import {
  type BrokerMetrics,
  createBrokerMetrics,
  createMetricsRegistry,
  type MetricsRegistry,
} from './metrics.js';
import { defaultBrokerSocketPath } from './paths.js';
import type { RouterContext } from './router-context.js';
import { SpawnBudget } from './spawn-budget.js';
import { adoptListener } from './systemd/listen-fds.js';
import { selectDefinition } from './version-policy.js';

export interface BrokerOptions {
  /** The client socket; defaults to defaultBrokerSocketPath(). */
  socketPath?: string;
  /**
   * An already-listening AF_UNIX stream socket to serve clients on instead
   * of binding socketPath (socket activation: see src/systemd/). The broker
   * takes the fd; its socket file belongs to whoever bound it and is never
   * unlinked. socketPath then defaults to the socket's bound path.
   */
  listenFd?: number;
  /** A directory of service definition files. */
  configDir?: string;
  /** One service definition file. */
  configFile?: string;
  /** Definitions given in code (e.g. an embedded default configuration). */
  services?: unknown[];
  /** Peers allowed on both sockets; defaults to our own uid. */
  allowedUids?: readonly number[];
  /** How long a client may take to send its first frame (default 30 s). */
  helloDeadlineMs?: number;
  /** How long a backend may take to ack a handoff (default 5 s, the reference's). */
  handoffDeadlineMs?: number;
  /** The retry hint in Refused{FD_PRESSURE} when the broker runs out of fds (default 250 ms). */
  fdPressureRetryMs?: number;
  /** Stop spawned daemons on close (default true). */
  stopBackendsOnClose?: boolean;
  /** Reload definitions when their files change (default true). */
  watchConfig?: boolean;
  logger?: Logger;
}

/**
 * Events: 'config' (reload result), 'closing' (drain deadline in ms: close
 * began, by a call, a signal or an admin SHUTDOWN), 'close' (closed).
 */
export interface Broker extends EventEmitter {
  readonly socketPath: string;
  readonly controlPath: string;
  /** The daemons it knows, to inspect; routing and spawning stay the broker's own. */
  readonly registry: BackendRegistryView;
  readonly metrics: MetricsRegistry;
  definitions(): readonly ServiceDefinition[];
  /**
   * Refuses new Hellos with Refused{SHUTTING_DOWN}, stops accepting, lets
   * Hellos in progress finish for up to `deadlineMs` (default 5 s), then
   * closes what is left, stops its daemons (SIGTERM, then SIGKILL after
   * each one's stopGraceMs) and closes every control channel.
   */
  close(options?: { deadlineMs?: number }): Promise<void>;
  /** What close() still waits for, for a log line when it takes too long. */
  openWork(): { clients: number; channels: number; backends: string[] };
}

/** A daemon the broker knows, as its owner may see it (a live view: fields change). */
export interface BackendInfo {
  /** The service definition's name and version. */
  readonly key: string;
  readonly definition: ServiceDefinition;
  readonly endpoint: string;
  /** The process the broker spawned; null for one rediscovered after a broker restart. */
  readonly child: ChildProcess | null;
  readonly pid: number | null;
  /** Its verified identity, once probed. */
  readonly identity: DaemonProcess | null;
  readonly state: 'starting' | 'ready' | 'stopping';
  readonly startedAt: number;
  readonly lastRoutedAt: number;
  /** Clients routed to it so far. */
  readonly routed: number;
}

export interface BackendRegistryView {
  list(): readonly BackendInfo[];
}

export async function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  // Adopted first: its bound path says where the broker lives (the control
  // socket goes beside it).
  const adopted =
    options.listenFd === undefined
      ? null
      : adoptListener({ fd: options.listenFd, name: '' }, (fd) => {
          const server = FdServer.fromFd(fd, { reserveFd: true, ...CLIENT_SOCKET_OPTIONS });
          // Clients already queued (systemd accepts on our behalf until we
          // start) wait in the backlog until start() is ready to serve them.
          server.pause();
          return server;
        });
  let broker: BrokerImpl;
  try {
    broker = new BrokerImpl(options, adopted);
  } catch (error) {
    adopted?.close();
    throw error;
  }
  try {
    await broker.start();
  } catch (error) {
    adopted?.close();
    throw error;
  }
  return broker;
}

/**
 * SIGKILLs every daemon the broker spawned, at once: the CLI's last resort
 * when a shutdown overruns, so that no daemon outlives its broker.
 */
export function killBackendsNow(broker: Broker): void {
  if (broker instanceof BrokerImpl) broker.registry.killAll();
}

class BrokerImpl extends EventEmitter implements Broker {
  readonly socketPath: string;
  readonly controlPath: string;
  readonly registry: BackendRegistry;
  private readonly options: BrokerOptions;
  private readonly log: Logger;
  private readonly peers: PeerPolicy;
  private clientServer: FdServer | null = null;
  private controlServer: FdServer | null = null;
  /** Open client connections (a SlotSet, not a Set: clients come and go all the time). */
  private readonly clients = new SlotSet<FdSocket>();
  /** Set while accepts fail for want of fds; cleared by the next normal accept. */
  private underFdPressure = false;
  private readonly channels = new Set<BackendChannel>();
  private services: ServiceDefinition[] = [];
  private configErrors: ServiceConfigError[] = [];
  readonly metrics: MetricsRegistry = createMetricsRegistry();
  private readonly counters: BrokerMetrics;
  private watcher: { close(): void } | null = null;
  private connectionIds = 0n;
  readonly startedAt = Date.now();
  private readonly routerContext: RouterContext;
  private closing: Promise<void> | null = null;
  /** Set first thing in close(), before anything it calls can look. */
  private refusing = false;
  /** Called by each client close while close() drains. */
  private onClientClosed: (() => void) | null = null;
  /** Connections accepted so far: close() watches it to know the backlog is empty. */
  private accepted = 0;
  /** The client socket file we bound (dev, ino), so close() unlinks only ours. */
  private socketFile: { dev: number; ino: number } | null = null;
  /** An inherited listener (listenFd), served instead of binding socketPath. */
  private readonly adopted: FdServer | null;

  constructor(options: BrokerOptions, adopted: FdServer | null = null) {
    super();
    this.options = options;
    this.adopted = adopted;
    // An abstract or unnamed inherited socket has no path to put the control socket beside.
    const bound = adopted?.path.startsWith('/') ? adopted.path : undefined;
    this.socketPath = bound ?? options.socketPath ?? defaultBrokerSocketPath();
    const dir = dirname(this.socketPath);
    this.controlPath = join(dir, 'control.sock');
    this.log =
      options.logger ??
      pino({ name: 'handoff-broker', level: process.env.HANDOFF_LOG_LEVEL ?? 'info' });
    this.peers = new PeerPolicy(options.allowedUids);
    this.counters = createBrokerMetrics(this.metrics);
    this.registry = new BackendRegistry({
      servicesDir: join(dir, 'services'),
      controlPath: this.controlPath,
      budget: new SpawnBudget({}),
      onSpawn: (outcome) => this.counters.spawnAttemptsTotal.inc({ outcome }),
    });
    this.registry.on('gone', (backend, reason) => {
      this.counters.activeBackends.set(this.registry.list().length);
      this.log.info({ service: backend.key, reason }, 'backend gone');
    });
    this.registry.on('ready', (backend) => {
      this.counters.activeBackends.set(this.registry.list().length);
      this.log.info({ service: backend.key, pid: backend.pid }, 'backend ready');
    });
    const admin = brokerAdminProvider({
      socketPath: this.socketPath,
      controlPath: this.controlPath,
      startedAt: this.startedAt,
      registry: this.registry,
      metrics: this.metrics,
      definitions: () => this.services,
      configErrors: () => this.configErrors,
      connectionsOpen: () => this.clients.size,
      draining: () => this.closing !== null,
      shutdown: (deadlineMs) => void this.close({ deadlineMs }),
    });
    this.routerContext = {
      select: (name, wanted) =>
        this.refusing
          ? { ok: false, code: ErrorCode.SHUTTING_DOWN, reason: 'the broker is shutting down' }
          : selectDefinition(this.services, name, wanted),
      // Closing refuses a second offer's acquire too: the first backend
      // still serves the reconnect route until the drain ends.
      acquire: (definition) =>
        this.refusing
          ? Promise.reject(shuttingDown(`${definition.name}@${definition.version}`))
          : this.registry.acquire(definition),
      admin: (request) => handleAdminRequest(request, admin),
      nextConnectionId: () => ++this.connectionIds,
      tokens: new HandoffTokenPool(),
      helloDeadlineMs: options.helloDeadlineMs ?? 30_000,
      handoffDeadlineMs: options.handoffDeadlineMs ?? 5000,
      fdPressureRetryMs: options.fdPressureRetryMs ?? 250,
      daemonMinProtocol: PROTOCOL_VERSION,
      daemonMaxProtocol: PROTOCOL_VERSION,
      observeHello: (service, outcome, seconds) => {
        this.counters.helloTotal.inc({ service, outcome });
        this.counters.helloDuration.observe(seconds);
      },
      observeHandoff: (outcome, seconds) => {
        this.counters.handoffTotal.inc({ outcome });
        if (outcome !== 'reconnect') this.counters.handoffDuration.observe(seconds);
      },
      log: (level, fields, message) => this.log[level](fields, message),
    };
  }

  definitions(): readonly ServiceDefinition[] {
    return this.services;
  }

  async start(): Promise<void> {
    await this.reload();
    // An adopted socket's file is its binder's: nothing to prepare (or remove) there.
    if (this.adopted === null) await preparePrivateSocketPath(this.socketPath);
    await preparePrivateSocketPath(this.controlPath);
    this.controlServer = await FdServer.listen(this.controlPath, {
      kind: 'seqpacket',
      mode: 0o600,
    });
    this.controlServer.on('connection', (socket: FdSocket) => this.onControl(socket));
    this.controlServer.on('error', (error: Error) =>
      this.log.warn({ err: error }, 'control socket error'),
    );
    // A spare fd lets the broker answer Refused{FD_PRESSURE} when accept
    // fails with EMFILE/ENFILE, instead of leaving clients in the backlog.
    if (this.adopted !== null) {
      this.clientServer = this.adopted;
    } else {
      this.clientServer = await FdServer.listen(this.socketPath, {
        kind: 'stream',
        mode: 0o600,
        reserveFd: true,
        // Every byte past the Hello must reach the daemon (DESIGN §6): see
        // CLIENT_SOCKET_OPTIONS for how one read per event keeps them.
        ...CLIENT_SOCKET_OPTIONS,
      });
      const { dev, ino } = lstatSync(this.socketPath);
      this.socketFile = { dev, ino };
    }
    this.clientServer.on('connection', (socket: FdSocket) => this.onClient(socket, 'normal'));
    this.clientServer.on('pressure', (socket: FdSocket, code: string) => {
      if (!this.underFdPressure)
        this.log.warn({ code }, 'out of file descriptors; refusing Hellos');
      this.underFdPressure = true;
      this.onClient(socket, 'fd-pressure');
    });
    this.clientServer.on('error', (error: Error) =>
      this.log.warn({ err: error }, 'client socket error'),
    );
    this.adopted?.resume();
    const found = await this.registry.rediscover(this.services);
    for (const backend of found)
      this.log.info({ service: backend.key, pid: backend.pid }, 'rediscovered running backend');
    if (this.options.watchConfig !== false && (this.options.configDir || this.options.configFile)) {
      this.watcher = watchServiceDefinitions(this.configSource(), (result) => this.apply(result));
    }
    this.log.info(
      {
        socket: this.socketPath,
        services: this.services.length,
        ...(this.adopted === null ? {} : { adopted: true }),
      },
      'broker listening',
    );
  }

  private configSource() {
    return {
      ...(this.options.configDir ? { dir: this.options.configDir } : {}),
      ...(this.options.configFile ? { file: this.options.configFile } : {}),
      ...(this.options.services ? { embedded: this.options.services } : {}),
    };
  }

  private async reload(): Promise<void> {
    this.apply(await loadServiceDefinitions(this.configSource()));
  }

  private apply(result: Awaited<ReturnType<typeof loadServiceDefinitions>>): void {
    for (const error of result.errors)
      this.log.warn({ file: error.file, field: error.field }, error.message);
    this.services = result.services;
    this.configErrors = result.errors;
    this.emit('config', result);
  }

  private onClient(socket: FdSocket, mode: ClientMode): void {
    this.accepted++;
    if (mode === 'normal' && this.underFdPressure) {
      this.underFdPressure = false;
      this.log.info('file descriptors available again');
    }
    // Another uid (or a peer whose credentials cannot be read) gets nothing
    // at all, not even a Refused. (A client of ours arriving while we close
    // is served: its Hello is refused SHUTTING_DOWN.)
    const verdict = this.peers.check(socket);
    if (!verdict.allowed) {
      socket.close();
      return;
    }
    const { peer } = verdict;
    const slot = this.clients.add(socket);
    this.counters.connectionsOpen.set(this.clients.size);
    socket.once('close', () => {
      this.clients.delete(slot, socket);
      this.counters.connectionsOpen.set(this.clients.size);
      this.onClientClosed?.();
    });
    serveClient(socket, peer, this.routerContext, mode);
  }

  private onControl(socket: FdSocket): void {
    let channel: BackendChannel;
    try {
      channel = new BackendChannel(socket);
    } catch {
      socket.close();
      return;
    }
    if (!this.peers.checkPeer(channel.peer).allowed) {
      channel.close('peer uid not allowed');
      return;
    }
    this.channels.add(channel);
    channel.once('close', () => this.channels.delete(channel));
    channel.once('registered', () => void this.registry.attachChannel(channel));
  }

  close(options: { deadlineMs?: number } = {}): Promise<void> {
    if (!this.closing) {
      this.refusing = true;
      this.closing = this.shutdown(options.deadlineMs ?? 5000);
    }
    return this.closing;
  }

  openWork(): { clients: number; channels: number; backends: string[] } {
    return {
      clients: this.clients.size,
      channels: this.channels.size,
      backends: this.registry.list().map((b) => `${b.key} pid ${b.pid ?? '?'} ${b.state}`),
    };
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    // From here new Hellos are refused SHUTTING_DOWN and nothing acquires
    // a backend (see routerContext), so no daemon can start behind our back.
    this.emit('closing', deadlineMs);
    this.log.info({ drain_ms: deadlineMs }, 'broker shutting down');
    this.watcher?.close();
    this.controlServer?.close();
    await this.closeClientServer();
    await this.drainClients(deadlineMs);
    // Hellos still waiting on a spawn are refused now, by the registry...
    const stopped = this.registry.close('broker shutting down', {
      stopBackends: this.options.stopBackendsOnClose !== false,
    });
    // ...and their Refused written before whatever is left is cut.
    await nextTurn();
    for (const socket of this.clients) socket.close();
    await stopped;
    for (const channel of this.channels) channel.close('broker shutting down');
    this.log.info('broker closed');
    this.emit('close');
  }

  /**
   * Closing a listening socket resets the connections still in its backlog
   * (the clients see ECONNRESET mid-Hello). So the file goes first — a new
   * connect fails at once with ENOENT — and the server keeps accepting until
   * a whole loop turn brings nothing, each of those clients answered
   * Refused{SHUTTING_DOWN} by the router.
   */
  private async closeClientServer(): Promise<void> {
    const server = this.clientServer;
    if (!server || server.closed) return;
    if (this.adopted !== null) {
      // The socket is shared with whoever handed it over (systemd keeps its
      // own fd): connections still in the backlog wait there for the next
      // broker instead of being refused by this one.
      server.close();
      return;
    }
    try {
      const st = lstatSync(this.socketPath);
      if (st.dev === this.socketFile?.dev && st.ino === this.socketFile.ino)
        unlinkSync(this.socketPath);
    } catch {
      // Already gone: nothing can connect by path either way.
    }
    for (let turns = 0; turns < MAX_BACKLOG_TURNS; turns++) {
      const before = this.accepted;
      await nextTurn();
      if (this.accepted === before) break;
    }
    server.close();
  }

  /** Resolves when no client connection is open, or at the deadline. */
  private drainClients(deadlineMs: number): Promise<void> {
    if (this.clients.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.onClientClosed = null;
        resolve();
      };
      const timer = setTimeout(done, deadlineMs);
      this.onClientClosed = () => {
        if (this.clients.size === 0) done();
      };
    });
  }
}

/** Bounds the backlog drain; each turn accepts up to the server's accept budget. */
const MAX_BACKLOG_TURNS = 64;

/** Resolves after at least one poll phase: whatever was readable has been handled. */
async function nextTurn(): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
}
