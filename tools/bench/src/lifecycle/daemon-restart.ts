// lifecycle.daemon_restart: live line-wire sessions with requests in
// flight, plus loops opening new connections, through 10 `restart demo-kv`
// (admin verb RESTART, as `handoff-broker restart demo-kv` sends it).
// Steady state is measured in the same run: before each restart, a window
// of the same load with nothing happening. A restart's window runs from
// the verb until the old daemon has exited. Reported: failed requests and
// connects, and p99 during the restarts against steady state — and against
// the floor: the same load while a standalone daemon boots (boot-floor.ts),
// which no restart can go below.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminVerb } from '@handoff/protocol';
import { line, summarize } from '../measure.ts';
import { bootAndStopDaemon } from './boot-floor.ts';
import { ConnectLoops, oneConnect } from './connect-loops.ts';
import { LiveSessions } from './live-sessions.ts';
import { countErrors, emitFailure, emitResult, inWindows, latency, type Window } from './report.ts';
import { alive, ServeProcess, waitGone, writeDemoKvDefinition } from './serve-process.ts';
import { killStrays } from './strays.ts';

const BENCH = 'lifecycle.daemon_restart';

export interface RestartOptions {
  restarts: number;
  sessions: number;
  connectLoops: number;
  steadyMs: number;
  /** The definition's drainMs (and the daemon's --drain-ms). */
  drainMs: number;
}

export async function daemonRestartCase(options: RestartOptions): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-restart-'));
  const configFile = join(dir, 'demo-kv.json');
  // BENCH_LINE_CUTOVER=off: the daemons hand over without the live cut-over (an A/B baseline).
  const cutoverOff = process.env.BENCH_LINE_CUTOVER === 'off';
  // BENCH_TAKEOVER_REHEARSAL=off: the daemons boot without rehearsing a takeover (an A/B baseline).
  const rehearsalOff = process.env.BENCH_TAKEOVER_REHEARSAL === 'off';
  // BENCH_REPLACEMENT_NICE=0: the replacement boots at its full CPU weight (an A/B baseline).
  const replacementNice =
    process.env.BENCH_REPLACEMENT_NICE === undefined
      ? undefined
      : Number(process.env.BENCH_REPLACEMENT_NICE);
  writeDemoKvDefinition(configFile, {
    drainMs: options.drainMs,
    restartDrainMs: options.drainMs,
    env: {
      ...(cutoverOff ? { HANDOFF_LINE_CUTOVER: 'off' } : {}),
      ...(rehearsalOff ? { HANDOFF_TAKEOVER_REHEARSAL: 'off' } : {}),
    },
    ...(replacementNice === undefined ? {} : { replacementNice }),
  });
  const serve = new ServeProcess(join(dir, 'broker'), configFile);
  let sessions: LiveSessions | null = null;
  let loops: ConnectLoops | null = null;
  try {
    console.error(
      `# ${BENCH}: ${options.sessions} live sessions + ${options.connectLoops} connect loops through ${options.restarts} restarts`,
    );
    await serve.start();
    const warm = await oneConnect(serve.socketPath, 30_000);
    if (warm.error !== null) throw new Error(`the first connect failed: ${warm.error}`);
    sessions = new LiveSessions(serve.socketPath, options.sessions, 10);
    loops = new ConnectLoops(serve.socketPath, options.connectLoops, 20);
    const steady: Window[] = [];
    const during: Window[] = [];
    const floor: Window[] = [];
    for (let i = 0; i < options.restarts; i++) {
      const s0 = performance.now();
      await new Promise((r) => setTimeout(r, options.steadyMs));
      steady.push({ from: s0, to: performance.now() });
      const f0 = performance.now();
      await bootAndStopDaemon(dir, i);
      floor.push({ from: f0, to: performance.now() });
      await new Promise((r) => setTimeout(r, 200));
      const before = (await serve.daemons()).filter((d) => alive(d.pid));
      if (before.length !== 1)
        throw new Error(
          `expected one demo-kv daemon before the restart, the broker lists ${JSON.stringify(before)}`,
        );
      const old = before[0]!.pid;
      const from = performance.now();
      await serve.admin(AdminVerb.RESTART, { serviceName: 'demo-kv' });
      const after = await serve.daemons();
      if (!after.some((d) => d.pid !== old))
        throw new Error(
          `RESTART answered but the broker lists no new demo-kv daemon: ${JSON.stringify(after)}`,
        );
      if (!(await waitGone(old, options.drainMs + 15_000)))
        throw new Error(`the old daemon (pid ${old}) outlived its drain by 15 s`);
      during.push({ from, to: performance.now() });
    }
    await Promise.all([sessions.stop(), loops.stop()]);

    const req = sessions.requests;
    const con = loops.attempts;
    if (process.env.BENCH_TRACE_FILE)
      (await import('node:fs')).writeFileSync(
        process.env.BENCH_TRACE_FILE,
        JSON.stringify({ origin: performance.timeOrigin, req, con, steady, during, floor }),
      );
    if (process.env.BENCH_TRACE_FILE)
      (await import('node:fs')).cpSync(dir, `${process.env.BENCH_TRACE_FILE}.dir`, {
        recursive: true,
        filter: (f) => !f.endsWith('.sock'),
      });
    const okIn = (w: Window[]) => ({
      requests: req.filter((r) => r.error === null && inWindows(r.at, w)).map((r) => r.ms),
      connects: con.filter((a) => a.error === null && inWindows(a.at, w)).map((a) => a.totalMs),
    });
    const d = okIn(during);
    const s = okIn(steady);
    const f = okIn(floor);
    const failedRequests = req.filter((r) => r.error !== null);
    const failedConnects = con.filter((a) => a.error !== null);
    const rd = latency(d.requests);
    const rs = latency(s.requests);
    const cd = latency(d.connects);
    const cs = latency(s.connects);
    const rf = latency(f.requests);
    const cf = latency(f.connects);
    const ratio = (a: number | null, b: number | null) =>
      a === null || b === null || b === 0 ? null : Number((a / b).toFixed(2));
    const requestRatio = ratio(rd.p99_ms, rs.p99_ms);
    const connectRatio = ratio(cd.p99_ms, cs.p99_ms);
    const windowMs = (w: Window[]) => w.reduce((sum, x) => sum + (x.to - x.from), 0);
    emitResult({
      ...line(
        BENCH,
        summarize([(d.requests.length * 1000) / windowMs(during)]),
        'steady_state (same load, no restart)',
        summarize([(s.requests.length * 1000) / windowMs(steady)]),
      ),
      unit: 'live-session requests per second',
      restarts: options.restarts,
      sessions: options.sessions,
      connect_loops: options.connectLoops,
      drain_ms: options.drainMs,
      line_cutover: !cutoverOff,
      takeover_rehearsal: !rehearsalOff,
      // The replacement's autogroup nice while it boots (the broker's default is 10).
      replacement_nice: replacementNice ?? 10,
      requests: req.length,
      failed_requests: failedRequests.length,
      request_errors: countErrors(failedRequests.map((r) => r.error)),
      // When each failure began: ms after the start of the restart it fell in (null: in steady state).
      failed_request_ms_into_restart: failedRequests.slice(0, 20).map((r) => {
        const w = during.find((x) => r.at >= x.from && r.at <= x.to);
        return w === undefined ? null : Math.round(r.at - w.from);
      }),
      sessions_reopened: sessions.reopened,
      session_open_failures: countErrors(sessions.openFailures),
      connects: con.length,
      failed_connects: failedConnects.length,
      connect_errors: countErrors(failedConnects.map((a) => a.error)),
      request_during_restarts: rd,
      request_steady: rs,
      request_p99_ratio: requestRatio,
      connect_during_restarts: cd,
      connect_steady: cs,
      connect_p99_ratio: connectRatio,
      // The floor: p99 while a standalone daemon boots and stops, against steady
      // state; and the restarts' p99 against that floor.
      request_boot_floor: rf,
      connect_boot_floor: cf,
      request_floor_p99_ratio: ratio(rf.p99_ms, rs.p99_ms),
      connect_floor_p99_ratio: ratio(cf.p99_ms, cs.p99_ms),
      request_p99_vs_floor: ratio(rd.p99_ms, rf.p99_ms),
      connect_p99_vs_floor: ratio(cd.p99_ms, cf.p99_ms),
      restart_ms: latency(during.map((w) => w.to - w.from)),
      target:
        'failed requests and connects = 0, p99 during restarts <= 2x steady (requests and connects)',
      meets_target:
        failedRequests.length === 0 &&
        failedConnects.length === 0 &&
        requestRatio !== null &&
        requestRatio <= 2 &&
        connectRatio !== null &&
        connectRatio <= 2,
    });
  } catch (error) {
    emitFailure(BENCH, error, { log_tail: serve.logTail() });
  } finally {
    await Promise.all([sessions?.stop(), loops?.stop()]);
    await serve.stop().catch(() => {});
    serve.kill();
    killStrays(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}
