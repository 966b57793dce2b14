// The campaign: starts the broker, warms every traffic kind once, takes
// the fd/children baseline, runs the traffic loops, the daemon killer and
// the sampler for the set duration, waits for fds and children to settle,
// stops everything and prints the verdict (JSON lines on stdout, progress
// on stderr). Signals stop it cleanly. Flags are main.ts's.
import { randomInt } from 'node:crypto';
import { adminRequest } from '@handoff/broker';
import { DemoKvClient } from '@handoff/demo-daemon';
import { AdminVerb } from '@handoff/protocol';
import type { SoakOptions } from './options.js';
import { SoakProcesses } from './processes.js';
import { Sampler, type Snapshot } from './sampler.js';
import { errorCode, round1, Tally, TaskTimeout, TRAFFIC_KINDS, type TrafficKind } from './tally.js';
import {
  Scope,
  TASK_DEADLINE_MS,
  TASKS,
  type TrafficContext,
  trafficContext,
  WEIGHTS,
} from './traffic.js';

/** One slow reader at a time, so the daemon's RSS during its stall is about it. */
const MAX_SLOW_READERS = 1;
const SETTLE_MS = 15_000;
const FAILURES_PRINTED = 20;

const out = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
const say = (text: string) => process.stderr.write(`soak: ${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let processes: SoakProcesses | undefined;
let shutDown = false;
let interrupted: string | undefined;
const activeScopes = new Set<Scope>();

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) {
    say(`${signal} again: killing the broker and daemons now`);
    processes?.killNow();
    process.exit(1);
  }
  interrupted = signal;
  say(`${signal}: stopping the traffic, then the broker`);
  for (const scope of activeScopes) scope.close(new Error(`interrupted by ${signal}`));
}

class Campaign {
  readonly tally: Tally;
  readonly origin = Date.now();
  private slowReaders = 0;
  private printedFailures = 0;

  constructor(
    private readonly ctx: TrafficContext,
    readonly options: SoakOptions,
  ) {
    this.tally = new Tally(this.origin);
  }

  /** Runs one task under its deadline and files the outcome. */
  async run(kind: TrafficKind, loop: number, seq: number): Promise<void> {
    const scope = new Scope(loop, seq);
    activeScopes.add(scope);
    const started = Date.now();
    const deadline = TASK_DEADLINE_MS[kind];
    const timer = setTimeout(
      () =>
        scope.close(
          new TaskTimeout(`${kind} task still running after ${deadline} ms: ${scope.doing}`),
        ),
      deadline,
    );
    const aborted = new Promise<never>((_, reject) =>
      scope.signal.addEventListener('abort', () => reject(scope.signal.reason), { once: true }),
    );
    aborted.catch(() => {});
    const task = TASKS[kind](this.ctx, scope);
    // Torn down by a deadline, the task's own awaits fail; nobody listens then.
    task.catch(() => {});
    try {
      await Promise.race([task, aborted]);
      this.tally.ok(kind, scope.requests);
    } catch (error) {
      if (interrupted) return;
      const verdict = this.tally.error(kind, error, scope.requests, started, Date.now());
      if (verdict === 'failure' && this.printedFailures++ < FAILURES_PRINTED) {
        say(`FAILURE ${kind} ${errorCode(error)}: ${(error as Error)?.message ?? error}`);
      }
    } finally {
      clearTimeout(timer);
      scope.close();
      activeScopes.delete(scope);
    }
  }

  pick(seq: number, loop: number): TrafficKind {
    // Each loop's first task is a different kind, so every kind runs even in a short soak.
    let kind: TrafficKind;
    if (seq === 0) kind = TRAFFIC_KINDS[loop % TRAFFIC_KINDS.length]!;
    else {
      const total = Object.values(WEIGHTS).reduce((a, b) => a + b, 0);
      let x = (randomInt(1_000_000) / 1_000_000) * total;
      kind = 'handoff';
      for (const k of TRAFFIC_KINDS) {
        x -= WEIGHTS[k];
        if (x < 0) {
          kind = k;
          break;
        }
      }
    }
    return kind === 'slow_reader' && this.slowReaders >= MAX_SLOW_READERS ? 'handoff' : kind;
  }

  async loop(loop: number, endAt: number): Promise<void> {
    for (let seq = 0; Date.now() < endAt && !interrupted; seq++) {
      const kind = this.pick(seq, loop);
      if (kind === 'slow_reader') this.slowReaders++;
      try {
        await this.run(kind, loop, seq);
      } finally {
        if (kind === 'slow_reader') this.slowReaders--;
      }
    }
  }

  /** SIGKILLs the daemon every killEveryMs between `from` and `until`. */
  async killer(from: number, until: number): Promise<void> {
    const every = this.options.killEveryMs;
    if (every === 0) return;
    for (let at = from; at <= until && !interrupted; at += every) {
      while (Date.now() < at && !interrupted) await sleep(Math.min(250, at - Date.now()));
      if (interrupted) return;
      try {
        const killedAt = Date.now();
        const pid = await processes!.killDaemon();
        if (pid !== undefined) {
          this.tally.recordKill(killedAt);
          say(`SIGKILL daemon pid ${pid}`);
        } else say('no ready daemon to kill this time (respawn still under way)');
      } catch (error) {
        say(`cannot list the daemon to kill it: ${(error as Error).message}`);
      }
    }
  }
}

const sameChildren = (a: Snapshot, b: Snapshot) =>
  a.runner.children === b.runner.children &&
  a.broker.children === b.broker.children &&
  a.daemons === b.daemons &&
  (a.daemon?.children ?? 0) === (b.daemon?.children ?? 0);

const fdsBack = (base: Snapshot, now: Snapshot) =>
  (now.runner.fds ?? Infinity) <= (base.runner.fds ?? 0) &&
  (now.broker.fds ?? Infinity) <= (base.broker.fds ?? 0);

async function settle(sampler: Sampler, base: Snapshot, timeoutMs: number): Promise<Snapshot> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const snap = sampler.snapshot();
    if ((fdsBack(base, snap) && sameChildren(base, snap)) || Date.now() > until) return snap;
    await sleep(250);
  }
}

/** Baseline once the warm-up's connections are closed on every side: two equal snapshots in a row. */
async function steadySnapshot(sampler: Sampler): Promise<Snapshot> {
  let last = sampler.snapshot();
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    const snap = sampler.snapshot();
    if (
      snap.runner.fds === last.runner.fds &&
      snap.broker.fds === last.broker.fds &&
      sameChildren(snap, last)
    ) {
      return snap;
    }
    last = snap;
  }
  return last;
}

/**
 * Connections each side still counts once the traffic is over: the daemon's
 * STATS (asked over a connection of our own, so 1 is clean) and the
 * broker's STATUS. A connection an abrupt client left half-dead shows here
 * even when the daemon's pid changed and its fds cannot be compared.
 */
async function openConnections(
  brokerSocket: string,
): Promise<{ daemon: number; broker: number } | null> {
  try {
    const client = await DemoKvClient.connect({ brokerPath: brokerSocket, timeoutMs: 15_000 });
    try {
      const stats = await client.stats({ timeoutMs: 10_000 });
      const status = await adminRequest(brokerSocket, { verb: AdminVerb.STATUS, json: true });
      const broker = (JSON.parse(status.body) as { connections_open: number }).connections_open;
      return { daemon: stats.connections, broker };
    } finally {
      client.close();
    }
  } catch (error) {
    say(`cannot count open connections: ${(error as Error).message}`);
    return null;
  }
}

const figures = (snap: Snapshot) => ({
  runner: snap.runner,
  broker: snap.broker,
  daemons: snap.daemons,
  daemon: snap.daemon,
});

/** Runs the whole soak; resolves with the verdict (the summary line is printed by then). */
export async function runSoak(options: SoakOptions): Promise<boolean> {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Whatever way the runner ends, the broker and its daemons end with it.
  process.on('exit', () => {
    if (!shutDown) processes?.killNow();
  });
  try {
    return await campaign(options);
  } catch (error) {
    say(`the soak itself failed: ${(error as Error)?.stack ?? error}`);
    if (processes && !shutDown) {
      await processes.shutdown().catch(() => processes?.killNow());
      shutDown = true;
    }
    out({
      type: 'summary',
      ok: false,
      reasons: [`soak error: ${(error as Error)?.message ?? error}`],
    });
    return false;
  }
}

async function campaign(options: SoakOptions): Promise<boolean> {
  say(`starting a broker (duration ${options.durationMs / 1000} s, ${options.concurrency} loops)`);
  processes = await SoakProcesses.start();
  const ctx = trafficContext(processes);
  const soak = new Campaign(ctx, options);
  const { tally } = soak;
  const sampler = new Sampler(processes);
  const brokerSocket = processes.brokerSocket;
  say(
    `broker pid ${processes.brokerPid} on ${processes.brokerSocket}; warming up every traffic kind`,
  );

  // One task of each kind at once (the broker spawns the daemon once for
  // all of them): every code path runs, so lazily opened fds are in the baseline.
  if (!interrupted) await Promise.all(TRAFFIC_KINDS.map((kind, i) => soak.run(kind, 99, i)));
  const baseline = await steadySnapshot(sampler);
  out({ type: 'sample', phase: 'baseline', t_s: 0, ...figures(baseline) });

  const start = Date.now();
  const endAt = start + options.durationMs;
  const warmupMs = Math.max(2000, options.durationMs * 0.2);
  sampler.startTracking(start, warmupMs);
  let ticks = 0;
  let askingHeap = false;
  const sampling = setInterval(() => {
    const now = Date.now();
    const snap = sampler.sample(now);
    if (!askingHeap) {
      // Informational (not a pass criterion): the broker's own heap figure.
      askingHeap = true;
      adminRequest(brokerSocket, { verb: AdminVerb.STATUS, json: true })
        .then((reply) => {
          const used = JSON.parse(reply.body)?.memory?.heap_used_bytes;
          if (typeof used === 'number') sampler.addBrokerHeap(now, used);
        })
        .catch(() => {})
        .finally(() => {
          askingHeap = false;
        });
    }
    const t = round1((now - start) / 1000);
    out({
      type: 'sample',
      phase: 'traffic',
      t_s: t,
      ...figures(snap),
      requests: tally.totalRequests,
      failures: tally.failures,
      expected_faults: tally.expectedFaults,
      kills: tally.kills,
    });
    if (++ticks % Math.max(1, Math.round(5000 / options.sampleEveryMs)) === 0) {
      const mib = (kib: number | undefined) => (kib === undefined ? '-' : (kib / 1024).toFixed(0));
      say(
        `${t}s/${options.durationMs / 1000}s requests ${tally.totalRequests} failures ${tally.failures} ` +
          `expected ${tally.expectedFaults} kills ${tally.kills} fds runner ${snap.runner.fds} broker ${snap.broker.fds} ` +
          `rss MiB runner ${mib(snap.runner.rss_kib)} broker ${mib(snap.broker.rss_kib)} daemon ${mib(snap.daemon?.rss_kib)}`,
      );
    }
  }, options.sampleEveryMs);

  // Kills stop early enough that the last daemon lives through a warm-up and as long again, so its RSS can be judged.
  await Promise.all([
    ...Array.from({ length: options.concurrency }, (_, i) => soak.loop(i, endAt)),
    soak.killer(start + warmupMs, endAt - 2 * warmupMs),
  ]);
  clearInterval(sampling);
  sampler.stopTracking();
  const trafficEnded = Date.now();
  say(
    `traffic stopped after ${round1((trafficEnded - start) / 1000)} s; waiting for fds and children to settle`,
  );

  const final = interrupted ? sampler.snapshot() : await settle(sampler, baseline, SETTLE_MS);
  out({
    type: 'sample',
    phase: 'final',
    t_s: round1((Date.now() - start) / 1000),
    ...figures(final),
  });

  const open = interrupted ? null : await openConnections(processes.brokerSocket);
  const rss = {
    runner: sampler.runnerRss?.result(trafficEnded) ?? null,
    broker: sampler.brokerRss?.result(trafficEnded) ?? null,
    daemon: sampler.daemonRss
      ? {
          pid: sampler.daemonRss.pid,
          ...(sampler.daemonRss.result(trafficEnded) ?? { judged: false }),
        }
      : null,
  };
  const brokerHeap = sampler.brokerHeap?.result(trafficEnded) ?? null;
  const stderrTail = processes.stderrTail();
  say('stopping the broker and its daemon');
  const { leftBehind, socketsLeft } = await processes.shutdown();
  shutDown = true;

  const judgeCompleteRun = (): string[] => {
    const reasons: string[] = [];
    for (const kind of TRAFFIC_KINDS)
      if (tally.tasks[kind] === 0) reasons.push(`no ${kind} traffic ran`);
    if (options.killEveryMs > 0 && start + warmupMs <= endAt - 2 * warmupMs && tally.kills === 0) {
      reasons.push('no daemon was killed');
    }
    for (const who of ['runner', 'broker'] as const) {
      if ((final[who].fds ?? Infinity) > (baseline[who].fds ?? 0)) {
        reasons.push(
          `${who} fds ${final[who].fds} after the traffic, baseline ${baseline[who].fds}`,
        );
      }
      if (final[who].children !== baseline[who].children) {
        reasons.push(`${who} children ${final[who].children}, baseline ${baseline[who].children}`);
      }
    }
    if (final.daemons !== baseline.daemons)
      reasons.push(`${final.daemons} daemons, baseline ${baseline.daemons}`);
    if ((final.daemon?.children ?? 0) !== (baseline.daemon?.children ?? 0)) {
      reasons.push(
        `daemon children ${final.daemon?.children}, baseline ${baseline.daemon?.children}`,
      );
    }
    for (const [who, r] of Object.entries(rss)) {
      if (r && 'growth_pct' in r && r.growth_pct >= options.maxRssGrowthPct) {
        reasons.push(
          `${who} RSS grew ${r.growth_pct}% after warm-up (${r.warm_kib} → ${r.end_kib} KiB)`,
        );
      }
    }
    if (!rss.runner || !rss.broker) reasons.push('the run was too short to judge RSS');
    return reasons;
  };
  const reasons: string[] = [];
  if (interrupted) reasons.push(`interrupted by ${interrupted}`);
  if (tally.failures > 0) reasons.push(`${tally.failures} failed tasks`);
  // Cut short, a run is judged only on its failures and on what it left
  // behind: it had no time for the rest, nor to let fds settle.
  if (!interrupted) reasons.push(...judgeCompleteRun());
  if (leftBehind.length > 0) reasons.push(`left behind: ${leftBehind.join(', ')}`);
  if (!open && !interrupted) reasons.push('the daemon did not answer STATS after the traffic');
  if (open && open.daemon !== 1) {
    reasons.push(
      `the daemon counts ${open.daemon} open connections after the traffic, ours included (expected 1)`,
    );
  }

  const ok = reasons.length === 0;
  const pair = (a: number | undefined, b: number | undefined) => ({
    baseline: a ?? null,
    final: b ?? null,
  });
  out({
    type: 'summary',
    ok,
    reasons,
    duration_s: round1((trafficEnded - start) / 1000),
    concurrency: options.concurrency,
    requests: { ...tally.requests, total: tally.totalRequests },
    tasks: tally.tasks,
    failures: {
      count: tally.failures,
      by_kind: tally.failuresByKind,
      by_code: tally.failureCounts(),
      examples: tally.examples,
    },
    expected_faults: { count: tally.expectedFaults, by_kind: tally.expectedByKind },
    daemon_kills: tally.kills,
    slow_reader_stalls: {
      judged: ctx.stallsJudged,
      on_young_daemon: ctx.stallsOnYoungDaemon,
      daemon_rss_growth_kib_max: ctx.stallGrowthKib,
    },
    fds: {
      runner: pair(baseline.runner.fds, final.runner.fds),
      broker: pair(baseline.broker.fds, final.broker.fds),
      daemon: pair(baseline.daemon?.fds, final.daemon?.fds),
    },
    children: {
      runner: pair(baseline.runner.children, final.runner.children),
      broker: pair(baseline.broker.children, final.broker.children),
      daemon: pair(baseline.daemon?.children, final.daemon?.children),
      daemons: pair(baseline.daemons, final.daemons),
    },
    open_connections_after: open,
    rss,
    broker_heap: brokerHeap,
    max_rss_growth_pct: options.maxRssGrowthPct,
    pids: { runner: process.pid, broker: processes.brokerPid },
    dir: processes.dir,
    left_behind: leftBehind,
    sockets_left_by_broker: socketsLeft,
    ...(ok ? {} : { broker_stderr_tail: stderrTail }),
  });
  say(ok ? 'ok' : `NOT ok: ${reasons.join('; ')}`);
  return ok;
}
