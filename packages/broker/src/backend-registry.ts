// The broker's backends: which daemon serves which service@version, and
// their lives — spawned on demand (single-flight, within a spawn budget),
// ready once they attached their control channel and answered a probe,
// pruned when they die, stopped when idle (SIGTERM, then SIGKILL),
// rediscovered from identity sidecars after a broker restart, and closed
// with the broker: once closed it spawns nothing and hands out nothing.
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { probeDaemon, readIdentitySidecar } from '@handoff/backend-sdk';
import { type DaemonProcess, ErrorCode } from '@handoff/protocol';
import type { ServiceDefinition } from './config/definition.js';
import { type DaemonOutput, type LaunchedDaemon, launchDaemon } from './daemon-spawn.js';
import { BrokerError } from './errors.js';
import type { BackendChannel } from './handoff/control-channel.js';
import { type SpawnBudget, spawnBudgetKey } from './spawn-budget.js';

export interface Backend {
  readonly key: string;
  readonly definition: ServiceDefinition;
  readonly endpoint: string;
  /** The process we spawned; null for one rediscovered after a restart. */
  child: ChildProcess | null;
  pid: number | null;
  channel: BackendChannel | null;
  identity: DaemonProcess | null;
  state: 'starting' | 'ready' | 'stopping';
  startedAt: number;
  lastRoutedAt: number;
  routed: number;
  /** Its control channel closed and no new one came yet. */
  channelLost: boolean;
  /** What it writes to stdout and stderr, for one we spawned (see daemon-spawn.ts). */
  output: DaemonOutput | null;
}

/** A refusal's ErrorCode by name ('RATE_LIMITED', 'BACKEND_SPAWN_FAILED', …): RouteError's `code`. */
export type RouteErrorCode = keyof typeof ErrorCode;

/** Why a route could not get a backend: carries the Refused fields. */
export class RouteError extends BrokerError {
  static override readonly brand: string = '@handoff/broker:RouteError';
  override readonly name = 'RouteError';
  declare readonly code: RouteErrorCode;
  /** The ErrorCode the client's Refused carries (`code` is its name). */
  readonly refusalCode: ErrorCode;
  readonly retryAfterMs: number;
  readonly details: Record<string, string>;
  constructor(
    refusalCode: ErrorCode,
    message: string,
    retryAfterMs = 0,
    details: Record<string, string> = {},
  ) {
    super(ErrorCode[refusalCode] as RouteErrorCode, message);
    this.refusalCode = refusalCode;
    this.retryAfterMs = retryAfterMs;
    this.details = details;
  }
}

export interface BackendRegistryOptions {
  /** Where daemon sockets and sidecars live (a private directory). */
  servicesDir: string;
  /** The broker's control socket, passed to daemons in their environment. */
  controlPath: string;
  budget: SpawnBudget;
  onSpawn?: (outcome: 'ok' | 'failed' | 'rate_limited') => void;
}

/** Same key as the spawn budget's, so one name means one thing everywhere. */
export const backendKey = spawnBudgetKey;
export const sidecarPath = (endpoint: string) => `${endpoint}.identity.json`;

/** The refusal for anything asked of a registry that is closing. */
export function shuttingDown(key: string): RouteError {
  return new RouteError(ErrorCode.SHUTTING_DOWN, 'the broker is shutting down', 0, {
    service: key,
  });
}

/**
 * Events: 'ready' (Backend: it can take clients), 'attached' (Backend,
 * BackendChannel: a verified control channel is bound to it, first or
 * again), 'gone' (Backend, reason).
 */
export class BackendRegistry extends EventEmitter {
  private readonly options: BackendRegistryOptions;
  private readonly backends = new Map<string, Backend>();
  private readonly starting = new Map<string, Promise<Backend>>();
  /** The spawn in progress per key: settling it also clears its ready timer. */
  private readonly waiters = new Map<
    string,
    { resolve: (b: Backend) => void; fail: (e: RouteError) => void }
  >();
  private readonly idleTimers = new Map<string, NodeJS.Timeout>();
  /** Stops in progress: a second stop (idle timeout, then close) waits for the first. */
  private readonly stops = new Map<Backend, Promise<void>>();
  private closedValue = false;

  constructor(options: BackendRegistryOptions) {
    super();
    this.options = options;
  }

  list(): Backend[] {
    return [...this.backends.values()];
  }

  get(key: string): Backend | undefined {
    return this.backends.get(key);
  }

  endpointFor(definition: ServiceDefinition): string {
    return join(this.options.servicesDir, `${definition.name}-${definition.version}.sock`);
  }

  /** True once close() began: acquire refuses with SHUTTING_DOWN. */
  get closed(): boolean {
    return this.closedValue;
  }

  /** A ready backend for `definition`, spawning one if none runs. */
  async acquire(definition: ServiceDefinition): Promise<Backend> {
    const key = backendKey(definition.name, definition.version);
    // A Hello still in flight when the broker closes must not bring a
    // backend back (a daemon spawned after close would outlive the broker).
    if (this.closedValue) throw shuttingDown(key);
    const running = this.backends.get(key);
    if (running?.state === 'ready') {
      // A backend whose control channel dropped may have died a moment ago
      // (its exit not reaped yet): check before sending a client to it.
      if (running.channelLost && !(await this.alive(running))) {
        this.remove(running, 'lost its control channel and does not answer');
        if (this.closedValue) throw shuttingDown(key);
      } else {
        this.touch(running);
        return running;
      }
    }
    // Single flight: every Hello for a starting backend waits on one spawn.
    let pending = this.starting.get(key);
    if (!pending) {
      pending = this.spawnBackend(definition).finally(() => this.starting.delete(key));
      this.starting.set(key, pending);
    }
    const backend = await pending;
    this.touch(backend);
    return backend;
  }

  private async alive(backend: Backend): Promise<boolean> {
    try {
      await probeDaemon(backend.endpoint, backend.pid ? { pid: backend.pid } : {}, {
        timeoutMs: 500,
      });
      return true;
    } catch {
      return false;
    }
  }

  /** Binds a registered control channel to the backend serving its endpoint. */
  async attachChannel(channel: BackendChannel): Promise<void> {
    const endpoint = channel.endpoint?.path;
    const backend = [...this.backends.values()].find((b) => b.endpoint === endpoint);
    if (!endpoint || !backend) {
      channel.close('no backend of ours serves that endpoint');
      return;
    }
    // The daemon on the channel must be the one answering on the endpoint.
    try {
      const verified = await probeDaemon(endpoint, { pid: channel.peer.pid }, { timeoutMs: 2000 });
      backend.identity = verified.identity;
      backend.pid = verified.identity.pid;
    } catch (error) {
      channel.close(`probe of ${endpoint} failed: ${(error as Error).message}`);
      return;
    }
    // Closed, or stopped, while the probe ran: nothing may use this channel.
    if (
      this.closedValue ||
      backend.state === 'stopping' ||
      this.backends.get(backend.key) !== backend
    ) {
      channel.close('backend stopping');
      return;
    }
    backend.channel?.close('replaced by a new control channel');
    backend.channel = channel;
    backend.channelLost = false;
    channel.once('close', () => {
      if (backend.channel !== channel) return;
      backend.channel = null;
      backend.channelLost = true;
    });
    this.emit('attached', backend, channel);
    if (backend.state === 'starting') {
      backend.state = 'ready';
      this.waiters.get(backend.key)?.resolve(backend);
      this.emit('ready', backend);
    }
  }

  /** Finds daemons left running by an earlier broker, from their sidecars + probes. */
  async rediscover(definitions: ServiceDefinition[]): Promise<Backend[]> {
    const found: Backend[] = [];
    for (const definition of definitions) {
      const endpoint = this.endpointFor(definition);
      const key = backendKey(definition.name, definition.version);
      if (this.backends.has(key)) continue;
      const sidecar = await readIdentitySidecar(sidecarPath(endpoint)).catch(() => null);
      if (!sidecar) continue;
      try {
        const verified = await probeDaemon(
          endpoint,
          { pid: sidecar.process.pid },
          { timeoutMs: 1000 },
        );
        found.push(this.adoptRunning(definition, endpoint, verified.identity));
      } catch {
        // Stale sidecar: nothing to rediscover.
      }
    }
    return found;
  }

  /**
   * Records a daemon this broker did not spawn but verified (a rediscovered
   * one, or one handed over by the broker this one upgraded): ready at once,
   * pruned when its pid exits. Its control channel binds later through
   * attachChannel. `since` keeps its history across an upgrade.
   */
  adoptRunning(
    definition: ServiceDefinition,
    endpoint: string,
    identity: DaemonProcess,
    since: { startedAt?: number; routed?: number } = {},
  ): Backend {
    const backend = this.record(definition, endpoint, null, identity.pid);
    backend.identity = identity;
    backend.state = 'ready';
    if (since.startedAt !== undefined) backend.startedAt = since.startedAt;
    if (since.routed !== undefined) backend.routed = since.routed;
    return backend;
  }

  /**
   * Stops one backend: SIGTERM, then SIGKILL after its grace period.
   * Resolves once the process is gone; a second call waits for the first.
   */
  stop(backend: Backend, reason: string): Promise<void> {
    if (backend.state === 'stopping') return this.stops.get(backend) ?? Promise.resolve();
    const wasStarting = backend.state === 'starting';
    backend.state = 'stopping';
    const stopping = this.terminate(backend, reason, wasStarting).finally(() =>
      this.stops.delete(backend),
    );
    this.stops.set(backend, stopping);
    return stopping;
  }

  private async terminate(backend: Backend, reason: string, wasStarting: boolean): Promise<void> {
    this.clearIdle(backend.key);
    // A backend stopped before it was ready: its Hellos get an answer now,
    // not at its ready timeout. (Only a starting backend owns its key's waiter.)
    if (wasStarting)
      this.waiters
        .get(backend.key)
        ?.fail(
          this.closedValue
            ? shuttingDown(backend.key)
            : new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, `${backend.key} stopped: ${reason}`),
        );
    backend.channel?.close(reason);
    const pid = backend.child?.pid ?? backend.pid;
    if (pid) {
      const exited = backend.child ? childExited(backend.child) : waitForExit(pid);
      signal(pid, 'SIGTERM');
      const kill = setTimeout(() => signal(pid, 'SIGKILL'), backend.definition.stopGraceMs);
      await exited;
      clearTimeout(kill);
    }
    // The pipes can outlive the daemon (a grandchild holding its output) and
    // would keep the broker's event loop alive.
    backend.output?.close();
    this.remove(backend, reason);
  }

  async stopAll(reason: string): Promise<void> {
    await Promise.all(this.list().map((b) => this.stop(b, reason)));
  }

  /**
   * Refuses all further work (acquire throws Refused{SHUTTING_DOWN}, no
   * spawn starts), answers Hellos waiting on a spawn, and — with
   * `stopBackends` — stops every daemon and removes the socket files and
   * sidecars they left. Without it the daemons keep running for the next
   * broker, and nothing of theirs keeps this process alive.
   */
  async close(reason: string, { stopBackends }: { stopBackends: boolean }): Promise<void> {
    this.closedValue = true;
    for (const key of [...this.idleTimers.keys()]) this.clearIdle(key);
    if (!stopBackends) {
      for (const key of [...this.waiters.keys()]) this.waiters.get(key)?.fail(shuttingDown(key));
      for (const backend of this.backends.values()) backend.output?.unref();
      return;
    }
    const stopped = this.list();
    await Promise.all(stopped.map((b) => this.stop(b, reason)));
    // A daemon that needed SIGKILL could not remove its files; nothing of
    // ours runs at these endpoints any more, so they are stale.
    await Promise.all(
      stopped.flatMap((b) =>
        [b.endpoint, sidecarPath(b.endpoint)].map((f) => rm(f, { force: true })),
      ),
    );
  }

  /**
   * Last resort when the broker must exit before its daemons stopped:
   * SIGKILL every daemon it still knows. Synchronous, so it can run just
   * before process.exit.
   */
  killAll(): void {
    for (const backend of this.backends.values())
      signal(backend.child?.pid ?? backend.pid, 'SIGKILL');
  }

  private touch(backend: Backend): void {
    backend.lastRoutedAt = Date.now();
    backend.routed++;
    const idle = backend.definition.idleTimeoutSecs ?? 0;
    if (idle > 0) {
      this.clearIdle(backend.key);
      const timer = setTimeout(() => void this.stop(backend, 'idle timeout'), idle * 1000);
      timer.unref();
      this.idleTimers.set(backend.key, timer);
    }
  }

  private clearIdle(key: string): void {
    const timer = this.idleTimers.get(key);
    if (timer) clearTimeout(timer);
    this.idleTimers.delete(key);
  }

  private record(
    definition: ServiceDefinition,
    endpoint: string,
    child: ChildProcess | null,
    pid: number | null,
  ): Backend {
    const backend: Backend = {
      key: backendKey(definition.name, definition.version),
      definition,
      endpoint,
      child,
      pid,
      channel: null,
      identity: null,
      state: 'starting',
      startedAt: Date.now(),
      lastRoutedAt: 0,
      routed: 0,
      channelLost: false,
      output: null,
    };
    this.backends.set(backend.key, backend);
    if (!child && pid) void waitForExit(pid).then(() => this.remove(backend, 'process exited'));
    return backend;
  }

  private remove(backend: Backend, reason: string): void {
    if (this.backends.get(backend.key) !== backend) return;
    this.backends.delete(backend.key);
    this.clearIdle(backend.key);
    backend.channel?.close(reason);
    this.emit('gone', backend, reason);
  }

  private async spawnBackend(definition: ServiceDefinition): Promise<Backend> {
    const key = backendKey(definition.name, definition.version);
    const allowed = this.options.budget.tryAcquire(key);
    if (!allowed.ok) {
      this.options.onSpawn?.('rate_limited');
      throw new RouteError(
        ErrorCode.RATE_LIMITED,
        `spawn budget for ${key} exhausted`,
        allowed.retryAfterMs,
        { service: key },
      );
    }
    await mkdir(this.options.servicesDir, { recursive: true, mode: 0o700 });
    // close() may have run while the directory was made.
    if (this.closedValue) throw shuttingDown(key);
    const endpoint = this.endpointFor(definition);
    let launched: LaunchedDaemon;
    try {
      launched = launchDaemon(definition, { endpoint, controlPath: this.options.controlPath });
    } catch (error) {
      this.options.onSpawn?.('failed');
      throw new RouteError(
        ErrorCode.BACKEND_SPAWN_FAILED,
        `cannot spawn ${definition.command}: ${(error as Error).message}`,
        0,
        { service: key },
      );
    }
    const { child, output } = launched;
    child.unref();
    const backend = this.record(definition, endpoint, child, child.pid ?? null);
    backend.output = output;
    return new Promise<Backend>((resolve, reject) => {
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        clearTimeout(timer);
        if (this.waiters.get(key) === waiter) this.waiters.delete(key);
        return true;
      };
      const fail = (message: string, details: Record<string, string>) => {
        if (!settle()) return;
        this.options.onSpawn?.('failed');
        this.remove(backend, message);
        reject(
          new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, message, 0, {
            service: key,
            stderr_tail: output.tail(),
            ...details,
          }),
        );
      };
      const timer = setTimeout(() => {
        signal(child.pid, 'SIGKILL');
        fail(`${key} was not ready within ${definition.readyTimeoutMs} ms`, {
          reason: 'ready timeout',
        });
      }, definition.readyTimeoutMs);
      const waiter = {
        resolve: (b: Backend) => {
          if (!settle()) return;
          this.options.onSpawn?.('ok');
          resolve(b);
        },
        // Stopped before ready (the broker closing): the process is stop()'s to end.
        fail: (error: RouteError) => {
          if (settle()) reject(error);
        },
      };
      this.waiters.set(key, waiter);
      child.once('error', (error) =>
        fail(`cannot spawn ${definition.command}: ${error.message}`, { reason: 'spawn error' }),
      );
      child.once('exit', (code, sig) => {
        if (backend.state === 'starting') {
          fail(`${key} exited before it was ready (${sig ? `signal ${sig}` : `status ${code}`})`, {
            exit_status: String(code ?? ''),
            exit_signal: String(sig ?? ''),
          });
        } else this.remove(backend, `process exited (${sig ?? code})`);
      });
    });
  }
}

function signal(pid: number | undefined | null, name: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, name);
  } catch {
    // Already gone.
  }
}

/** Resolves when our child exits, at once if it already has ('exit' is not replayed). */
function childExited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves when a process we did not spawn exits (a pidfd is not available from Node). */
function waitForExit(pid: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      try {
        process.kill(pid, 0);
        setTimeout(check, 250).unref();
      } catch {
        resolve();
      }
    };
    check();
  });
}
