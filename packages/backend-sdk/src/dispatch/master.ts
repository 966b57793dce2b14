// createDispatcher: the master of a prefork server. It accepts on TCP and
// Unix listeners in this process and serves in N worker processes, each
// reached over its own persistent SOCK_SEQPACKET channel that carries many
// connection fds per message. This file owns the processes: spawning with
// the channel, readiness, crash respawn with back-off, rotation, shutdown,
// and cleaning up everything on a failed start. Which worker gets a
// connection, and who owns which fd, is dispatch-scheduler.ts; the worker
// side is dispatch-worker.ts.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { type FdAcceptor, FdSocket } from '@handoff/fdpass';
import { DispatchError } from './dispatch-error.js';
import { type DispatchListen, openListeners } from './dispatch-listeners.js';
import { type DispatchLogger, errorCode, stderrDispatchLogger } from './dispatch-log.js';
import { DispatchScheduler, type WorkerLink } from './dispatch-scheduler.js';
import { type DispatchEndpoint, MAX_FDS_PER_DISPATCH, MAX_LISTENERS } from './dispatch-wire.js';
import {
  DISPATCH_CHANNEL_ENV,
  type DispatchHandler,
  type DispatchWorker,
  serveDispatched,
} from './dispatch-worker.js';
import {
  type DispatcherErrorKind,
  type DispatcherStats,
  renderDispatcherMetrics,
} from './dispatcher-metrics.js';

export interface SpawnBackoff {
  /** Delay before respawning after a first crash. */
  initialMs: number;
  /** Ceiling of the delay. */
  maxMs: number;
  /** Growth per consecutive crash (default 2). */
  factor?: number;
  /** A worker that lived this long resets the count (default 30,000 ms). */
  resetAfterMs?: number;
}

export interface DispatcherOptionsBase {
  /** One or more listeners: `{ port, host? }` (TCP) or `{ path }` (Unix). */
  listen: DispatchListen | readonly DispatchListen[];
  /** Worker processes (1..1024). */
  workers: number;
  /**
   * Connections sent to one worker and not yet adopted by it. When every
   * worker's queue is full (or every worker is at maxConnectionsPerWorker)
   * the master stops accepting and the kernel's listen backlog holds new
   * connections; none is refused.
   */
  maxQueuePerWorker: number;
  /** Connections one worker holds at once (queued + open). */
  maxConnectionsPerWorker: number;
  /** Rotate a worker after this many connections: stop sending, drain, exit, replace. */
  maxRequestsPerWorker?: number;
  spawnBackoff: SpawnBackoff;
  /** Milliseconds a stopping worker may take to drain before it is killed (rotation and close). */
  shutdownDeadline: number;
  /** How long a new worker may take to report ready (default 10,000 ms). */
  startTimeoutMs?: number;
  /** Arguments after the script (default: none; workerFn mode: this process's). */
  args?: readonly string[];
  /** Default: process.execPath. */
  execPath?: string;
  /** Node flags for workers (default: process.execArgv, like node:cluster). */
  execArgv?: readonly string[];
  /** Workers' environment (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Send workers' stdout/stderr to /dev/null instead of ours (default false). */
  silent?: boolean;
  log?: DispatchLogger;
}

export interface ScriptDispatcherOptions extends DispatcherOptionsBase {
  /** The module each worker runs; it calls serveDispatched(handler). */
  workerScript: string;
  workerFn?: undefined;
}

export interface FnDispatcherOptions extends DispatcherOptionsBase {
  /**
   * Single-file programs: each worker re-runs this process's main script
   * (like node:cluster), and in a worker createDispatcher serves with this
   * handler instead of starting a master.
   */
  workerFn: DispatchHandler;
  workerScript?: undefined;
}

export type DispatcherOptions = ScriptDispatcherOptions | FnDispatcherOptions;

export interface WorkerEvent {
  slot: number;
  pid: number;
  generation: number;
}

export interface WorkerExitEvent extends WorkerEvent {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Asked to stop (rotation or shutdown) rather than crashed. */
  planned: boolean;
}

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

interface Settings {
  listen: readonly DispatchListen[];
  workers: number;
  maxQueuePerWorker: number;
  maxConnectionsPerWorker: number;
  maxRequestsPerWorker: number | undefined;
  backoff: Required<SpawnBackoff>;
  shutdownDeadline: number;
  startTimeoutMs: number;
  command: string;
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  silent: boolean;
  log: DispatchLogger;
}

function validate(o: DispatcherOptions): Settings {
  const usage = (what: string): never => {
    throw new TypeError(`Usage: createDispatcher(options): ${what}`);
  };
  if (typeof o !== 'object' || o === null) usage('options must be an object');
  const listen: readonly DispatchListen[] = Array.isArray(o.listen)
    ? (o.listen as readonly DispatchListen[])
    : [o.listen as DispatchListen];
  if (listen.length === 0 || listen.length > MAX_LISTENERS) {
    usage(`listen must name 1..${MAX_LISTENERS} listeners`);
  }
  for (const l of listen) {
    if (typeof l !== 'object' || l === null) usage('each listen entry must be an object');
    if ('path' in l) {
      if (typeof l.path !== 'string' || l.path.length === 0) usage('listen.path must be a string');
    } else if (!Number.isInteger(l.port) || l.port < 0 || l.port > 65535) {
      usage('listen needs { port: 0..65535 } or { path }');
    }
  }
  const int = (v: unknown, name: string, min: number, max = 2 ** 31 - 1): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      usage(`${name} must be an integer ${min}..${max}`);
    }
    return v as number;
  };
  const workers = int(o.workers, 'workers', 1, 1024);
  const maxQueuePerWorker = int(o.maxQueuePerWorker, 'maxQueuePerWorker', 1);
  const maxConnectionsPerWorker = int(o.maxConnectionsPerWorker, 'maxConnectionsPerWorker', 1);
  const maxRequestsPerWorker =
    o.maxRequestsPerWorker === undefined
      ? undefined
      : int(o.maxRequestsPerWorker, 'maxRequestsPerWorker', 1, Number.MAX_SAFE_INTEGER);
  const b = o.spawnBackoff;
  if (typeof b !== 'object' || b === null) usage('spawnBackoff must be { initialMs, maxMs }');
  const backoff: Required<SpawnBackoff> = {
    initialMs: int(b.initialMs, 'spawnBackoff.initialMs', 0),
    maxMs: int(b.maxMs, 'spawnBackoff.maxMs', 0),
    factor: b.factor ?? 2,
    resetAfterMs: int(b.resetAfterMs ?? 30_000, 'spawnBackoff.resetAfterMs', 0),
  };
  if (!(backoff.factor >= 1)) usage('spawnBackoff.factor must be ≥ 1');
  const shutdownDeadline = int(o.shutdownDeadline, 'shutdownDeadline', 0, 0xffffffff);
  const startTimeoutMs = int(o.startTimeoutMs ?? 10_000, 'startTimeoutMs', 1);
  let script: string;
  let args: readonly string[];
  if (o.workerFn !== undefined) {
    if (typeof o.workerFn !== 'function') usage('workerFn must be a function');
    if (o.workerScript !== undefined) usage('give workerScript or workerFn, not both');
    const main = process.argv[1];
    if (main === undefined) usage('workerFn needs a main script to re-run (process.argv[1])');
    script = main as string;
    args = o.args ?? process.argv.slice(2);
  } else {
    if (typeof o.workerScript !== 'string' || o.workerScript.length === 0) {
      usage('workerScript (a path) or workerFn is required');
    }
    script = o.workerScript;
    args = o.args ?? [];
  }
  return {
    listen,
    workers,
    maxQueuePerWorker,
    maxConnectionsPerWorker,
    maxRequestsPerWorker,
    backoff,
    shutdownDeadline,
    startTimeoutMs,
    command: o.execPath ?? process.execPath,
    argv: [...(o.execArgv ?? process.execArgv), script, ...args],
    env: o.env ?? process.env,
    silent: o.silent ?? false,
    log: o.log ?? stderrDispatchLogger,
  };
}

/** One worker process and what the master knows of it. */
interface WorkerProc {
  slot: Slot;
  generation: number;
  child: ChildProcess;
  pid: number;
  link: WorkerLink;
  spawnedAt: number;
  ready: boolean;
  /** Asked to stop (rotation or shutdown): its exit is no crash. */
  planned: boolean;
  exited: boolean;
  linkLost: boolean;
  timers: NodeJS.Timeout[];
}

interface Slot {
  index: number;
  /** Workers this slot has had. */
  generations: number;
  /** The worker serving this slot (a retiring one is no longer it). */
  current: WorkerProc | null;
  crashes: number;
  respawnTimer: NodeJS.Timeout | null;
}

/** After a worker's process exits, how long its channel may still deliver what it sent. */
const EXIT_GRACE_MS = 500;
/** After SIGKILL, how long to wait for the exit before giving up on reaping. */
const KILL_WAIT_MS = 5_000;

class DispatcherImpl extends EventEmitter implements Dispatcher {
  readonly role = 'master' as const;
  endpoints: readonly DispatchEndpoint[] = [];

  readonly #s: Settings;
  #acceptors: FdAcceptor[] = [];
  #scheduler: DispatchScheduler | null = null;
  #slots: Slot[] = [];
  #procs = new Set<WorkerProc>();
  #started = false;
  #startFailure: ((err: Error) => void) | null = null;
  #closing: Promise<void> | null = null;
  #accepting = false;
  #acceptErrors = 0;
  #spawnErrors = 0;
  #crashes = 0;
  #respawns = 0;
  #rotations = 0;
  #exitWaiters: (() => void)[] = [];
  /** A failed start was undone: nothing may be respawned. */
  #tornDown = false;

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
    scheduler.on('ready', (link: WorkerLink) => this.#onReady(link));
    scheduler.on('lost', (link: WorkerLink) => this.#onLinkLost(link));
    scheduler.on('retire', (link: WorkerLink) => this.#onRetire(link));
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
    for (let i = 0; i < s.workers; i++) {
      this.#slots.push({ index: i, generations: 0, current: null, crashes: 0, respawnTimer: null });
    }
    try {
      const failed = new Promise<never>((_, reject) => {
        this.#startFailure = reject;
      });
      failed.catch(() => {});
      // One after the other: the first worker that cannot be spawned stops
      // the start, and only what was created before it needs undoing.
      for (const slot of this.#slots) await Promise.race([this.#spawn(slot), failed]);
      await Promise.race([this.#allReady(), failed]);
    } catch (err) {
      this.#startFailure = null;
      await this.#teardown();
      throw err;
    }
    this.#startFailure = null;
    this.#started = true;
    this.#applyCapacity(scheduler.freeCapacity());
  }

  #allReady(): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (this.#slots.every((s) => s.current?.ready === true)) {
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
  async #teardown(): Promise<void> {
    this.#tornDown = true;
    for (const slot of this.#slots) {
      if (slot.respawnTimer) clearTimeout(slot.respawnTimer);
      slot.respawnTimer = null;
    }
    for (const a of this.#acceptors) a.close();
    const exits = [...this.#procs].map((p) => this.#killAndReap(p));
    this.#scheduler?.closeAll();
    await Promise.all(exits);
    for (const p of this.#procs) for (const t of p.timers) clearTimeout(t);
  }

  async #killAndReap(p: WorkerProc): Promise<void> {
    if (p.exited) return;
    const exited = once(p.child, 'exit');
    p.child.kill('SIGKILL');
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, KILL_WAIT_MS);
    });
    await Promise.race([exited, gaveUp]);
    clearTimeout(timer);
  }

  // --- workers -------------------------------------------------------------

  /**
   * Spawns a worker for `slot` with a fresh channel. Throws DispatchError
   * (CHANNEL_FAILED / SPAWN_FAILED, naming the errno) having released
   * everything it created.
   */
  async #spawn(slot: Slot): Promise<WorkerProc> {
    const s = this.#s;
    const scheduler = this.#scheduler as DispatchScheduler;
    let mine: FdSocket;
    let theirs: FdSocket;
    try {
      [mine, theirs] = FdSocket.pair('seqpacket', { maxFdsPerMessage: MAX_FDS_PER_DISPATCH });
    } catch (err) {
      this.#spawnErrors++;
      throw DispatchError.from(
        'CHANNEL_FAILED',
        `cannot open the channel for worker ${slot.index}`,
        err,
      );
    }
    let child: ChildProcess;
    try {
      // The channel is a socketpair handed over at spawn, as the child's
      // fd 3 (stdio[3]; the env var names it), rather than a Unix path the
      // worker would connect to: no file to secure or clean up, no accept
      // step that could pair the wrong peer, and each end exists in exactly
      // the two processes that own it from the first instant.
      child = spawn(s.command, s.argv, {
        stdio: [
          'ignore',
          s.silent ? 'ignore' : 'inherit',
          s.silent ? 'ignore' : 'inherit',
          theirs.fd,
        ],
        env: { ...s.env, [DISPATCH_CHANNEL_ENV]: '3' },
      });
    } catch (err) {
      mine.close();
      theirs.close();
      this.#spawnErrors++;
      throw DispatchError.from('SPAWN_FAILED', `cannot spawn worker ${slot.index}`, err);
    } finally {
      // The child has its own copy (or none, if spawn failed). Ours must go
      // now: an end left open here would keep the channel alive after the
      // worker dies, and its death would go unseen.
      theirs.close();
    }
    if (child.pid === undefined) {
      // libuv reports exec failures (ENOENT, EACCES, EMFILE…) as 'error' on
      // the next tick, with the errno of that very failure.
      const [err] = (await once(child, 'error')) as [Error];
      mine.close();
      this.#spawnErrors++;
      throw DispatchError.from('SPAWN_FAILED', `cannot spawn worker ${slot.index}`, err);
    }
    const generation = slot.generations++;
    let link: WorkerLink;
    try {
      link = scheduler.attach(mine, slot.index, generation, child.pid);
    } catch (err) {
      mine.close();
      child.kill('SIGKILL');
      this.#spawnErrors++;
      throw DispatchError.from('CHANNEL_FAILED', `cannot greet worker ${slot.index}`, err);
    }
    const proc: WorkerProc = {
      slot,
      generation,
      child,
      pid: child.pid,
      link,
      spawnedAt: performance.now(),
      ready: false,
      planned: false,
      exited: false,
      linkLost: false,
      timers: [],
    };
    this.#procs.add(proc);
    slot.current = proc;
    child.on('error', (err) => {
      this.#s.log('warn', `worker ${slot.index} (pid ${proc.pid}): ${errorCode(err)}`, {
        errno: errorCode(err),
      });
    });
    child.once('exit', (code, signal) => this.#onExit(proc, code, signal));
    const readyTimer = setTimeout(() => {
      if (proc.ready || proc.exited) return;
      const err = new DispatchError(
        'START_TIMEOUT',
        `worker ${slot.index} (pid ${proc.pid}) did not report ready in ${s.startTimeoutMs} ms`,
      );
      this.#s.log('error', err.message);
      if (!this.#failStart(err)) {
        proc.link.channel.close();
        child.kill('SIGKILL');
      }
    }, s.startTimeoutMs);
    proc.timers.push(readyTimer);
    return proc;
  }

  #procOf(link: WorkerLink): WorkerProc | undefined {
    for (const p of this.#procs) if (p.link === link) return p;
    return undefined;
  }

  #onReady(link: WorkerLink): void {
    const p = this.#procOf(link);
    if (p === undefined) return;
    p.ready = true;
    for (const t of p.timers) clearTimeout(t);
    p.timers = [];
    this.emit('workerReady', { slot: p.slot.index, pid: p.pid, generation: p.generation });
  }

  #onRetire(link: WorkerLink): void {
    const p = this.#procOf(link);
    if (p === undefined || p.planned) return;
    p.planned = true;
    this.#rotations++;
    this.#s.log(
      'info',
      `worker ${p.slot.index} (pid ${p.pid}) reached maxRequestsPerWorker; rotating`,
    );
    this.#armKill(p);
    if (p.slot.current === p) {
      p.slot.current = null;
      this.#replace(p.slot, 0);
    }
  }

  /** A stopping worker gets shutdownDeadline to drain (plus a second to exit), then SIGKILL. */
  #armKill(p: WorkerProc): void {
    const t = setTimeout(() => {
      if (!p.exited) {
        this.#s.log(
          'warn',
          `worker ${p.slot.index} (pid ${p.pid}) did not drain in time; killing it`,
        );
        p.child.kill('SIGKILL');
      }
    }, this.#s.shutdownDeadline + 1000);
    t.unref();
    p.timers.push(t);
  }

  #onLinkLost(link: WorkerLink): void {
    const p = this.#procOf(link);
    if (p === undefined) return;
    p.linkLost = true;
    if (!p.exited) {
      // A worker whose channel is gone drains what it holds and exits by
      // itself (it sees the channel close); make sure it does.
      if (!p.planned) this.#armKill(p);
    }
    const crashed = !p.planned && !this.#closing && !this.#tornDown;
    if (crashed && !this.#started) {
      // Its exit status says more than the channel's errno: wait a moment
      // for it (#onExit fails the start), then fail with what we have.
      const err = new DispatchError(
        'WORKER_START_FAILED',
        `worker ${p.slot.index} (pid ${p.pid}) broke its channel before it was ready${link.lostError ? ` (${link.lostError.message})` : ''}`,
      );
      if (p.exited) this.#failStart(err);
      else {
        const t = setTimeout(() => this.#failStart(err), EXIT_GRACE_MS);
        t.unref();
        p.timers.push(t);
      }
    } else if (crashed) {
      this.#crashes++;
      if (p.slot.current === p) {
        p.slot.current = null;
        const alive = performance.now() - p.spawnedAt;
        if (alive >= this.#s.backoff.resetAfterMs) p.slot.crashes = 0;
        p.slot.crashes++;
        const { initialMs, maxMs, factor } = this.#s.backoff;
        const delay = Math.min(maxMs, initialMs * factor ** (p.slot.crashes - 1));
        this.#s.log(
          'warn',
          `worker ${p.slot.index} (pid ${p.pid}) is gone; respawning in ${Math.round(delay)} ms`,
          { slot: p.slot.index, pid: p.pid, delayMs: delay },
        );
        this.#replace(p.slot, delay, true);
      }
    }
    this.#settle(p);
  }

  #onExit(p: WorkerProc, code: number | null, signal: NodeJS.Signals | null): void {
    p.exited = true;
    if (!p.linkLost) {
      // Normally the channel reports EOF right after the exit. If something
      // else still holds the worker's end (a child it spawned before
      // serveDispatched took the fd), give the channel a moment to deliver
      // what the worker sent, then close it.
      const t = setTimeout(() => {
        if (!p.linkLost) p.link.channel.close();
      }, EXIT_GRACE_MS);
      t.unref();
      p.timers.push(t);
    }
    if (!p.ready && !p.planned) {
      const how = signal === null ? `with code ${code}` : `on ${signal}`;
      this.#failStart(
        new DispatchError(
          'WORKER_START_FAILED',
          `worker ${p.slot.index} (pid ${p.pid}) exited ${how} before it was ready`,
        ),
      );
    }
    this.emit('workerExit', {
      slot: p.slot.index,
      pid: p.pid,
      generation: p.generation,
      code,
      signal,
      planned: p.planned,
    } satisfies WorkerExitEvent);
    this.#settle(p);
  }

  /** Forgets a worker once both its process and its channel are gone. */
  #settle(p: WorkerProc): void {
    if (!p.exited || !p.linkLost) return;
    for (const t of p.timers) clearTimeout(t);
    p.timers = [];
    this.#procs.delete(p);
    if (p.slot.current === p) p.slot.current = null;
    if (this.#procs.size === 0) for (const w of this.#exitWaiters.splice(0)) w();
  }

  /** Puts a new worker in `slot` after `delayMs` (retrying with back-off if it cannot spawn). */
  #replace(slot: Slot, delayMs: number, crash = false): void {
    if (this.#closing || this.#tornDown || slot.respawnTimer) return;
    const go = () => {
      slot.respawnTimer = null;
      if (this.#closing || this.#tornDown || slot.current) return;
      if (crash) this.#respawns++;
      this.#spawn(slot).catch((err: DispatchError) => {
        slot.crashes++;
        const { initialMs, maxMs, factor } = this.#s.backoff;
        const delay = Math.min(maxMs, Math.max(1, initialMs) * factor ** (slot.crashes - 1));
        this.#s.log('error', `${err.message}; retrying in ${Math.round(delay)} ms`, {
          slot: slot.index,
          code: err.code,
          errno: err.errnoCode,
        });
        this.#replace(slot, delay, false);
      });
    };
    if (delayMs <= 0) {
      go();
      return;
    }
    slot.respawnTimer = setTimeout(go, delayMs);
    slot.respawnTimer.unref();
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
    const c = scheduler.counters;
    const errorsByKind: Record<DispatcherErrorKind, number> = {
      send: c.errors.send,
      dropped: c.errors.dropped,
      adopt: c.errors.adopt,
      closed: c.errors.closed,
      abandoned: c.errors.abandoned,
      protocol: c.errors.protocol,
      accept: this.#acceptErrors,
      spawn: this.#spawnErrors,
      crash: this.#crashes,
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
      alive: [...this.#procs].filter((p) => !p.exited).length,
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
      respawns: this.#respawns,
      rotations: this.#rotations,
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
    this.#accepting = false;
    for (const slot of this.#slots) {
      if (slot.respawnTimer) clearTimeout(slot.respawnTimer);
      slot.respawnTimer = null;
    }
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
    for (const p of this.#procs) p.planned = true;
    scheduler.shutdown();
    if (this.#procs.size > 0) {
      const allExited = new Promise<void>((resolve) => this.#exitWaiters.push(resolve));
      let deadline: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => {
        deadline = setTimeout(resolve, this.#s.shutdownDeadline);
      });
      await Promise.race([allExited, timedOut]);
      clearTimeout(deadline);
      const left = [...this.#procs].filter((p) => !p.exited);
      if (left.length > 0) {
        this.#s.log(
          'warn',
          `${left.length} worker(s) did not drain within ${this.#s.shutdownDeadline} ms; killing them`,
        );
      }
      await Promise.all(left.map((p) => this.#killAndReap(p)));
    }
    scheduler.closeAll();
    for (const p of this.#procs) for (const t of p.timers) clearTimeout(t);
    this.#procs.clear();
  }
}

function describe(l: DispatchEndpoint | undefined): string {
  if (l === undefined) return 'a listener';
  return l.transport === 'unix' ? l.path : `${l.address}:${l.port}`;
}
