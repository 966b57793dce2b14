// broker.handoff.throughput: handoffs per second with 64 and 256 concurrent
// client loops (connectService with the first request → first response →
// close), against a bare Node accept-and-write server driven by the same
// client process script (capacity-client.mjs). Rounds alternate ours/baseline.
// A third server in each round is the floor: a Node handoff that only passes
// the fd on (bare-handoff.mjs), so the line says how much of the gap to the
// bare server any Node broker must pay for its extra process hop. A fourth is
// the protocol floor: the same, but its broker waits for the client's Hello
// and its client speaks one (sends a Hello, reads two frames). A fifth is the
// wire floor: the handoff of record (DESIGN §2.5: peer check, Hello
// validation, token, offer with the fd, the daemon's ack, the relay) written
// the cheapest right way in Node with none of our broker's code — what any
// broker speaking this wire must do, and so the bound the verdict uses.
// Steady state only: every server is under load until its JIT has settled
// before the first round (a fresh broker and daemon spend their first
// seconds in V8's optimizing compiler; settle.ts), and every client warms
// until its own JIT has settled (capacity-client.mjs). The line carries
// what the helper threads (compiler, GC) still spent in the measured
// windows, to show it.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { emit, line, percentile, summarize } from '../measure.ts';
import { allSettled, type Settled, warmUntilSettled } from '../settle.ts';
import { threadCpuOf } from '../thread-cpu.mjs';
import { verdictOf } from '../verdict.ts';
import { childrenOf } from './probe-wire.mjs';
import { treeCpuUs } from './proc-stat.ts';

const here = import.meta.dirname;
const TARGET = 0.7;

interface ClientResult {
  done: number;
  elapsed_ms: number;
  per_s: number;
  errors: Record<string, number>;
  client_cpu_us: number;
  client_helper_cpu_us: number;
  warmup_ms: number;
  settled: boolean;
  latencies: number[];
}

type ClientMode = 'handoff' | 'bare' | 'hello' | 'wire';

/** How long each unmeasured client run of a server's warm-up measures. */
const SERVER_WARMUP_RUN_MS = 500;

async function runClient(
  mode: ClientMode,
  path: string,
  loops: number,
  serverPids: () => number[],
  warmupMs: number,
  measureMs: number,
): Promise<
  ClientResult & {
    server_helper_cpu_us: number;
    /** The server side's CPU: the first pid's (the broker's) and the others' (its daemons'). */
    broker_cpu_us: number;
    daemon_cpu_us: number;
  }
> {
  const client = spawn(
    process.execPath,
    [
      join(here, 'capacity-client.mjs'),
      mode,
      path,
      String(loops),
      String(warmupMs),
      String(measureMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  // Server CPU over the client's measuring window: from its "measuring"
  // line (the end of its warm-up) to its exit.
  // The broker's and its daemons' apart: where a gap to a floor lies.
  const split = () => {
    const [broker, ...daemons] = serverPids();
    return { broker: treeCpuUs([broker!]), daemons: treeCpuUs(daemons) };
  };
  let cpu0 = { broker: Number.NaN, daemons: Number.NaN };
  let helpers0 = Number.NaN;
  client.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (Number.isNaN(cpu0.broker) && out.startsWith('measuring\n')) {
      cpu0 = split();
      helpers0 = threadCpuOf(serverPids()).helpers;
    }
  });
  const [code] = (await once(client, 'exit')) as [number | null];
  const cpu1 = split();
  const helpers1 = threadCpuOf(serverPids()).helpers;
  if (code !== 0) throw new Error(`capacity-client.mjs ${mode} exited with ${code}`);
  const broker = cpu1.broker - cpu0.broker;
  const daemon = cpu1.daemons - cpu0.daemons;
  return {
    ...(JSON.parse(out.slice('measuring\n'.length)) as ClientResult),
    server_helper_cpu_us: helpers1 - helpers0,
    broker_cpu_us: broker,
    daemon_cpu_us: daemon,
  };
}

export async function throughputCase(
  brokerPath: string,
  broker: ChildProcess,
  barePath: string,
  bare: ChildProcess,
  floors: Record<'bare' | 'protocol' | 'wire', { path: string; pids: () => number[] }>,
  /** The node flags ours was started with (its executable's and its systemd unit's). */
  nodeFlags: string,
  /** Our broker again, started with V8's defaults (as a library in a plain process), on record beside ours. */
  v8Defaults: { path: string; broker: ChildProcess } | null,
  options: { loops: readonly number[]; rounds: number; warmupMs: number; measureMs: number },
): Promise<boolean> {
  let allMet = true;
  const treePids = (p: ChildProcess) => () => [p.pid!, ...childrenOf(p.pid!)];
  const ourPids = treePids(broker);
  const barePids = () => [bare.pid!];
  for (const loops of options.loops) {
    console.error(`# capacity: throughput, ${loops} loops, ${options.rounds} round pairs`);
    // One per server, in the order a round runs them (odd rounds reverse it).
    const side = (mode: ClientMode, path: string, pids: () => number[]) => ({
      mode,
      path,
      pids,
      results: [] as ClientResult[],
      cpu: [] as number[],
      brokerCpu: [] as number[],
      daemonCpu: [] as number[],
      helpers: [] as number[],
    });
    const oursSide = side('handoff', brokerPath, ourPids);
    const baseSide = side('bare', barePath, barePids);
    const floorSide = side('bare', floors.bare.path, floors.bare.pids);
    const protocolSide = side('hello', floors.protocol.path, floors.protocol.pids);
    const wireSide = side('wire', floors.wire.path, floors.wire.pids);
    const defaultsSide =
      v8Defaults && side('handoff', v8Defaults.path, treePids(v8Defaults.broker));
    const sides = [oursSide, baseSide, floorSide, protocolSide, wireSide];
    if (defaultsSide) sides.push(defaultsSide);
    // Each server under load until its JIT has settled (settle.ts), in
    // unmeasured client runs (each client warms its own JIT as it starts).
    const warmups: Settled[] = [];
    for (const s of sides)
      warmups.push(
        await warmUntilSettled(
          () => runClient(s.mode, s.path, loops, s.pids, 0, SERVER_WARMUP_RUN_MS),
          s.pids(),
          { minRounds: 1 },
        ),
      );
    const pairs: number[] = [];
    const floorPairs: number[] = [];
    const protocolPairs: number[] = [];
    const wirePairs: number[] = [];
    const oursToWire: number[] = [];
    const defaultsToOurs: number[] = [];
    for (let r = 0; r < options.rounds; r++) {
      for (const s of r % 2 === 0 ? sides : [...sides].reverse()) {
        const o = await runClient(
          s.mode,
          s.path,
          loops,
          s.pids,
          options.warmupMs,
          options.measureMs,
        );
        s.results.push(o);
        s.cpu.push((o.broker_cpu_us + o.daemon_cpu_us) / Math.max(1, o.done));
        s.brokerCpu.push(o.broker_cpu_us / Math.max(1, o.done));
        s.daemonCpu.push(o.daemon_cpu_us / Math.max(1, o.done));
        s.helpers.push(o.server_helper_cpu_us / Math.max(1, o.done));
      }
      const perS = (s: { results: ClientResult[] }) => s.results.at(-1)!.per_s;
      pairs.push(perS(oursSide) / perS(baseSide));
      floorPairs.push(perS(floorSide) / perS(baseSide));
      protocolPairs.push(perS(protocolSide) / perS(baseSide));
      wirePairs.push(perS(wireSide) / perS(baseSide));
      oursToWire.push(perS(oursSide) / perS(wireSide));
      if (defaultsSide) defaultsToOurs.push(perS(defaultsSide) / perS(oursSide));
    }
    const ours = oursSide.results;
    const base = baseSide.results;
    const oursCpu = oursSide.cpu;
    const baseCpu = baseSide.cpu;
    const floorCpu = floorSide.cpu;
    const protocolCpu = protocolSide.cpu;
    const lat = (rs: ClientResult[]) => rs.flatMap((x) => x.latencies);
    const errs = (rs: ClientResult[]) => {
      const e: Record<string, number> = {};
      for (const x of rs) for (const [k, v] of Object.entries(x.errors)) e[k] = (e[k] ?? 0) + v;
      return e;
    };
    const count = (e: Record<string, number>) => Object.values(e).reduce((s, v) => s + v, 0);
    const ratio = Number(summarize(pairs).opsPerSec.toFixed(2));
    const ourErrors = errs(ours);
    const baseErrors = errs(base);
    const o = summarize(ours.map((x) => x.per_s));
    const b = summarize(base.map((x) => x.per_s));
    const ms = (v: number) => Number(v.toFixed(3));
    const med = (v: number[]) => Number(summarize(v).opsPerSec.toFixed(1));
    const meets = ratio >= TARGET && count(ourErrors) === 0;
    const floorRatio = Number(summarize(floorPairs).opsPerSec.toFixed(2));
    const protocolFloorRatio = Number(summarize(protocolPairs).opsPerSec.toFixed(2));
    const protocolFloorErrors = count(errs(protocolSide.results));
    const wireFloorRatio = Number(summarize(wirePairs).opsPerSec.toFixed(2));
    const wireFloorErrors = count(errs(wireSide.results));
    const clientCpu = (rs: ClientResult[]) =>
      med(rs.map((x) => x.client_cpu_us / Math.max(1, x.done)));
    const serverWarmup = allSettled(warmups);
    allMet &&= meets;
    emit({
      ...line('broker.handoff.throughput', o, 'node.accept_and_write', b),
      ratio,
      ratio_of: `median of ${options.rounds} alternating round pairs`,
      ratio_of_medians: Number((o.opsPerSec / b.opsPerSec).toFixed(2)),
      paired_ratios: pairs.map((p) => Number(p.toFixed(2))),
      unit: 'connections_per_s (connect → Hello → handoff → first response → close)',
      loops,
      node_flags: nodeFlags,
      measure_ms: options.measureMs,
      handoffs: ours.reduce((s, x) => s + x.done, 0),
      errors: count(ourErrors),
      errors_by_code: ourErrors,
      baseline_errors: count(baseErrors),
      baseline_errors_by_code: baseErrors,
      p50_ms: ms(percentile(lat(ours), 50)),
      p99_ms: ms(percentile(lat(ours), 99)),
      baseline_p50_ms: ms(percentile(lat(base), 50)),
      baseline_p99_ms: ms(percentile(lat(base), 99)),
      server_cpu_us_per_op: med(oursCpu),
      broker_cpu_us_per_op: med(oursSide.brokerCpu),
      daemon_cpu_us_per_op: med(oursSide.daemonCpu),
      baseline_server_cpu_us_per_op: med(baseCpu),
      client_cpu_us_per_op: clientCpu(ours),
      baseline_client_cpu_us_per_op: clientCpu(base),
      client_helper_cpu_us_per_op: med(
        ours.map((x) => x.client_helper_cpu_us / Math.max(1, x.done)),
      ),
      baseline_client_helper_cpu_us_per_op: med(
        base.map((x) => x.client_helper_cpu_us / Math.max(1, x.done)),
      ),
      server_helper_cpu_us_per_op: med(oursSide.helpers),
      baseline_server_helper_cpu_us_per_op: med(baseSide.helpers),
      client_warmup_ms: med(ours.map((x) => x.warmup_ms)),
      baseline_client_warmup_ms: med(base.map((x) => x.warmup_ms)),
      server_warmup_ms: serverWarmup.warmup_ms,
      jit_settled: serverWarmup.jit_settled,
      unsettled_clients: sides.reduce((n, s) => n + s.results.filter((x) => !x.settled).length, 0),
      floor_ratio: floorRatio,
      floor_ratio_of:
        'bare Node handoff (fd passed on, nothing read) ÷ the same baseline, median of round pairs',
      floor_server_cpu_us_per_op: med(floorCpu),
      protocol_floor_ratio: protocolFloorRatio,
      protocol_floor_ratio_of:
        'Hello-reading Node handoff (the broker waits for the Hello and passes it on with the fd; its client sends a Hello and reads two frames) ÷ the same baseline, median of round pairs',
      protocol_floor_server_cpu_us_per_op: med(protocolCpu),
      protocol_floor_client_cpu_us_per_op: clientCpu(protocolSide.results),
      protocol_floor_paired_ratios: protocolPairs.map((p) => Number(p.toFixed(2))),
      protocol_floor_p50_ms: ms(percentile(lat(protocolSide.results), 50)),
      protocol_floor_p99_ms: ms(percentile(lat(protocolSide.results), 99)),
      floor_errors: count(errs(floorSide.results)),
      protocol_floor_errors: protocolFloorErrors,
      wire_floor_ratio: wireFloorRatio,
      wire_floor_ratio_of:
        'the handoff of record (DESIGN §2.5) done the cheapest right way in Node, none of our code (bare-handoff.mjs wire-broker) ÷ the same baseline, median of round pairs',
      wire_floor_paired_ratios: wirePairs.map((p) => Number(p.toFixed(2))),
      ratio_to_wire_floor: Number(summarize(oursToWire).opsPerSec.toFixed(2)),
      wire_floor_server_cpu_us_per_op: med(wireSide.cpu),
      wire_floor_broker_cpu_us_per_op: med(wireSide.brokerCpu),
      wire_floor_daemon_cpu_us_per_op: med(wireSide.daemonCpu),
      wire_floor_client_cpu_us_per_op: clientCpu(wireSide.results),
      wire_floor_p50_ms: ms(percentile(lat(wireSide.results), 50)),
      wire_floor_p99_ms: ms(percentile(lat(wireSide.results), 99)),
      wire_floor_errors: wireFloorErrors,
      target_ratio: TARGET,
      meets_target: meets,
      // Out of reach when the wire floor — every step the handoff of record
      // requires, and nothing else — scores below the target. It does all
      // the other floors do and more, so it is the tightest bound; taking
      // the lowest of several noisy floors would lean towards "out of
      // reach". A floor that failed connections proves nothing.
      verdict: verdictOf([
        { met: count(ourErrors) === 0 },
        {
          met: ratio >= TARGET,
          reachable: wireFloorRatio >= TARGET || wireFloorErrors > 0,
        },
      ]),
    });
    if (defaultsSide) {
      const c = defaultsSide.results;
      emit({
        ...line(
          'broker.handoff.throughput.v8_defaults',
          summarize(c.map((x) => x.per_s)),
          'broker.handoff.throughput',
          o,
        ),
        ratio: Number(summarize(defaultsToOurs).opsPerSec.toFixed(2)),
        ratio_of: `median of ${options.rounds} round pairs, V8 defaults ÷ ours, the same rounds`,
        paired_ratios: defaultsToOurs.map((p) => Number(p.toFixed(2))),
        unit: 'connections_per_s (connect → Hello → handoff → first response → close)',
        loops,
        node_flags: '',
        errors: count(errs(c)),
        p50_ms: ms(percentile(lat(c), 50)),
        p99_ms: ms(percentile(lat(c), 99)),
        baseline_p50_ms: ms(percentile(lat(ours), 50)),
        baseline_p99_ms: ms(percentile(lat(ours), 99)),
        server_cpu_us_per_op: med(defaultsSide.cpu),
        baseline_server_cpu_us_per_op: med(oursCpu),
        target:
          "none: our broker with V8's default young generation (a library in a process started without the broker's flags), against ours as its executable starts it, on record",
      });
    }
  }
  return allMet;
}
