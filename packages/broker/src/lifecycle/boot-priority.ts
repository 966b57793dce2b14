// A rolling restart's replacement boots while its predecessor serves: on a
// small machine, a Node daemon's start-up (hundreds of ms of module loading
// on its main thread, compilation and GC on V8's worker threads) takes CPU
// from the daemon, the broker and the clients that are live. So the
// replacement boots at a lower CPU weight and gets its full weight back the
// moment it is ready (before it is routed a client), or after a budget:
// three times its service's last boot, and never past half its ready
// deadline. On a machine saturated by other work a boot at a low weight
// barely runs, so the budget bounds how much longer the restart takes and
// keeps a low weight from turning into a failed restart.
//
// The knob is the nice value of the replacement's autogroup
// (/proc/<pid>/autogroup, sched(7)): the kernel groups each session's
// processes for CPU fairness, and a broker-spawned daemon is alone in its
// own session. Unlike a process's own nice value, an autogroup's may be
// raised and lowered back to 0 without privilege: its owner may write 0–19,
// at most once per 100 ms on the whole system without CAP_SYS_ADMIN
// (EAGAIN otherwise, so writes are retried). Autogroups apply when
// kernel.sched_autogroup_enabled is 1 and the processes are not in a cgroup
// with the cpu controller; elsewhere the write is accepted and changes
// nothing, and this costs one small file write.
import { readFileSync, writeFileSync } from 'node:fs';

/** How soon a refused write (EAGAIN) is tried again; the kernel's limit is one per 100 ms (HZ / 10). */
const RETRY_EVERY_MS = 25;
/** Restoring keeps trying this long; a replacement left at a low weight is worse than a late one. */
const RESTORE_TRIES_MS = 2_000;

export interface BootPriorityIo {
  read(path: string): string;
  write(path: string, text: string): void;
}

const procIo: BootPriorityIo = {
  read: (path) => readFileSync(path, 'utf8'),
  write: (path, text) => writeFileSync(path, text),
};

export type BootPriorityOutcome =
  /** Lowered to the given nice value. */
  | 'lowered'
  /** Not lowered: autogroups are off, or the daemon shares the broker's session. */
  | 'unsupported'
  /** The full weight is back. */
  | 'restored'
  /** The write kept failing (the message says why): the daemon keeps the lower weight. */
  | 'restore-failed';

export interface BootPriorityOptions {
  /** The nice value (1–19) the replacement's autogroup boots at. */
  nice: number;
  /** Restore by itself after this long, if nothing restored it before. */
  restoreAfterMs: number;
  /** Hears what happened, for the broker's log. */
  notice?: (outcome: BootPriorityOutcome, detail: string) => void;
  /** Where /proc is read and written (tests only). */
  io?: BootPriorityIo;
}

/** A replacement keeps the lower weight at most this many times its service's last boot... */
const BOOT_ALLOWANCE = 3;
/** ...and at least this long (ms), so that a boot slowed by the restart itself still gains from it. */
const MIN_LOW_WEIGHT_MS = 1_000;
/** Without a boot seen yet (daemons found again by a new broker): this long (ms). */
const UNKNOWN_BOOT_LOW_WEIGHT_MS = 2_000;

/**
 * How long a replacement may boot at the lower weight before it gets its
 * full weight back anyway: three times its service's last spawn-to-ready
 * (at least 1 s; 2 s when none was seen), and never past half the ready
 * deadline. On a machine busy with other work, a boot at a low weight
 * barely runs; this bounds what the restart pays for it.
 */
export function lowWeightBudgetMs(lastBootMs: number | undefined, readyTimeoutMs: number): number {
  const budget =
    lastBootMs === undefined
      ? UNKNOWN_BOOT_LOW_WEIGHT_MS
      : Math.max(MIN_LOW_WEIGHT_MS, BOOT_ALLOWANCE * lastBootMs);
  return Math.floor(Math.min(budget, readyTimeoutMs / 2));
}

/**
 * The autogroup every process starts in at boot, shown by the kernel as an
 * empty file: a process whose session chain never called setsid() is in it
 * (a container's or a sandbox's init and whatever it starts directly). It
 * is the root task group, whose weight cannot be written.
 */
export const ROOT_AUTOGROUP = '/autogroup-0';

/**
 * `/autogroup-123 nice 0` → its group name and nice value; an empty file →
 * the root autogroup (ROOT_AUTOGROUP); null if the file says nothing usable.
 */
export function autogroupOf(text: string): { group: string; nice: number } | null {
  if (text.trim() === '') return { group: ROOT_AUTOGROUP, nice: 0 };
  const match = /^(\S+) nice (-?\d+)\s*$/.exec(text);
  return match ? { group: match[1]!, nice: Number(match[2]) } : null;
}

/**
 * Lowers `pid`'s autogroup to `options.nice` while it boots; restore()
 * (idempotent) gives the weight back. Returns null, having touched
 * nothing, when there is nothing to lower: autogroups off, the daemon in
 * the broker's own autogroup (lowering it would slow the broker) or in the
 * root one, or /proc unreadable.
 */
export function lowerBootPriority(pid: number, options: BootPriorityOptions): BootPriority | null {
  const io = options.io ?? procIo;
  const notice = options.notice ?? (() => {});
  let theirs: ReturnType<typeof autogroupOf>;
  try {
    if (io.read('/proc/sys/kernel/sched_autogroup_enabled').trim() !== '1') {
      notice('unsupported', 'kernel.sched_autogroup_enabled is not 1');
      return null;
    }
    const ours = autogroupOf(io.read('/proc/self/autogroup'));
    theirs = autogroupOf(io.read(`/proc/${pid}/autogroup`));
    // A broker in the root autogroup still lowers a daemon in a group of
    // its own; a daemon in the root group has none to lower.
    if (
      ours === null ||
      theirs === null ||
      theirs.group === ROOT_AUTOGROUP ||
      ours.group === theirs.group
    ) {
      notice('unsupported', `pid ${pid} is not in an autogroup of its own`);
      return null;
    }
  } catch (error) {
    notice('unsupported', (error as Error).message);
    return null;
  }
  return new BootPriority(pid, theirs.nice, io, options);
}

export class BootPriority {
  /** cancel() was called: no more writes at all. */
  private cancelled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly lowered: Promise<boolean>;
  private restoring: Promise<void> | null = null;

  constructor(
    readonly pid: number,
    /** The autogroup's nice value before it was lowered (0 for a fresh session). */
    private readonly before: number,
    private readonly io: BootPriorityIo,
    private readonly options: BootPriorityOptions,
  ) {
    // The lowering is worth little once the boot is well under way: a few tries only.
    this.lowered = this.writeNice(options.nice, 4 * RETRY_EVERY_MS).then((result) => {
      if (result === 'written') options.notice?.('lowered', `nice ${options.nice}`);
      const error = worthSaying(result);
      if (error) options.notice?.('unsupported', error.message);
      return result === 'written';
    });
    this.timer = setTimeout(() => void this.restore(), options.restoreAfterMs);
    this.timer.unref();
  }

  /** Gives the autogroup its weight back (retrying EAGAIN); resolves once that is done or given up. */
  restore(): Promise<void> {
    if (this.restoring === null) {
      clearTimeout(this.timer);
      this.restoring = this.giveBack();
    }
    return this.restoring;
  }

  private async giveBack(): Promise<void> {
    if (this.cancelled || !(await this.lowered)) return;
    const result = await this.writeNice(this.before, RESTORE_TRIES_MS);
    if (result === 'written') this.options.notice?.('restored', `nice ${this.before}`);
    const error = worthSaying(result);
    if (error)
      this.options.notice?.(
        'restore-failed',
        `could not set pid ${this.pid}'s autogroup back to nice ${this.before}: ${error.message}`,
      );
  }

  /** The daemon exited or is being killed: nothing to give back, and its pid is no longer its own. */
  cancel(): void {
    this.cancelled = true;
    clearTimeout(this.timer);
  }

  /** Writes `nice`, retrying EAGAIN for up to `triesMs`. */
  private async writeNice(
    nice: number,
    triesMs: number,
  ): Promise<'written' | 'cancelled' | NodeJS.ErrnoException> {
    const until = performance.now() + triesMs;
    for (;;) {
      if (this.cancelled) return 'cancelled';
      try {
        this.io.write(`/proc/${this.pid}/autogroup`, String(nice));
        return 'written';
      } catch (error) {
        const failure = error as NodeJS.ErrnoException;
        if (failure.code !== 'EAGAIN' || performance.now() >= until) return failure;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_EVERY_MS));
    }
  }
}

/**
 * Keeps `priority` for a start whose readiness is `ready`: gives the
 * weight back once it is ready (the returned promise settles after that),
 * and drops it without a write if the start fails or `child` exits.
 */
export function holdUntilReady<T>(
  ready: Promise<T>,
  priority: BootPriority,
  child: { once(event: 'exit', listener: () => void): unknown },
): Promise<T> {
  child.once('exit', () => priority.cancel());
  return ready.then(
    async (value) => {
      await priority.restore();
      return value;
    },
    (error: unknown) => {
      priority.cancel();
      throw error;
    },
  );
}

/** A write's failure worth a notice: not a success, a cancel, or a daemon already gone. */
function worthSaying(
  result: 'written' | 'cancelled' | NodeJS.ErrnoException,
): NodeJS.ErrnoException | null {
  if (result === 'written' || result === 'cancelled') return null;
  return result.code === 'ENOENT' || result.code === 'ESRCH' ? null : result;
}
