// What an embedder of the broker sees: the options startBroker takes, the
// Broker it returns, and the read-only view of its daemons. Types only; the
// server that implements them is broker-server.ts.
import type { EventEmitter } from 'node:events';
import type { SpawnedProcess } from '@handoff/fdpass';
import type { DaemonProcess } from '@handoff/protocol';
import type { Logger } from 'pino';
import type { ConfigOrigin } from './admin-diagnostics.js';
import type { ServiceDefinition } from './config/definition.js';
import type { EventJournal } from './events/journal.js';
import type { HelloRateLimitOptions } from './hello-rate-limit.js';
import type { RestartOptions, RestartOutcome } from './lifecycle/rolling-restart.js';
import type { MetricsRegistry } from './metrics.js';
import type { RpCompatOptions } from './rp-compat/rp-compat.js';
import type { UpgradeResult } from './upgrade/handover.js';
import type { SuccessorCommand } from './upgrade/successor.js';

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
  /**
   * Hellos per verified peer uid (a token bucket: default 200/s, burst 400,
   * 1024 uids tracked); over it, Refused{RATE_LIMITED, retry_after_ms}.
   * `false` turns the limit off. Admin requests are never limited.
   */
  helloRateLimit?: HelloRateLimitOptions | false;
  /**
   * Run even as root (euid 0). Without it a root broker refuses to start
   * (RootRefusalError RUNNING_AS_ROOT) unless HANDOFF_ALLOW_ROOT=1 is set;
   * an explicit `false` refuses whatever the environment says.
   */
  allowRoot?: boolean;
  /** Stop spawned daemons on close (default true). */
  stopBackendsOnClose?: boolean;
  /** Reload definitions when their files change (default true). */
  watchConfig?: boolean;
  /** Bind each daemon's endpoint and pass it in, so early clients wait (default true; lifecycle/owned-socket.ts). */
  ownDaemonSockets?: boolean;
  /**
   * The broker's own log (a pino Logger). Default: createBrokerLogger() —
   * stderr, pretty on a TTY and JSON otherwise ($HANDOFF_LOG_FORMAT,
   * $HANDOFF_LOG_LEVEL). Pass `pino({ level: 'silent' })` to silence it.
   */
  logger?: Logger;
  /**
   * Where spawned daemons' stdout and stderr are written
   * (`<stateDir>/logs/<service>-<version>.log`, see src/logs/); `serve`
   * passes defaultStateDir(). Absent: output is kept in memory only (the
   * tail a spawn failure reports).
   */
  stateDir?: string;
  /**
   * Also serve running-process clients (src/rp-compat/): listen at RP's
   * shared v1 broker address and load `.servicedef` files beside our
   * definitions. `true` takes both from process.env.
   */
  rpCompat?: RpCompatOptions | true;
  /** How upgrade() starts the successor; default: this process's own command line (src/upgrade/). */
  successor?: SuccessorCommand;
  /**
   * The lifecycle event journal to record to (src/events/; the caller
   * closes it). Default: one of the broker's own at `<stateDir>/events.jsonl`
   * (1 MiB × 2 files), in memory only without a stateDir.
   */
  journal?: EventJournal;
  /** How a front end (`serve`) chose its settings, for DUMP (flag, env, default). */
  configOrigins?: Readonly<Record<string, ConfigOrigin>>;
}

/**
 * Events: 'config' (reload result), 'closing' (drain deadline in ms: close
 * began, by a call, a signal or an admin SHUTDOWN), 'close' (closed);
 * 'upgrading', then 'upgraded' (UpgradeResult) or 'upgrade-failed' (UpgradeError).
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
  /**
   * Hands over to a successor broker process (src/upgrade/): resolves once
   * it serves; this broker then finishes its Hellos in progress and closes,
   * its daemons left running. Rejects with UpgradeError, still serving, if
   * the successor fails. A second call while one runs joins it.
   */
  upgrade(options?: { readyDeadlineMs?: number }): Promise<UpgradeResult>;
}

/** A daemon the broker knows, as its owner may see it (a live view: fields change). */
export interface BackendInfo {
  /** The service definition's name and version. */
  readonly key: string;
  readonly definition: ServiceDefinition;
  readonly endpoint: string;
  /** The process the broker spawned; null for one rediscovered after a broker restart. */
  readonly child: SpawnedProcess | null;
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
  /** A rolling restart of a `service@version`'s daemon (a definition, or its key): see RestartError. */
  restart(target: ServiceDefinition | string, options?: RestartOptions): Promise<RestartOutcome>;
}
