// `npm run bench -- dispatcher`: the prefork dispatcher of
// @handoff/backend-sdk against node:cluster with round-robin scheduling
// (SCHED_RR: the primary accepts and passes each connection to a worker
// over the IPC channel, one handle in flight per worker), both with 2
// workers running the same node:http hello world, both driven by
// c/httpload.c on loopback:
//   new_connections: a new TCP connection per request (Connection: close)
//   keepalive:       256 persistent connections, one request at a time each
// Ours and the baseline run in short alternating rounds (order flipped
// each round): the noise of a shared 2-core machine comes in bursts of
// seconds, so two rounds a second apart see about the same neighbours.
// `ratio` is the median over rounds of ours ÷ the baseline round next to
// it; the medians of each side and the CPU each server spent per request
// (far steadier than throughput here) are on the line too.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { childrenOf } from './broker/probe-wire.mjs';
import { buildCProgram } from './c-programs.ts';
import { freePort } from './dispatcher/free-port.ts';
import {
  buildLoadGenerator,
  type LoadMode,
  type LoadResult,
  runLoad,
  treeCpuSeconds,
} from './dispatcher/load-generator.ts';
import { emit, line, summarize } from './measure.ts';
import { allSettled, type Settled, warmUntilSettled } from './settle.ts';
import { verdictOf } from './verdict.ts';

const WORKERS = 2;
/**
 * Connections in flight from the load generator, the same for both servers.
 * Enough to saturate both: node:cluster is already flat at 64 (its primary
 * handles every connection over JSON IPC), while at 64 ours is bound by
 * latency, not capacity — its rate still rises with more connections in
 * flight (measured here: 13.8 k/s at 64, 18.9 k/s at 256; cluster 7.8 k/s
 * and 7.7 k/s). A throughput comparison is of capacities.
 */
const CONCURRENCY = 256;
/** BENCH_DISPATCHER_ROUNDS=N: fewer rounds for a quick look (the targets are for 12). */
const ROUNDS = Number(process.env.BENCH_DISPATCHER_ROUNDS ?? 12);
const WARMUP_SECONDS = 0.25;
const ROUND_SECONDS = 1;
/**
 * Untimed load per server and case before the rounds (JIT, pools, TCP
 * state): at least this, then until the server's JIT has settled.
 */
const SERVER_WARMUP_SECONDS = 2;

const CASES = [
  {
    mode: 'close',
    bench: 'dispatcher.http_hello.new_connections',
    baseline: 'node.cluster.sched_rr.new_connections',
    target: 2,
  },
  {
    mode: 'keepalive',
    bench: 'dispatcher.http_hello.keepalive',
    baseline: 'node.cluster.sched_rr.keepalive',
    target: 0.95,
  },
] as const;

/** BENCH_DISPATCHER_CASES=new_connections,keepalive (the bench name's last part): some cases only. */
function selectedCases(): (typeof CASES)[number][] {
  const wanted = process.env.BENCH_DISPATCHER_CASES?.split(',').filter((s) => s !== '');
  if (wanted === undefined || wanted.length === 0) return [...CASES];
  const known = CASES.map((c) => c.bench.split('.').at(-1));
  const unknown = wanted.filter((w) => !known.includes(w));
  if (unknown.length > 0) {
    throw new Error(
      `BENCH_DISPATCHER_CASES: unknown case(s) ${unknown.join(', ')} (known: ${known.join(', ')})`,
    );
  }
  return CASES.filter((c) => wanted.includes(c.bench.split('.').at(-1) as string));
}

interface Server {
  child: ChildProcess;
  port: number;
}

type Who = 'ours' | 'cluster' | 'ceiling' | 'floor';

/**
 * BENCH_DISPATCHER_CEILING=0 leaves out the ceiling: node:cluster with
 * SCHED_NONE, whose workers accept on the shared socket themselves — no
 * process in between, so no dispatcher with these workers can beat it. Its
 * rate over SCHED_RR's (`ceiling_ratio`) is the most any dispatcher could
 * score in that run. Measured in the new_connections case only (with
 * keep-alive, nothing sits in the data path anyway).
 */
const CEILING = process.env.BENCH_DISPATCHER_CEILING !== '0';

/**
 * BENCH_DISPATCHER_FLOOR=0 leaves out the floor: c/dispatchfloor.c, a
 * master in C that does only the kernel work a master between the kernel
 * and the workers cannot skip (accept4, one sendmsg per worker per batch,
 * close, epoll) and keeps no books, feeding our own workers over our
 * channel protocol. Its rate over SCHED_RR's (`floor_ratio`) is the most a
 * dispatcher of this design (a master that owns each connection until a
 * worker has it) could score in that run; the ceiling is the most any
 * could. New-connections case only, like the ceiling.
 */
const FLOOR = process.env.BENCH_DISPATCHER_FLOOR !== '0';

export async function dispatcherSuite(): Promise<void> {
  await buildLoadGenerator();
  const ours = await startServer('ours-master.mjs');
  const cluster = await startServer('cluster-server.mjs');
  const ceiling = CEILING ? await startServer('cluster-server.mjs', ['none']) : null;
  const floor = FLOOR ? await startFloor() : null;
  const servers: Record<Who, Server | null> = { ours, cluster, ceiling, floor };
  try {
    for (const c of selectedCases()) {
      const withCeiling = ceiling !== null && c.mode === 'close';
      const withFloor = floor !== null && c.mode === 'close';
      const named = [
        ...(withCeiling ? ['the SCHED_NONE ceiling'] : []),
        ...(withFloor ? ['the C master floor'] : []),
      ];
      console.error(
        `# dispatcher ${c.mode}: ${ROUNDS} rounds of ${ROUND_SECONDS} s each, alternating${named.length > 0 ? ` (with ${named.join(' and ')})` : ''}`,
      );
      const perSide = <T>(v: () => T): Record<Who, T> => ({
        ours: v(),
        cluster: v(),
        ceiling: v(),
        floor: v(),
      });
      const rates = perSide((): number[] => []);
      const cpu = perSide(() => 0);
      const served = perSide(() => 0);
      const errors = perSide(() => 0);
      const paired: number[] = [];
      const ceilingPaired: number[] = [];
      const oursVsCeiling: number[] = [];
      const floorPaired: number[] = [];
      const oursVsFloor: number[] = [];
      // ours always next to cluster and to the floor, cluster next to the
      // ceiling, whichever way a round runs: those ratios are paired.
      const sides: Who[] = [
        ...(withFloor ? (['floor'] as const) : []),
        'ours',
        'cluster',
        ...(withCeiling ? (['ceiling'] as const) : []),
      ];
      // Each server under load until its JIT has settled (settle.ts): at least
      // SERVER_WARMUP_SECONDS, in half-second runs of the load generator.
      const warmups: Settled[] = [];
      for (const who of sides) {
        const server = servers[who] as Server;
        const pid = server.child.pid!;
        warmups.push(
          await warmUntilSettled(
            () => runLoad(server.port, c.mode as LoadMode, CONCURRENCY, 0, 0.5),
            [pid, ...childrenOf(pid)],
            { minRounds: SERVER_WARMUP_SECONDS * 2 },
          ),
        );
      }
      const warmup = allSettled(warmups);
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 === 0 ? sides : [...sides].reverse();
        const round: Partial<Record<Who, number>> = {};
        for (const who of order) {
          const server = servers[who] as Server;
          const pid = server.child.pid as number;
          const cpu0 = treeCpuSeconds(pid);
          const result: LoadResult = await runLoad(
            server.port,
            c.mode as LoadMode,
            CONCURRENCY,
            WARMUP_SECONDS,
            ROUND_SECONDS,
          );
          // CPU covers the warm-up too; scale it to the measured share.
          const spent = treeCpuSeconds(pid) - cpu0;
          const share = ROUND_SECONDS / (ROUND_SECONDS + WARMUP_SECONDS);
          cpu[who] += spent * share;
          served[who] += result.requests;
          errors[who] += result.errors;
          const rate = result.requests / result.seconds;
          rates[who].push(rate);
          round[who] = rate;
          console.error(
            `#   round ${r + 1} ${who}: ${Math.round(rate)} req/s, ${result.errors} errors`,
          );
        }
        paired.push((round.ours ?? 0) / (round.cluster ?? 1));
        if (withCeiling) {
          ceilingPaired.push((round.ceiling ?? 0) / (round.cluster ?? 1));
          oursVsCeiling.push((round.ours ?? 0) / (round.ceiling ?? 1));
        }
        if (withFloor) {
          floorPaired.push((round.floor ?? 0) / (round.cluster ?? 1));
          oursVsFloor.push((round.ours ?? 0) / (round.floor ?? 1));
        }
      }
      const o = summarize(rates.ours);
      const b = summarize(rates.cluster);
      const medians = line(c.bench, o, c.baseline, b);
      const ratio = Number(summarize(paired).opsPerSec.toFixed(2));
      const result = { ...medians, ratio };
      const us = (s: number, n: number) => Number(((s * 1e6) / Math.max(n, 1)).toFixed(1));
      const cpuOurs = us(cpu.ours, served.ours);
      const cpuBase = us(cpu.cluster, served.cluster);
      const two = (x: number) => Number(x.toFixed(2));
      const ceilingRatio = withCeiling ? two(summarize(ceilingPaired).opsPerSec) : undefined;
      const floorRatio = withFloor ? two(summarize(floorPaired).opsPerSec) : undefined;
      // The tightest bound measured: the floor of this design if it ran, else the ceiling of any.
      const bound = floorRatio ?? ceilingRatio;
      emit({
        ...result,
        unit: c.mode === 'close' ? 'connections_per_s' : 'requests_per_s',
        baseline_spread: Number(b.spread.toFixed(2)),
        ratio_of_medians: medians.ratio,
        paired_ratios: paired.map(two),
        server_cpu_us_per_op: cpuOurs,
        baseline_server_cpu_us_per_op: cpuBase,
        cpu_ratio: Number((cpuBase / cpuOurs).toFixed(2)),
        // The most any dispatcher with these workers could score in this run (SCHED_NONE ÷ SCHED_RR).
        ...(ceilingRatio === undefined ? {} : { ceiling_ratio: ceilingRatio }),
        // The most a dispatcher with a master in between could score in this run (C master ÷ SCHED_RR).
        ...(floorRatio === undefined ? {} : { floor_ratio: floorRatio }),
        errors: errors.ours,
        baseline_errors: errors.cluster,
        workers: WORKERS,
        concurrency: CONCURRENCY,
        rounds: ROUNDS,
        round_seconds: ROUND_SECONDS,
        ...warmup,
        target_ratio: c.target,
        meets_target: result.ratio >= c.target && errors.ours === 0,
        // Out of reach when the floor of this design (or, without it, the
        // ceiling of any) scores below the target too.
        verdict: verdictOf([
          { met: errors.ours === 0 },
          {
            met: result.ratio >= c.target,
            ...(bound === undefined ? {} : { reachable: bound >= c.target }),
          },
        ]),
      });
      // Ours against a bound measured in the same rounds, on a line of its own.
      const versus = (
        who: 'ceiling' | 'floor',
        baseline: string,
        ratioOf: string,
        oursVs: number[],
        bound: Record<string, unknown>,
      ) => {
        const b = summarize(rates[who]);
        const vs = line(c.bench, o, baseline, b);
        emit({
          ...vs,
          ratio: two(summarize(oursVs).opsPerSec),
          ratio_of: ratioOf,
          unit: 'connections_per_s',
          baseline_spread: Number(b.spread.toFixed(2)),
          ratio_of_medians: vs.ratio,
          paired_ratios: oursVs.map(two),
          ...bound,
          server_cpu_us_per_op: cpuOurs,
          baseline_server_cpu_us_per_op: us(cpu[who], served[who]),
          errors: errors.ours,
          baseline_errors: errors[who],
          rounds: ROUNDS,
        });
      };
      if (withCeiling) {
        versus(
          'ceiling',
          'node.cluster.sched_none.new_connections',
          'ours ÷ SCHED_NONE (workers accept themselves: the ceiling), median of paired rounds',
          oursVsCeiling,
          { ceiling_ratio: ceilingRatio, ceiling_paired_ratios: ceilingPaired.map(two) },
        );
      }
      if (withFloor) {
        versus(
          'floor',
          'c.dispatch_floor.new_connections',
          'ours ÷ the C master floor (same workers, a master that only accepts, sends and closes), median of paired rounds',
          oursVsFloor,
          { floor_ratio: floorRatio, floor_paired_ratios: floorPaired.map(two) },
        );
      }
    }
  } finally {
    await Promise.all(
      [ours, cluster, ceiling, floor].map((s) => (s === null ? undefined : stopServer(s))),
    );
  }
}

/** Children are plain JS over the built dist of the packages, as users run them. */
function startServer(script: string, extra: string[] = []): Promise<Server> {
  return startReady(script, (port) => [
    process.execPath,
    join(import.meta.dirname, 'dispatcher', script),
    String(port),
    String(WORKERS),
    ...extra,
  ]);
}

/** The C master floor, serving with ours-worker.mjs: the very workers ours runs. */
async function startFloor(): Promise<Server> {
  const binary = await buildCProgram('dispatchfloor');
  const worker = join(import.meta.dirname, 'dispatcher', 'ours-worker.mjs');
  return startReady('dispatchfloor', (port) => [
    binary,
    String(port),
    String(WORKERS),
    process.execPath,
    worker,
  ]);
}

/** Spawns a server on a free port; resolves once it printed its first line ("ready"). */
async function startReady(name: string, command: (port: number) => string[]): Promise<Server> {
  const port = await freePort();
  const [file, ...args] = command(port);
  const child = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`${name} exited (${code}) before it was ready`);
  });
  await Promise.race([once(child.stdout!, 'data'), exited]);
  exited.catch(() => {});
  return { child, port };
}

async function stopServer(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = once(server.child, 'exit');
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
