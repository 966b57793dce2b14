// createDispatcher: the master of a prefork server. It accepts on TCP and
// Unix listeners in this process and serves in N worker processes, each
// reached over its own persistent SOCK_SEQPACKET channel that carries many
// connection fds per message. This file owns the start (and undoing a failed
// one), accepting, stats and shutdown; the processes themselves are
// worker-pool.ts, which worker gets a connection and who owns which fd is
// scheduler.ts, and the worker side is worker.ts.
import { EventEmitter } from 'node:events';
import type { FdAcceptor } from '@handoff/fdpass';
import { openListeners } from './listeners.js';
import { errorCode } from './log.js';
import {
  type DispatcherErrorKind,
  type DispatcherStats,
  renderDispatcherMetrics,
} from './metrics.js';
import {
  type DispatcherOptions,
  type FnDispatcherOptions,
  type ScriptDispatcherOptions,
  type Settings,
  validate,
} from './options.js';
import { DispatchScheduler } from './scheduler.js';
import { type DispatchEndpoint, MAX_FDS_PER_DISPATCH } from './wire.js';
import { type DispatchWorker, serveDispatched } from './worker.js';
import { DISPATCH_CHANNEL_ENV } from './worker-channel.js';
import { WorkerPool } from './worker-pool.js';

/** Events: 'workerReady' (WorkerEvent), 'workerExit' (WorkerExitEvent). */
export interface Dispatcher extends EventEmitter {
  readonly role: 'master';
  /** The bound listeners (a TCP port 0 resolved), in the order given. */
  readonly endpoints: readonly DispatchEndpoint[];
  stats(): DispatcherStats;
  /** stats() as OpenMetrics text (DISPATCHER_METRICS_CONTENT_TYPE). */
  metrics(): string;
  /**
   * Graceful shutdown: takes what the kernel already accepted, stops
   * listening, lets workers drain for `shutdownDeadline` ms, then kills the
   * rest. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts listeners and workers; resolves once every worker reported
 * ready. On any failure during start, everything already created (workers,
 * channels, listeners, socket files) is torn down before it rejects with a
 * DispatchError naming the errno of the failing call.
 */
export function createDispatcher(options: ScriptDispatcherOptions): Promise<Dispatcher>;
export function createDispatcher(
  options: FnDispatcherOptions,
): Promise<Dispatcher | DispatchWorker>;
export async function createDispatcher(
  options: DispatcherOptions,
): Promise<Dispatcher | DispatchWorker> {
  const settings = validate(options);
  if (options.workerFn !== undefined && process.env[DISPATCH_CHANNEL_ENV] !== undefined) {
    return serveDispatched(options.workerFn, { log: settings.log });
  }
  const dispatcher = new DispatcherImpl(settings);
  await dispatcher.start();
  return dispatcher;
}

class DispatcherImpl extends EventEmitter implements Dispatcher {
  readonly role = 'master' as const;
  endpoints: readonly DispatchEndpoint[] = [];

  readonly #s: Settings;
  #acceptors: FdAcceptor[] = [];
  #scheduler: DispatchScheduler | null = null;
  #pool: WorkerPool | null = null;
  #started = false;
  #startFailure: ((err: Error) => void) | null = null;
  #closing: Promise<void> | null = null;
  #accepting = false;
  #acceptErrors = 0;

  constructor(settings: Settings) {
    super();
    this.#s = settings;
  }

  // --- start ---------------------------------------------------------------

  async start(): Promise<void> {
    const s = this.#s;
    const opened = await openListeners(s.listen);
    this.#acceptors = opened.acceptors;
    this.endpoints = opened.endpoints;
    const scheduler = new DispatchScheduler(
      opened.endpoints,
      {
        maxQueuePerWorker: s.maxQueuePerWorker,
        maxConnectionsPerWorker: s.maxConnectionsPerWorker,
        maxRequestsPerWorker: s.maxRequestsPerWorker,
        shutdownDeadlineMs: s.shutdownDeadline,
      },
      s.log,
      (free) => this.#applyCapacity(free),
    );
    this.#scheduler = scheduler;
    const pool = new WorkerPool(s, scheduler, {
      isStarted: () => this.#started,
      isClosing: () => this.#closing !== null,
      failStart: (err) => this.#failStart(err),
      workerReady: (event) => this.emit('workerReady', event),
      workerExit: (event) => this.emit('workerExit', event),
    });
    this.#pool = pool;
    for (const [index, acceptor] of this.#acceptors.entries()) {
      acceptor.on('connections', (fds: number[]) => scheduler.submit(fds, index));
      acceptor.on('error', (err: Error) => {
        this.#acceptErrors++;
        this.#s.log(
          'error',
          `accept on ${describe(this.endpoints[index])} failed: ${errorCode(err)}`,
          {
            errno: errorCode(err),
          },
        );
      });
    }
    try {
      const failed = new Promise<never>((_, reject) => {
        this.#startFailure = reject;
      });
      failed.catch(() => {});
      await pool.spawnAll(failed);
      await Promise.race([this.#allReady(pool), failed]);
    } catch (err) {
      this.#startFailure = null;
      await this.#teardown(pool);
      throw err;
    }
    this.#startFailure = null;
    this.#started = true;
    this.#applyCapacity(scheduler.freeCapacity());
  }

  #allReady(pool: WorkerPool): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (pool.allReady) {
          this.off('workerReady', check);
          resolve();
        }
      };
      this.on('workerReady', check);
      check();
    });
  }

  /** During start a worker's failure fails the start; afterwards it is a crash. */
  #failStart(err: Error): boolean {
    if (this.#started) return false;
    const fail = this.#startFailure;
    this.#startFailure = null;
    fail?.(err);
    return true;
  }

  /** Kills and reaps every worker and closes every channel and listener: nothing survives. */
  async #teardown(pool: WorkerPool): Promise<void> {
    for (const a of this.#acceptors) a.close();
    const exits = pool.tearDown();
    this.#scheduler?.closeAll();
    await exits;
    pool.clearTimers(false);
  }

  // --- accepting -----------------------------------------------------------

  #applyCapacity(free: number): void {
    if (!this.#started || this.#closing) return;
    if (free <= 0) {
      if (!this.#accepting) return;
      this.#accepting = false;
      for (const a of this.#acceptors) a.pause();
      return;
    }
    // Accept no more per readiness event than the workers have room for.
    const budget = Math.min(free, 64);
    for (const a of this.#acceptors) {
      if (a.acceptBudget !== budget) a.acceptBudget = budget;
      if (!this.#accepting) a.resume();
    }
    this.#accepting = true;
  }

  // --- stats ---------------------------------------------------------------

  stats(): DispatcherStats {
    const scheduler = this.#scheduler as DispatchScheduler;
    const pool = this.#pool as WorkerPool;
    const c = scheduler.counters;
    const errorsByKind: Record<DispatcherErrorKind, number> = {
      send: c.errors.send,
      dropped: c.errors.dropped,
      adopt: c.errors.adopt,
      closed: c.errors.closed,
      abandoned: c.errors.abandoned,
      protocol: c.errors.protocol,
      accept: this.#acceptErrors,
      spawn: pool.counts.spawnErrors,
      crash: pool.counts.crashes,
    };
    const perWorker = scheduler.links.map((l) => ({
      slot: l.slot,
      pid: l.pid,
      generation: l.generation,
      state: l.state as 'starting' | 'ready' | 'retiring',
      queueDepth: l.queued,
      connections: l.open,
      dispatched: l.dispatched,
    }));
    let active = scheduler.overflow;
    for (const l of scheduler.links) active += l.open;
    return {
      workers: this.#s.workers,
      alive: pool.alive,
      accepting: this.#accepting,
      activeConnections: active,
      waitingConnections: scheduler.overflow,
      totalAccepted: c.accepted,
      totalDispatched: c.dispatched,
      totalCompleted: c.completed,
      redispatched: c.redispatched,
      dispatchMessages: c.messages,
      errors: Object.values(errorsByKind).reduce((a, b) => a + b, 0),
      errorsByKind,
      avgAdoptMs: c.adoptCount > 0 ? c.adoptSumMs / c.adoptCount : 0,
      adoptCount: c.adoptCount,
      adoptSumMs: c.adoptSumMs,
      respawns: pool.counts.respawns,
      rotations: pool.counts.rotations,
      queueDepth: perWorker.map((w) => w.queueDepth),
      perWorker,
    };
  }

  metrics(): string {
    return renderDispatcherMetrics(this.stats());
  }

  // --- shutdown ------------------------------------------------------------

  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const scheduler = this.#scheduler as DispatchScheduler;
    const pool = this.#pool as WorkerPool;
    this.#accepting = false;
    pool.cancelRespawns();
    // Closing a listener resets whatever waits in its backlog: take those
    // connections first, they were already made.
    for (const [index, acceptor] of this.#acceptors.entries()) {
      try {
        for (;;) {
          const fds = acceptor.acceptNow(MAX_FDS_PER_DISPATCH);
          if (fds.length === 0) break;
          scheduler.submit(fds, index);
        }
      } catch (err) {
        this.#s.log(
          'warn',
          `final accept on ${describe(this.endpoints[index])} failed: ${errorCode(err)}`,
        );
      }
      acceptor.close();
    }
    pool.planExits();
    scheduler.shutdown();
    await pool.drainOrKill();
    scheduler.closeAll();
    pool.clearTimers(true);
  }
}

function describe(l: DispatchEndpoint | undefined): string {
  if (l === undefined) return 'a listener';
  return l.transport === 'unix' ? l.path : `${l.address}:${l.port}`;
}
