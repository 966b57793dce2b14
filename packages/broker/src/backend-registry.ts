// The broker's backends: which daemon serves which service@version, and
// their lives — spawned on demand (single-flight, within a spawn budget),
// ready once they attached their control channel and answered a probe,
// pruned when they die, stopped when idle (SIGTERM, then SIGKILL),
// rediscovered after a broker restart, replaced by a rolling restart
// (lifecycle/rolling-restart.ts orchestrates; this file keeps the
// replacement apart until promoted), closed with the broker.
import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { probeDaemon } from '@handoff/backend-sdk';
import type { SpawnedProcess } from '@handoff/fdpass';
import { type DaemonProcess, ErrorCode } from '@handoff/protocol';
import type { Backend } from './backend.js';
import type { ServiceDefinition } from './config/definition.js';
import type { OutputOptions } from './daemon-spawn.js';
import type { BackendChannel } from './handoff/control-channel.js';
import { holdUntilReady, lowerBootPriority, lowWeightBudgetMs } from './lifecycle/boot-priority.js';
import { endpointSlots, startDaemon } from './lifecycle/daemon-start.js';
import { IdleTimers } from './lifecycle/idle-stop.js';
import type { OwnedDaemonSocket } from './lifecycle/owned-socket.js';
import {
  childExited,
  type ExitWatch,
  signal,
  waitForExit,
  watchExit,
} from './lifecycle/process-exit.js';
import { rediscoverBackends } from './lifecycle/rediscover.js';
import {
  type RestartOptions,
  type RestartOutcome,
  rollingRestart,
} from './lifecycle/rolling-restart.js';
import { awaitReadiness, type Waiter } from './lifecycle/spawn-readiness.js';
import { withSidecars } from './rediscover-candidates.js';
import { RouteError, shuttingDown } from './route-error.js';
import { type SpawnBudget, spawnBudgetKey } from './spawn-budget.js';

export type { Backend } from './backend.js';
export { RouteError, type RouteErrorCode, shuttingDown } from './route-error.js';

export interface BackendRegistryOptions {
  /** Where daemon sockets and sidecars live (a private directory). */
  servicesDir: string;
  /** The broker's control socket, passed to daemons in their environment. */
  controlPath: string;
  budget: SpawnBudget;
  /** `service`: the definition's name (metrics count spawns per service). */
  onSpawn?: (outcome: 'ok' | 'failed' | 'rate_limited', service: string) => void;
  /** Where spawned daemons' output is written (logs/): the state dir, and who hears of write failures. */
  output?: OutputOptions;
  /** Bind each daemon's endpoint and pass it in, so early clients wait (default true). */
  ownDaemonSockets?: boolean;
}

/** Same key as the spawn budget's, so one name means one thing everywhere. */
export const backendKey = spawnBudgetKey;

// A Hello looks its backend up by its definition's key. Made per Hello, the
// key was a new string to flatten and hash each time; a definition's name
// and version are readonly, so its key is made once per definition object.
const definitionKeys = new WeakMap<ServiceDefinition, string>();

/** backendKey(definition.name, definition.version), made once per definition. */
export function keyOf(definition: ServiceDefinition): string {
  let key = definitionKeys.get(definition);
  if (key === undefined) {
    key = backendKey(definition.name, definition.version);
    definitionKeys.set(definition, key);
  }
  return key;
}
export const sidecarPath = (endpoint: string) => `${endpoint}.identity.json`;

/** What a spawn is for: the backend Hellos are routed to, or a rolling restart's replacement. */
type Role = 'routed' | 'spare';

/**
 * Events: 'ready' (Backend: it can take clients), 'attached' (Backend,
 * BackendChannel: a verified control channel is bound to it, first or
 * again), 'gone' (Backend, reason), 'promoted' (new Backend, old Backend
 * or undefined: a rolling restart routes new Hellos to the replacement),
 * 'boot-priority' (Backend, BootPriorityOutcome, detail: a replacement's
 * CPU weight while it boots, lifecycle/boot-priority.ts).
 */
export class BackendRegistry extends EventEmitter {
  private readonly options: BackendRegistryOptions;
  /** The backend Hellos are routed to, per key. */
  private readonly backends = new Map<string, Backend>();
  /** A rolling restart's replacement, per key, until it is promoted. */
  private readonly spares = new Map<string, Backend>();
  /** Backends a rolling restart replaced, until they have exited. */
  private readonly retiring = new Set<Backend>();
  private readonly starting = new Map<string, Promise<Backend>>();
  /** Each starting backend's spawn: settling it also clears its ready timer. */
  private readonly waiters = new Map<Backend, Waiter>();
  private readonly idle = new IdleTimers((backend) => void this.stop(backend, 'idle timeout'));
  /** Endpoints the broker bound for its daemons (ownDaemonSockets). */
  private readonly ownedSockets = new Map<Backend, OwnedDaemonSocket>();
  /** Rolling restarts in progress: a second one of a key shares the first. */
  private readonly restarts = new Map<string, Promise<RestartOutcome>>();
  /** Each key's last spawn-to-ready at full weight, in ms (a replacement's boot-priority budget). */
  private readonly bootMs = new Map<string, number>();
  /** Stops in progress: a second stop (idle timeout, then close) waits for the first. */
  private readonly stops = new Map<Backend, Promise<void>>();
  /** Daemons we did not spawn (rediscovered, handed over): their exit, watched. */
  private readonly exitWatches = new Map<Backend, ExitWatch>();
  private closedValue = false;

  constructor(options: BackendRegistryOptions) {
    super();
    this.options = options;
  }

  /** Every backend: routed, replacements starting, and replaced ones draining. */
  list(): Backend[] {
    return [...this.backends.values(), ...this.spares.values(), ...this.retiring];
  }

  /** The backend Hellos for `key` are routed to. */
  get(key: string): Backend | undefined {
    return this.backends.get(key);
  }

  /** The first of the definition's two endpoint slots. */
  endpointFor(definition: ServiceDefinition): string {
    return this.slotsFor(definition)[0];
  }

  /** The two endpoints a service@version's daemon may serve (see endpointSlots). */
  slotsFor(definition: ServiceDefinition): [string, string] {
    return endpointSlots(this.options.servicesDir, definition);
  }

  /** A slot no known backend of the definition's key serves (the first when both are taken). */
  private freeSlot(definition: ServiceDefinition): string {
    const key = keyOf(definition);
    const taken = this.list().filter((b) => b.key === key);
    const slots = this.slotsFor(definition);
    return slots.find((s) => !taken.some((b) => b.endpoint === s)) ?? slots[0];
  }

  /** True once close() began: acquire refuses with SHUTTING_DOWN. */
  get closed(): boolean {
    return this.closedValue;
  }

  /** A ready backend for `definition`, spawning one if none runs. */
  /**
   * acquire()'s answer when it needs no wait: the key's ready backend, its
   * control channel intact (one that dropped is checked by acquire()). Else null.
   */
  readyNow(definition: ServiceDefinition): Backend | null {
    if (this.closedValue) return null;
    const running = this.backends.get(keyOf(definition));
    if (running?.state !== 'ready' || running.channelLost) return null;
    this.touch(running);
    return running;
  }

  async acquire(definition: ServiceDefinition): Promise<Backend> {
    const key = keyOf(definition);
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
      pending = this.launch(definition, this.freeSlot(definition), 'routed').finally(() =>
        this.starting.delete(key),
      );
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
  async attachChannel(channel: BackendChannel, known?: DaemonProcess): Promise<void> {
    const endpoint = channel.endpoint?.path;
    // A replaced daemon draining on a slot its successor's successor now
    // uses: the live one is meant.
    const matching = this.list().filter((b) => b.endpoint === endpoint);
    const backend = matching.find((b) => b.state !== 'stopping') ?? matching[0];
    if (!endpoint || !backend) {
      channel.close('no backend of ours serves that endpoint');
      return;
    }
    // The daemon on the channel must be the one answering on the endpoint (unless the
    // broker that handed it over verified it: then the channel's kernel pid suffices).
    this.waiters.get(backend)?.attached?.();
    try {
      const verified =
        known?.pid === channel.peer.pid
          ? { identity: known }
          : await probeDaemon(endpoint, { pid: channel.peer.pid }, { timeoutMs: 2000 });
      backend.identity = verified.identity;
      backend.pid = verified.identity.pid;
    } catch (error) {
      const why = `probe of ${endpoint} failed: ${(error as Error).message}`;
      channel.close(why);
      this.emit('probe-failed', backend, why);
      this.waiters.get(backend)?.probeFailed?.(why);
      // A replacement that fails its probe fails its restart at once, once it is gone.
      if (this.spares.get(backend.key) === backend) {
        const waiter = this.waiters.get(backend);
        this.waiters.delete(backend);
        const tail = backend.output?.tail() ?? '';
        const failure = new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, why, 0, {
          reason: 'probe failed',
          stderr_tail: tail,
        });
        void this.stop(backend, why, 0).then(() => waiter?.fail(failure));
      }
      return;
    }
    // Closed, or stopped, while the probe ran: nothing may use this channel.
    if (this.closedValue || backend.state === 'stopping' || !this.knows(backend)) {
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
      this.waiters.get(backend)?.resolve(backend);
      this.emit('ready', backend);
    }
  }

  /** Finds daemons left running by an earlier broker, from their sidecars + probes. */
  async rediscover(definitions: ServiceDefinition[]): Promise<Backend[]> {
    const slots = (d: ServiceDefinition) => this.slotsFor(d);
    return rediscoverBackends(
      this,
      await withSidecars(this.options.servicesDir, definitions, slots),
    );
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
  stop(backend: Backend, reason: string, graceMs = backend.definition.stopGraceMs): Promise<void> {
    if (backend.state === 'stopping') return this.stops.get(backend) ?? Promise.resolve();
    const wasStarting = backend.state === 'starting';
    backend.state = 'stopping';
    const stopping = this.terminate(backend, reason, wasStarting, graceMs).finally(() =>
      this.stops.delete(backend),
    );
    this.stops.set(backend, stopping);
    return stopping;
  }

  private async terminate(
    backend: Backend,
    reason: string,
    wasStarting: boolean,
    graceMs: number,
  ): Promise<void> {
    this.idle.clear(backend);
    // A backend stopped before it was ready: its Hellos get an answer now,
    // not at its ready timeout.
    if (wasStarting)
      this.waiters
        .get(backend)
        ?.fail(
          this.closedValue
            ? shuttingDown(backend.key)
            : new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, `${backend.key} stopped: ${reason}`),
        );
    backend.channel?.close(reason);
    const pid = backend.child?.pid ?? backend.pid;
    if (pid) {
      // A watch of its own, not the registry's exitWatches entry: close()
      // cancels those (their daemons are the next broker's), and a stop
      // under way must still end when its process does.
      const exited = backend.child ? childExited(backend.child) : waitForExit(pid);
      signal(pid, 'SIGTERM');
      const kill = setTimeout(() => signal(pid, 'SIGKILL'), graceMs);
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
    this.idle.clearAll();
    if (!stopBackends) {
      for (const [b, waiter] of [...this.waiters]) waiter.fail(shuttingDown(b.key));
      // The daemons keep serving their sockets for the next broker: our
      // copies close, the files stay.
      for (const listener of this.ownedSockets.values()) listener.release({ unlink: false });
      this.ownedSockets.clear();
      for (const backend of this.list()) backend.output?.unref();
      // Their exits are the next broker's to watch: our pidfds close.
      for (const watch of this.exitWatches.values()) watch.cancel();
      this.exitWatches.clear();
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
    this.idle.arm(backend);
  }

  /** True while `backend` is routed, a replacement, or draining after one. */
  private knows(backend: Backend): boolean {
    return (
      this.backends.get(backend.key) === backend ||
      this.spares.get(backend.key) === backend ||
      this.retiring.has(backend)
    );
  }

  private record(
    definition: ServiceDefinition,
    endpoint: string,
    child: SpawnedProcess | null,
    pid: number | null,
    role: Role = 'routed',
  ): Backend {
    const backend: Backend = {
      key: keyOf(definition),
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
    (role === 'spare' ? this.spares : this.backends).set(backend.key, backend);
    if (!child && pid) {
      const watch = watchExit(pid);
      this.exitWatches.set(backend, watch);
      void watch.exited.then(() => this.remove(backend, 'process exited'));
    }
    return backend;
  }

  private remove(backend: Backend, reason: string): void {
    if (!this.knows(backend)) return;
    if (this.backends.get(backend.key) === backend) this.backends.delete(backend.key);
    if (this.spares.get(backend.key) === backend) this.spares.delete(backend.key);
    this.retiring.delete(backend);
    this.idle.clear(backend);
    this.exitWatches.get(backend)?.cancel();
    this.exitWatches.delete(backend);
    this.releaseListener(backend);
    backend.channel?.close(reason);
    this.emit('gone', backend, reason);
  }

  /**
   * Starts a rolling restart's replacement of `definition`'s running
   * daemon on the slot that one does not use, kept apart from routing
   * until promote(). Resolves once it attached and passed its verified
   * probe (or rejects with RouteError, `details.reason` saying why, and
   * the replacement gone); ready within `readyTimeoutMs`.
   */
  startReplacement(definition: ServiceDefinition, readyTimeoutMs: number): Promise<Backend> {
    const key = keyOf(definition);
    if (this.closedValue) return Promise.reject(shuttingDown(key));
    const [a, b] = this.slotsFor(definition);
    const slot = this.backends.get(key)?.endpoint === a ? b : a;
    return this.launch(definition, slot, 'spare', readyTimeoutMs);
  }

  /**
   * Routes new Hellos for the replacement's key to it; the backend it
   * replaces (returned) is kept, as retiring, until it has exited.
   */
  promote(spare: Backend): Backend | undefined {
    if (this.spares.get(spare.key) !== spare || spare.state !== 'ready')
      throw new RouteError(ErrorCode.BACKEND_SPAWN_FAILED, `${spare.key} replacement is gone`, 0, {
        reason: 'stopped',
      });
    this.spares.delete(spare.key);
    const old = this.backends.get(spare.key);
    if (old) {
      this.backends.delete(old.key);
      this.retiring.add(old);
      this.idle.clear(old);
    }
    this.backends.set(spare.key, spare);
    this.emit('promoted', spare, old);
    return old;
  }

  /**
   * Stops a replaced backend: SIGTERM (an SDK daemon drains), SIGKILL
   * after `drainMs`. Its endpoint's listener is released at once, so the
   * next restart can bind that slot while it drains. Resolves once it exited.
   */
  retire(old: Backend, reason: string, drainMs: number): Promise<void> {
    const stopped = this.stop(old, reason, drainMs);
    this.releaseListener(old);
    return stopped;
  }

  /**
   * Replaces the running daemon of `target` (a definition, or the key of a
   * running backend) without refusing a Hello: see lifecycle/rolling-restart.ts.
   * Two restarts of one key at once share one outcome.
   */
  restart(
    target: ServiceDefinition | string,
    options: RestartOptions = {},
  ): Promise<RestartOutcome> {
    const key = typeof target === 'string' ? target : keyOf(target);
    const running = this.restarts.get(key);
    if (running) return running;
    const definition = typeof target === 'string' ? undefined : target;
    const flight = rollingRestart(this, key, definition, options);
    this.restarts.set(key, flight);
    const done = () => this.restarts.delete(key);
    flight.then(done, done);
    return flight;
  }

  private releaseListener(backend: Backend): void {
    this.ownedSockets.get(backend)?.release({ unlink: true });
    this.ownedSockets.delete(backend);
  }

  private async launch(
    definition: ServiceDefinition,
    endpoint: string,
    role: Role,
    readyTimeoutMs = definition.readyTimeoutMs,
  ): Promise<Backend> {
    const spawnFailed = (message: string, tail: string) =>
      this.emit('spawn-failed', definition, message, tail);
    const { launched, listener } = await startDaemon(definition, endpoint, {
      ...this.options,
      budgeted: role === 'routed',
      closed: () => this.closedValue,
      onSpawn: (outcome) => this.options.onSpawn?.(outcome, definition.name),
      spawnFailed,
    });
    const { child, output } = launched; // unref'd by launchDaemon
    const spawnedAt = performance.now();
    const backend = this.record(definition, endpoint, child, child.pid, role);
    backend.output = output;
    if (listener) this.ownedSockets.set(backend, listener);
    this.emit('spawned', backend);
    const ready = awaitReadiness(
      {
        onSpawn: (outcome) => this.options.onSpawn?.(outcome, definition.name),
        remove: (b, reason) => this.remove(b, reason),
        spawnFailed,
        waiters: this.waiters,
      },
      backend,
      child,
      output,
      readyTimeoutMs,
    );
    // A replacement boots beside a live predecessor: at a lower CPU weight
    // until it is ready (lifecycle/boot-priority.ts).
    const priority =
      role === 'spare' && definition.replacementNice > 0 && child.pid !== undefined
        ? lowerBootPriority(child.pid, {
            nice: definition.replacementNice,
            restoreAfterMs: lowWeightBudgetMs(this.bootMs.get(backend.key), readyTimeoutMs),
            notice: (outcome, detail) => this.emit('boot-priority', backend, outcome, detail),
          })
        : null;
    // Only a boot at full weight says how long this service takes to start.
    if (priority === null)
      return ready.then((b) => {
        this.bootMs.set(b.key, performance.now() - spawnedAt);
        return b;
      });
    return holdUntilReady(ready, priority, child);
  }
}
