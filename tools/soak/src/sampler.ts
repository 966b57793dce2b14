// Sampling the three processes (the runner itself, the broker, the live
// daemon) every period: open fds, children, VmRSS. It keeps aggregates
// only — a baseline, a warm-up maximum and a short ring of recent RSS
// values per process — so its memory does not grow with the run.
import { childrenByParent, openFds, rssKib } from './proc.js';
import type { SoakProcesses } from './processes.js';

export interface ProcessFigures {
  pid: number;
  fds: number | undefined;
  children: number | undefined;
  rss_kib: number | undefined;
}

export interface Snapshot {
  runner: ProcessFigures;
  broker: ProcessFigures;
  /** The broker's children: the demo daemons alive. */
  daemons: number;
  daemon: ProcessFigures | null;
}

const RECENT = 5;

/**
 * RSS of one process: the largest value in its warm-up window (its first
 * `warmupMs` under traffic), and the median of its last few samples — a
 * median, so one allocation spike at the end is not read as growth.
 */
export class RssTrack {
  private warmMax = 0;
  private readonly recent: number[] = [];
  private readonly warmUntil: number;
  constructor(
    readonly pid: number,
    readonly since: number,
    warmupMs: number,
  ) {
    this.warmUntil = since + warmupMs;
  }

  add(at: number, rss: number | undefined): void {
    if (rss === undefined) return;
    if (at <= this.warmUntil) this.warmMax = Math.max(this.warmMax, rss);
    this.recent.push(rss);
    if (this.recent.length > RECENT) this.recent.shift();
  }

  /** Null until the warm-up is over and samples followed it. */
  result(now: number): { warm_kib: number; end_kib: number; growth_pct: number } | null {
    if (now <= this.warmUntil || this.warmMax === 0 || this.recent.length === 0) return null;
    const sorted = [...this.recent].sort((a, b) => a - b);
    const end = sorted[sorted.length >> 1]!;
    return {
      warm_kib: this.warmMax,
      end_kib: end,
      growth_pct: Math.round(((end - this.warmMax) / this.warmMax) * 1000) / 10,
    };
  }
}

/**
 * The broker's JS heap, as it reports it (admin STATUS): RSS alone cannot
 * tell a leak from an allocator that keeps what it once needed. The lowest
 * heap-used value of a window is close to what survived the last GC, so
 * the warm-up's lowest is compared with the lowest of the last samples.
 */
export class HeapTrack {
  private warmMin = Number.POSITIVE_INFINITY;
  private readonly recent: number[] = [];
  private readonly warmUntil: number;
  constructor(since: number, warmupMs: number) {
    this.warmUntil = since + warmupMs;
  }

  add(at: number, heapUsedBytes: number): void {
    const kib = Math.round(heapUsedBytes / 1024);
    if (at <= this.warmUntil) this.warmMin = Math.min(this.warmMin, kib);
    this.recent.push(kib);
    if (this.recent.length > RECENT * 4) this.recent.shift();
  }

  result(now: number): { warm_min_kib: number; end_min_kib: number; growth_pct: number } | null {
    if (now <= this.warmUntil || !Number.isFinite(this.warmMin) || this.recent.length === 0)
      return null;
    const end = Math.min(...this.recent);
    return {
      warm_min_kib: this.warmMin,
      end_min_kib: end,
      growth_pct: Math.round(((end - this.warmMin) / this.warmMin) * 1000) / 10,
    };
  }
}

export class Sampler {
  brokerHeap: HeapTrack | null = null;
  runnerRss: RssTrack | null = null;
  brokerRss: RssTrack | null = null;
  daemonRss: RssTrack | null = null;
  private tracking = false;
  private warmupMs = 0;

  constructor(private readonly processes: SoakProcesses) {}

  snapshot(): Snapshot {
    const children = childrenByParent();
    const figures = (pid: number): ProcessFigures => {
      const fds = openFds(pid);
      const kids = fds === undefined ? undefined : (children.get(pid)?.length ?? 0);
      return { pid, fds, children: kids, rss_kib: rssKib(pid) };
    };
    const daemonPids = this.processes.brokerChildren(children);
    // One daemon is the normal case; after a kill, briefly none (or the dying one and its successor).
    const daemonPid = daemonPids.length === 0 ? undefined : Math.max(...daemonPids);
    return {
      runner: figures(process.pid),
      broker: figures(this.processes.brokerPid),
      daemons: daemonPids.length,
      daemon: daemonPid === undefined ? null : figures(daemonPid),
    };
  }

  /** From now on, feed RSS into the trackers; the first `warmupMs` of each process's life under traffic is its warm-up. */
  startTracking(now: number, warmupMs: number): void {
    this.tracking = true;
    this.warmupMs = warmupMs;
    this.runnerRss = new RssTrack(process.pid, now, warmupMs);
    this.brokerRss = new RssTrack(this.processes.brokerPid, now, warmupMs);
    this.brokerHeap = new HeapTrack(now, warmupMs);
  }

  /** While tracking, feeds the broker's reported heap-used figure. */
  addBrokerHeap(now: number, heapUsedBytes: number): void {
    if (this.tracking) this.brokerHeap?.add(now, heapUsedBytes);
  }

  stopTracking(): void {
    this.tracking = false;
  }

  /** Takes a snapshot and, while tracking, feeds the RSS trackers. */
  sample(now: number): Snapshot {
    const snap = this.snapshot();
    if (!this.tracking) return snap;
    this.runnerRss?.add(now, snap.runner.rss_kib);
    this.brokerRss?.add(now, snap.broker.rss_kib);
    if (snap.daemon) {
      // A new daemon (after a kill) is measured from its own start.
      if (this.daemonRss?.pid !== snap.daemon.pid)
        this.daemonRss = new RssTrack(snap.daemon.pid, now, this.warmupMs);
      this.daemonRss.add(now, snap.daemon.rss_kib);
    }
    return snap;
  }
}
