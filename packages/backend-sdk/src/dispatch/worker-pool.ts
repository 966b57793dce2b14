// The master's worker processes, one per slot: spawning each with its
// channel, the readiness timeout, crash respawn with back-off, rotation, and
// killing and reaping. Listeners, the start as a whole and shutdown order are
// master.ts; who gets which connection is scheduler.ts.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { FdSocket } from '@handoff/fdpass';
import { DispatchError } from './errors.js';
import { errorCode } from './log.js';
import type { Settings } from './options.js';
import type { DispatchScheduler } from './scheduler.js';
import type { WorkerLink } from './scheduler-link.js';
import { spawnWithChannel } from './worker-channel.js';

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

/** What the pool asks of the master that owns it. */
export interface PoolHost {
  /** The start finished: a worker's failure is a crash now, not a failed start. */
  isStarted(): boolean;
  /** close() was called: nothing is respawned. */
  isClosing(): boolean;
  /** During start, fails it and returns true; afterwards returns false. */
  failStart(err: Error): boolean;
  workerReady(event: WorkerEvent): void;
  workerExit(event: WorkerExitEvent): void;
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

export class WorkerPool {
  readonly counts = {
    /** Worker processes that could not be spawned. */
    spawnErrors: 0,
    /** Workers that exited without being asked to. */
    crashes: 0,
    respawns: 0,
    rotations: 0,
  };

  readonly #s: Settings;
  readonly #scheduler: DispatchScheduler;
  readonly #host: PoolHost;
  readonly #slots: Slot[] = [];
  readonly #procs = new Set<WorkerProc>();
  #exitWaiters: (() => void)[] = [];
  /** A failed start was undone: nothing may be respawned. */
  #tornDown = false;

  constructor(settings: Settings, scheduler: DispatchScheduler, host: PoolHost) {
    this.#s = settings;
    this.#scheduler = scheduler;
    this.#host = host;
    scheduler.on('ready', (link: WorkerLink) => this.#onReady(link));
    scheduler.on('lost', (link: WorkerLink) => this.#onLinkLost(link));
    scheduler.on('retire', (link: WorkerLink) => this.#onRetire(link));
    for (let i = 0; i < settings.workers; i++) {
      this.#slots.push({ index: i, generations: 0, current: null, crashes: 0, respawnTimer: null });
    }
  }

  /** Worker processes not yet exited. */
  get alive(): number {
    return [...this.#procs].filter((p) => !p.exited).length;
  }

  get allReady(): boolean {
    return this.#slots.every((s) => s.current?.ready === true);
  }

  /**
   * Spawns every slot's first worker, one after the other: the first that
   * cannot be spawned (or a `failed` start) stops it, and only what was
   * created before needs undoing.
   */
  async spawnAll(failed: Promise<never>): Promise<void> {
    for (const slot of this.#slots) await Promise.race([this.#spawn(slot), failed]);
  }

  cancelRespawns(): void {
    for (const slot of this.#slots) {
      if (slot.respawnTimer) clearTimeout(slot.respawnTimer);
      slot.respawnTimer = null;
    }
  }

  /** After a failed start: nothing is respawned again, and every worker is killed. */
  tearDown(): Promise<void> {
    this.#tornDown = true;
    this.cancelRespawns();
    return Promise.all([...this.#procs].map((p) => this.#killAndReap(p))).then(() => {});
  }

  /** Shutdown: exits from now on are planned, none is a crash. */
  planExits(): void {
    for (const p of this.#procs) p.planned = true;
  }

  /** Waits up to shutdownDeadline for every worker to exit, then kills and reaps the rest. */
  async drainOrKill(): Promise<void> {
    if (this.#procs.size === 0) return;
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

  /** Clears every worker's timers; with `forget`, drops them all. */
  clearTimers(forget: boolean): void {
    for (const p of this.#procs) for (const t of p.timers) clearTimeout(t);
    if (forget) this.#procs.clear();
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

  // --- spawning ------------------------------------------------------------

  /**
   * Spawns a worker for `slot` with a fresh channel. Throws DispatchError
   * (CHANNEL_FAILED / SPAWN_FAILED, naming the errno) having released
   * everything it created.
   */
  async #spawn(slot: Slot): Promise<WorkerProc> {
    const s = this.#s;
    const scheduler = this.#scheduler;
    let mine: FdSocket;
    let child: ChildProcess;
    try {
      ({ mine, child } = spawnWithChannel(s, slot.index));
    } catch (err) {
      this.counts.spawnErrors++;
      throw err;
    }
    if (child.pid === undefined) {
      // libuv reports exec failures (ENOENT, EACCES, EMFILE…) as 'error' on
      // the next tick, with the errno of that very failure.
      const [err] = (await once(child, 'error')) as [Error];
      mine.close();
      this.counts.spawnErrors++;
      throw DispatchError.from('SPAWN_FAILED', `cannot spawn worker ${slot.index}`, err);
    }
    const generation = slot.generations++;
    let link: WorkerLink;
    try {
      link = scheduler.attach(mine, slot.index, generation, child.pid);
    } catch (err) {
      mine.close();
      child.kill('SIGKILL');
      this.counts.spawnErrors++;
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
      if (!this.#host.failStart(err)) {
        proc.link.channel.close();
        child.kill('SIGKILL');
      }
    }, s.startTimeoutMs);
    proc.timers.push(readyTimer);
    return proc;
  }

  /** Puts a new worker in `slot` after `delayMs` (retrying with back-off if it cannot spawn). */
  #replace(slot: Slot, delayMs: number, crash = false): void {
    if (this.#host.isClosing() || this.#tornDown || slot.respawnTimer) return;
    const go = () => {
      slot.respawnTimer = null;
      if (this.#host.isClosing() || this.#tornDown || slot.current) return;
      if (crash) this.counts.respawns++;
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

  // --- what happens to a worker ----------------------------------------------

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
    this.#host.workerReady({ slot: p.slot.index, pid: p.pid, generation: p.generation });
  }

  #onRetire(link: WorkerLink): void {
    const p = this.#procOf(link);
    if (p === undefined || p.planned) return;
    p.planned = true;
    this.counts.rotations++;
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
    const crashed = !p.planned && !this.#host.isClosing() && !this.#tornDown;
    if (crashed && !this.#host.isStarted()) {
      // Its exit status says more than the channel's errno: wait a moment
      // for it (#onExit fails the start), then fail with what we have.
      const err = new DispatchError(
        'WORKER_START_FAILED',
        `worker ${p.slot.index} (pid ${p.pid}) broke its channel before it was ready${link.lostError ? ` (${link.lostError.message})` : ''}`,
      );
      if (p.exited) this.#host.failStart(err);
      else {
        const t = setTimeout(() => this.#host.failStart(err), EXIT_GRACE_MS);
        t.unref();
        p.timers.push(t);
      }
    } else if (crashed) {
      this.counts.crashes++;
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
      this.#host.failStart(
        new DispatchError(
          'WORKER_START_FAILED',
          `worker ${p.slot.index} (pid ${p.pid}) exited ${how} before it was ready`,
        ),
      );
    }
    this.#host.workerExit({
      slot: p.slot.index,
      pid: p.pid,
      generation: p.generation,
      code,
      signal,
      planned: p.planned,
    });
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
}
