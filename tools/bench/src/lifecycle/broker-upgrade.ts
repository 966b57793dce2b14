// lifecycle.broker_upgrade: 64 client loops connect continuously (Hello +
// one GET each) to a real `handoff-broker serve` while it is upgraded in
// place 10 times — by the admin verb UPGRADE and by SIGHUP, alternating.
// Baseline in the same run: the same loops through 10 plain stop + start
// cycles (SIGTERM, wait for exit, `serve` again). Reported: failed and
// refused connects, worst and p99 connect latency, each phase's own.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { line, summarize } from '../measure.ts';
import { type Attempt, ConnectLoops, oneConnect } from './connect-loops.ts';
import { countErrors, emitFailure, emitResult, inWindows, latency, type Window } from './report.ts';
import { ServeProcess, writeDemoKvDefinition } from './serve-process.ts';
import { killStrays } from './strays.ts';

const BENCH = 'lifecycle.broker_upgrade';

export interface UpgradeOptions {
  cycles: number;
  loops: number;
  /** Steady load between two cycles. */
  settleMs: number;
  /** Each loop's pause after every attempt. */
  pauseMs: number;
  /** Load before the first cycle, on a broker that has served a while: the machine's own tail. */
  quietMs: number;
}

interface Phase {
  attempts: Attempt[];
  /** From each cycle's start until it completed. */
  windows: Window[];
  /** The second half of each settle period (the broker serving may be ≤ 1.5 s old). */
  steady: Window[];
  /** Before the first cycle: the same load on a broker that has been serving a while. */
  quiet: Window;
  elapsedMs: number;
}

/** Runs `cycles` of `cycle` under `loops` connect loops, `settleMs` of steady load before each. */
async function phase(
  serve: ServeProcess,
  options: UpgradeOptions,
  cycle: (i: number) => Promise<void>,
): Promise<Phase> {
  const loops = new ConnectLoops(serve.socketPath, options.loops, options.pauseMs);
  const windows: Window[] = [];
  const steady: Window[] = [];
  const settle = async () => {
    await new Promise((r) => setTimeout(r, options.settleMs / 2));
    const from = performance.now();
    await new Promise((r) => setTimeout(r, options.settleMs / 2));
    steady.push({ from, to: performance.now() });
  };
  const t0 = performance.now();
  let quiet: Window = { from: t0, to: t0 };
  try {
    await new Promise((r) => setTimeout(r, options.settleMs));
    const from = performance.now();
    await new Promise((r) => setTimeout(r, options.quietMs));
    quiet = { from, to: performance.now() };
    for (let i = 0; i < options.cycles; i++) {
      await settle();
      const from = performance.now();
      await cycle(i);
      windows.push({ from, to: performance.now() });
    }
    await settle();
  } finally {
    await loops.stop();
  }
  return { attempts: loops.attempts, windows, steady, quiet, elapsedMs: performance.now() - t0 };
}

function summary(p: Phase) {
  const ok = p.attempts.filter((a) => a.error === null);
  const failed = p.attempts.filter((a) => a.error !== null);
  const connect = ok.map((a) => a.connectMs);
  return {
    connects: p.attempts.length,
    failed: failed.length,
    refused: failed.filter((a) => a.error?.startsWith('REFUSED')).length,
    errors: countErrors(failed.map((a) => a.error)),
    connect: latency(connect),
    total: latency(ok.map((a) => a.totalMs)),
    connect_during: latency(ok.filter((a) => inWindows(a.at, p.windows)).map((a) => a.connectMs)),
    connect_steady: latency(ok.filter((a) => inWindows(a.at, p.steady)).map((a) => a.connectMs)),
    connect_quiet: latency(ok.filter((a) => inWindows(a.at, [p.quiet])).map((a) => a.connectMs)),
    cycle_ms: latency(p.windows.map((w) => w.to - w.from)),
    // Connects over 50 ms during a cycle: when they began, in ms after the cycle began (at most 20).
    slow_into_cycle: ok
      .filter((a) => a.connectMs > 50)
      .flatMap((a) => {
        const w = p.windows.find((x) => a.at >= x.from && a.at <= x.to);
        return w === undefined ? [] : [Math.round(a.at - w.from)];
      })
      .slice(0, 20),
    rate: summarize([(ok.length * 1000) / p.elapsedMs]),
  };
}

export async function brokerUpgradeCase(options: UpgradeOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-upgrade-'));
  const configFile = join(dir, 'demo-kv.json');
  // A short daemon drain keeps the baseline's stop + start cycles short.
  writeDemoKvDefinition(configFile, { drainMs: 500 });
  const ours = new ServeProcess(join(dir, 'upgrade'), configFile);
  const base = new ServeProcess(join(dir, 'restart'), configFile);
  try {
    console.error(`# ${BENCH}: ${options.loops} loops through ${options.cycles} upgrades`);
    await ours.start();
    const warm = await oneConnect(ours.socketPath, 30_000);
    if (warm.error !== null) throw new Error(`the first connect failed: ${warm.error}`);
    const serving: number[] = [];
    const switches: number[] = [];
    const upgraded = await phase(ours, options, async (i) => {
      const done = await ours.upgrade(i % 2 === 0 ? 'admin' : 'sighup');
      serving.push(done.servingMs);
      if (done.switchMs !== null) switches.push(done.switchMs);
    });
    await ours.stop();

    console.error(`# ${BENCH}: baseline, ${options.cycles} stop + start cycles`);
    await base.start();
    const warmBase = await oneConnect(base.socketPath, 30_000);
    if (warmBase.error !== null) throw new Error(`the first connect failed: ${warmBase.error}`);
    const restarted = await phase(base, options, async () => {
      await base.stop();
      await base.start();
    });
    await base.stop();

    const o = summary(upgraded);
    const b = summary(restarted);
    const worst = o.connect.max_ms ?? Number.POSITIVE_INFINITY;
    emitResult({
      ...line(BENCH, o.rate, 'broker.stop_start', b.rate),
      unit: 'successful connects per second over the phase',
      loops: options.loops,
      cycles: options.cycles,
      via: 'admin UPGRADE and SIGHUP, alternating',
      connects: o.connects,
      failed: o.failed,
      refused: o.refused,
      errors: o.errors,
      worst_connect_ms: o.connect.max_ms,
      p99_connect_ms: o.connect.p99_ms,
      p50_connect_ms: o.connect.p50_ms,
      connect_during_upgrades: o.connect_during,
      connect_steady: o.connect_steady,
      connect_before_upgrades: o.connect_quiet,
      slow_connects_ms_into_upgrade: o.slow_into_cycle,
      connect_to_answer: o.total,
      upgrade_to_new_broker_ms: latency(serving),
      // From the admin verb's answers: how long the old broker had stopped accepting.
      accept_pause_ms: latency(switches),
      upgrade_to_old_exit_ms: o.cycle_ms,
      baseline_connects: b.connects,
      baseline_failed: b.failed,
      baseline_refused: b.refused,
      baseline_errors: b.errors,
      baseline_worst_connect_ms: b.connect.max_ms,
      baseline_p99_connect_ms: b.connect.p99_ms,
      baseline_cycle_ms: b.cycle_ms,
      target: 'failed = 0, worst connect < 50 ms',
      meets_target: o.failed === 0 && worst < 50,
    });
  } catch (error) {
    emitFailure(BENCH, error, { log_tail: ours.logTail() });
  } finally {
    await ours.stop().catch(() => {});
    await base.stop().catch(() => {});
    ours.kill();
    base.kill();
    killStrays(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
