import { EventEmitter } from 'node:events';
import { dirname, join } from 'node:path';
import { PeerPolicy, preparePrivateSocketPath } from '@handoff/backend-sdk';
import type { FdServer, FdSocket } from '@handoff/fdpass';
import type { Logger } from 'pino';
import { handleAdminRequest } from './admin.js';
import { BackendRegistry, keyOf, shuttingDown } from './backend-registry.js';
import { brokerAdminProvider } from './broker-admin.js';
import type { Broker, BrokerOptions } from './broker-api.js';
import { ClientConnections } from './client-connections.js';
import { closeClientListener, nextTurn } from './client-listener-close.js';
import type { ServiceConfigError, ServiceDefinition } from './config/definition.js';
import { loadServiceDefinitions } from './config/load.js';
import { ConfigReloadKeeper, keptMessage } from './config/reload-state.js';
import { watchServiceDefinitions } from './config/watch.js';
import { EventJournal } from './events/journal.js';
import { journalBroker, journalRegistry, journalRouterObservers } from './events/observe.js';
import { type FdStoreWiring, wireFdStore } from './fd-store-wiring.js';
import { BackendChannel } from './handoff/control-channel.js';
import { HandoffTokenPool } from './handoff/token-pool.js';
import { CLIENT_SOCKET_OPTIONS, type ClientMode, serveClient } from './hello-router.js';
import { type StaleWatch, staleWatchFor } from './lifecycle/stale-watch.js';
import { createBrokerLogger } from './log-output.js';
import {
  type BrokerMetrics,
  createBrokerMetrics,
  createMetricsRegistry,
  type MetricsRegistry,
} from './metrics.js';
import { defaultBrokerSocketPath } from './paths.js';
import { observeRegistry } from './registry-observers.js';
import {
  type RouterContext,
  routerDeadlines,
  routerObservers,
  routerRateLimit,
  routerSelect,
} from './router-context.js';
import { RpCompat } from './rp-compat/rp-compat.js';
import { SpawnBudget } from './spawn-budget.js';
import { UpgradeError } from './upgrade/errors.js';
import {
  RETIRE_DRAIN_MS,
  stillStopping,
  type UpgradeResult,
  Upgrader,
} from './upgrade/handover.js';
import {
  listenKeepingFile,
  type SocketFile,
  socketFileAt,
  unlinkOwnSocket,
} from './upgrade/listeners.js';
import { adoptBackends, listenerFromState, type UpgradeTakeover } from './upgrade/takeover.js';

/**
 * One running broker: its sockets, definitions, daemons, fd store, upgrade
 * and shutdown. Started (and its options checked) by broker-launch.ts.
 */
export class BrokerImpl extends EventEmitter implements Broker {
  readonly socketPath: string;
  readonly controlPath: string;
  readonly registry: BackendRegistry;
  private readonly options: BrokerOptions;
  private readonly log: Logger;
  private readonly peers: PeerPolicy;
  private clientServer: FdServer | null = null;
  private controlServer: FdServer | null = null;
  /** Open client connections: counted, drained and cut by one owner. */
  private readonly clients: ClientConnections;
  /** Set while accepts fail for want of fds; cleared by the next normal accept. */
  private underFdPressure = false;
  private readonly channels = new Set<BackendChannel>();
  /** Fds daemons deposited, for the next daemon of their service (src/fd-store*.ts). */
  readonly fdStore: FdStoreWiring;
  private services: ServiceDefinition[] = [];
  private configErrors: ServiceConfigError[] = [];
  /** A reload with problems keeps the last good definitions (config/reload-state.ts). */
  private readonly configReload = new ConfigReloadKeeper();
  readonly metrics: MetricsRegistry = createMetricsRegistry();
  /** Lifecycle events (src/events/): the options' journal, else one of our own. */
  readonly journal: EventJournal;
  private readonly budget = new SpawnBudget({});
  private readonly counters: BrokerMetrics;
  private watcher: { close(): void } | null = null;
  private readonly staleWatch: StaleWatch;
  private connectionIds = 0n;
  readonly startedAt = Date.now();
  private readonly routerContext: RouterContext;
  private closing: Promise<void> | null = null;
  /** Set first thing in close(), before anything it calls can look. */
  private refusing = false;
  /** Connections accepted so far: close() watches it to know the backlog is empty. */
  private accepted = 0;
  /** The client socket file we bound (dev, ino), so close() unlinks only ours. */
  private socketFile: SocketFile | null = null;
  /** An inherited listener (listenFd), served instead of binding socketPath. */
  private readonly adopted: FdServer | null;
  /** The client socket's file is a service manager's: never unlinked, its backlog left waiting. */
  private listenerShared: boolean;
  /** The control socket file we bound (or took over), removed at close while still ours. */
  private controlFile: SocketFile | null = null;
  private readonly upgrader: Upgrader;
  /** Set at an upgrade's commit: this broker finishing its last Hellos. */
  private retiring: Promise<void> | null = null;
  /** BrokerOptions.rpCompat: the running-process listener and `.servicedef` files (src/rp-compat/). */
  private readonly rp: RpCompat | null;

  constructor(
    options: BrokerOptions,
    adopted: FdServer | null,
    private readonly takeover: UpgradeTakeover | null,
  ) {
    super();
    this.options = options;
    this.adopted = adopted;
    this.rp = options.rpCompat
      ? new RpCompat(options.rpCompat, {
          serve: (socket, mode) => this.onClient(socket, mode),
          log: (level, fields, message) => this.log[level](fields, message),
          reload: options.watchConfig === false ? undefined : () => void this.reload(),
        })
      : null;
    this.listenerShared = adopted !== null;
    // An abstract or unnamed inherited socket has no path to put the control socket beside.
    const bound = adopted?.path.startsWith('/') ? adopted.path : undefined;
    this.socketPath = bound ?? options.socketPath ?? defaultBrokerSocketPath();
    const dir = dirname(this.socketPath);
    this.controlPath = join(dir, 'control.sock');
    this.log = options.logger ?? createBrokerLogger();
    this.journal =
      options.journal ??
      new EventJournal({ stateDir: options.stateDir, onTrouble: (l, m, f) => this.log[l](f, m) });
    this.peers = new PeerPolicy(options.allowedUids);
    this.counters = createBrokerMetrics(this.metrics);
    this.clients = new ClientConnections((open) => this.counters.connectionsOpen.set(open));
    this.registry = new BackendRegistry({
      servicesDir: join(dir, 'services'),
      controlPath: this.controlPath,
      budget: this.budget,
      onSpawn: (outcome, service) => this.counters.spawnAttemptsTotal.inc({ service, outcome }),
      ownDaemonSockets: options.ownDaemonSockets !== false,
      output: {
        stateDir: options.stateDir,
        logNotice: (level, message, fields) => this.log[level](fields, message),
      },
    });
    this.fdStore = wireFdStore(this.registry, (level, fields, message) =>
      this.log[level](fields, message),
    );
    this.staleWatch = staleWatchFor(this.registry, (level, fields, msg) =>
      this.log[level](fields, msg),
    );
    observeRegistry(this.registry, this.counters, this.log);
    journalRegistry(this.journal, this.registry);
    journalBroker(this.journal, this);
    const admin = brokerAdminProvider({
      socketPath: this.socketPath,
      controlPath: this.controlPath,
      startedAt: this.startedAt,
      registry: this.registry,
      metrics: this.metrics,
      definitions: () => this.services,
      configErrors: () => this.configErrors,
      configReload: () => this.configReload.status(),
      connectionsOpen: () => this.clients.size,
      countCacheSession: (service) => this.counters.endpointCacheSessionsTotal.inc({ service }),
      fdStore: () => this.fdStore.counts(),
      draining: () => this.closing !== null,
      stateDir: options.stateDir ?? null,
      shutdown: (deadlineMs) => void this.close({ deadlineMs }),
      upgrade: (readyDeadlineMs) => this.upgrade({ readyDeadlineMs }),
      diagnostics: {
        options,
        budget: this.budget,
        journal: this.journal,
        channels: () => this.channels,
      },
    });
    this.upgrader = new Upgrader(
      {
        socketPath: this.socketPath,
        controlPath: this.controlPath,
        registry: this.registry,
        clientServer: () => this.clientServer,
        controlServer: () => this.controlServer,
        clientSocketOwned: () => !this.listenerShared,
        channels: () => this.channels,
        fdStore: () => this.fdStore.store.export(),
        log: (level, fields, message) => this.log[level](fields, message),
      },
      options.successor,
    );
    this.routerContext = {
      select: routerSelect(
        () => this.services,
        () => this.refusing,
      ),
      // Closing refuses a second offer's acquire too: the first backend
      // still serves the reconnect route until the drain ends.
      acquire: (definition) =>
        this.refusing
          ? Promise.reject(shuttingDown(keyOf(definition)))
          : this.upgrader.acquire(definition),
      acquireNow: (definition) => (this.refusing ? null : this.upgrader.acquireNow(definition)),
      admin: (request) => handleAdminRequest(request, admin),
      nextConnectionId: () => ++this.connectionIds,
      tokens: new HandoffTokenPool(),
      ...routerDeadlines(options),
      ...routerRateLimit(options.helloRateLimit),
      ...journalRouterObservers(
        this.journal,
        routerObservers(this.counters, () => this.services),
      ),
      log: (level, fields, message) => {
        if (typeof fields !== 'function') this.log[level](fields, message);
        else if (this.log.isLevelEnabled(level)) this.log[level](fields(), message);
      },
    };
  }

  definitions(): readonly ServiceDefinition[] {
    return this.services;
  }

  async start(): Promise<void> {
    await this.reload();
    const { takeover } = this;
    await this.rp?.prepare(takeover !== null);
    const taken = takeover ? await takeover.receive() : null;
    if (taken !== null) {
      // An upgrade: the old broker's listeners, paused until it commits.
      this.controlServer = listenerFromState(taken.control, this.controlPath, {});
      this.listenerShared = !taken.client.owned;
      this.socketFile = taken.client.owned ? socketFileAt(this.socketPath) : null;
      this.controlFile = socketFileAt(this.controlPath);
    } else {
      // An adopted socket's file is its binder's: nothing to prepare (or remove) there.
      if (this.adopted === null) await preparePrivateSocketPath(this.socketPath);
      await preparePrivateSocketPath(this.controlPath);
      // Bound so that closing never removes a file a successor owns (upgrade/listeners.ts).
      const control = await listenKeepingFile(this.controlPath, { kind: 'seqpacket', mode: 0o600 });
      this.controlServer = control.server;
      this.controlFile = control.file;
    }
    this.controlServer.on('connection', (socket: FdSocket) => this.onControl(socket));
    this.controlServer.on('error', (error: Error) =>
      this.log.warn({ err: error }, 'control socket error'),
    );
    // A spare fd lets the broker answer Refused{FD_PRESSURE} when accept
    // fails with EMFILE/ENFILE, instead of leaving clients in the backlog.
    if (this.adopted !== null) {
      this.clientServer = this.adopted;
    } else if (taken !== null) {
      this.clientServer = listenerFromState(taken.client, this.socketPath, {
        reserveFd: true,
        ...CLIENT_SOCKET_OPTIONS,
      });
    } else {
      const client = await listenKeepingFile(this.socketPath, {
        kind: 'stream',
        mode: 0o600,
        reserveFd: true,
        // Every byte past the Hello must reach the daemon (DESIGN §6): see
        // CLIENT_SOCKET_OPTIONS for how one read per event keeps them.
        ...CLIENT_SOCKET_OPTIONS,
      });
      this.clientServer = client.server;
      this.socketFile = client.file;
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
    if (takeover && taken !== null) {
      await adoptBackends(taken, this.takeoverParts());
      await takeover.ready();
      this.controlServer?.resume();
      this.clientServer?.resume();
    } else {
      this.adopted?.resume();
      const found = await this.registry.rediscover(this.services);
      for (const backend of found)
        this.log.info(
          { service: backend.key, daemon_pid: backend.pid },
          'rediscovered running backend',
        );
    }
    await this.rp?.listen(taken !== null);
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
    this.journal.record({ kind: 'broker_started', pid: process.pid, message: this.socketPath });
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
    result = this.rp?.merge(result) ?? result;
    for (const error of result.errors)
      this.log.warn({ file: error.file, field: error.field }, error.message);
    const { services, failure } = this.configReload.accept(result);
    if (failure !== null)
      this.log.warn(
        { file: failure.file, line: failure.line, column: failure.column, kept: services.length },
        keptMessage(failure),
      );
    this.services = services;
    this.configErrors = result.errors;
    this.staleWatch.update(services);
    this.emit('config', { services, errors: result.errors });
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
    this.clients.add(socket);
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
    this.track(channel);
    channel.once('registered', () => void this.registry.attachChannel(channel));
  }

  private track(channel: BackendChannel): void {
    this.channels.add(channel);
    this.fdStore.track(channel);
    channel.once('close', () => this.channels.delete(channel));
  }

  private takeoverParts(): Parameters<typeof adoptBackends>[1] {
    return {
      registry: this.registry,
      definitions: this.services,
      track: (channel) => this.track(channel),
      importFdStore: (state, fds) => this.fdStore.store.import(state, fds),
      stateDir: this.options.stateDir,
      logNotice: (level, message, fields) => this.log[level](fields, message),
      log: (level, fields, message) => this.log[level](fields, message),
    };
  }

  upgrade(options: { readyDeadlineMs?: number } = {}): Promise<UpgradeResult> {
    if (this.closing !== null)
      return Promise.reject(new UpgradeError('NOT_SERVING', 'the broker is closing'));
    const joined = this.upgrader.running;
    const upgrading = this.upgrader.upgrade(options.readyDeadlineMs || undefined);
    if (joined) return upgrading;
    this.emit('upgrading');
    upgrading.then(
      (result) => {
        this.retiring = this.retire(result);
        this.closing ??= this.retiring;
        this.emit('upgraded', result);
      },
      (error: UpgradeError) => {
        this.log.warn({ err: error }, 'upgrade failed; still serving');
        this.emit('upgrade-failed', error);
      },
    );
    return upgrading;
  }

  /**
   * After an upgrade's commit: accept nothing more (the socket files are
   * the successor's now), finish the Hellos in progress (by the reconnect
   * route: the channels went to the successor), leave the daemons running.
   */
  private async retire(result: UpgradeResult): Promise<void> {
    this.log.info({ successor: result.newPid, switch_ms: result.switchMs }, 'broker handed over');
    this.watcher?.close();
    this.staleWatch.close();
    this.clientServer?.close();
    this.controlServer?.close();
    void this.registry.close('handed over to the successor', { stopBackends: false });
    await this.rp?.handedOver();
    await this.clients.drain(RETIRE_DRAIN_MS);
    this.clients.closeAll();
    await stillStopping(this.registry);
    for (const channel of this.channels) channel.close('handed over to the successor');
    this.fdStore.close();
    await this.closeOwnJournal();
    this.log.info('broker closed');
    this.emit('close');
  }

  close(options: { deadlineMs?: number } = {}): Promise<void> {
    if (!this.closing) {
      this.refusing = true;
      const deadlineMs = options.deadlineMs ?? 5000;
      // An upgrade under way is called off first; if it committed all the
      // same, the daemons are the successor's: this broker only retires.
      const closing = this.upgrader.running
        ? this.upgrader
            .abort()
            .then((handedOver) =>
              handedOver ? (this.retiring ?? undefined) : this.shutdown(deadlineMs),
            )
        : this.shutdown(deadlineMs);
      this.closing = closing;
      return closing;
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
    await this.staleWatch.close();
    this.controlServer?.close();
    unlinkOwnSocket(this.controlPath, this.controlFile);
    await this.closeClientServer();
    await this.rp?.close();
    await this.clients.drain(deadlineMs);
    // Hellos still waiting on a spawn are refused now, by the registry...
    const stopped = this.registry.close('broker shutting down', {
      stopBackends: this.options.stopBackendsOnClose !== false,
    });
    // ...and their Refused written before whatever is left is cut.
    await nextTurn();
    this.clients.closeAll();
    await stopped;
    // A stopping daemon's last deposit was read (and counted) by now.
    await nextTurn();
    this.fdStore.close();
    for (const channel of this.channels) channel.close('broker shutting down');
    await this.closeOwnJournal();
    this.log.info('broker closed');
    this.emit('close');
  }

  /** A journal the broker made is closed (its last events written) before close() resolves; an embedder's stays theirs. */
  private async closeOwnJournal(): Promise<void> {
    if (this.options.journal === undefined) await this.journal.close();
  }

  private async closeClientServer(): Promise<void> {
    const server = this.clientServer;
    if (!server || server.closed) return;
    await closeClientListener(server, {
      shared: this.listenerShared,
      socketPath: this.socketPath,
      socketFile: this.socketFile,
      accepted: () => this.accepted,
    });
  }
}
