// How the broker scales with the number of defined services: Hello p50 on
// the reconnect route with 1, 100, 1,000 and 10,000 definitions (brokers
// side by side, Hellos interleaved across them, with a second 1-definition
// broker as the A/A control, and the 1- and 10,000-definition brokers again
// with V8's default young generation: the heap's share), startup time, and
// RSS per defined service (0 … 10,000 definitions, no daemon running, after
// GC). Ours run with the broker's node flags, as its executable starts it.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { BROKER_NODE_FLAGS, connectService } from '@handoff/broker';
import { emit, line, percentile, roundOrders, summarize } from '../measure.ts';
import { warmUntilSettled } from '../settle.ts';
import { firstReply, helloFrameFor } from './frames.ts';
import { minorFaults, treeCpuUs } from './proc-stat.ts';

const here = import.meta.dirname;
/** Definitions per config file: 10,000 of them would pass the 1 MiB file cap. */
const PER_FILE = 500;

export interface CapacityBroker {
  count: number;
  socketPath: string;
  child: ChildProcess;
  startMs: number;
  spawnToReadyMs: number;
  /** The next JSON line the broker prints. */
  next(): Promise<Record<string, unknown>>;
}

/** Writes `count` definitions into `dir`: `echo-plain` (the one Hellos ask for) and `svc-<i>`. */
export function writeDefinitions(dir: string, count: number, handoff = false): void {
  mkdirSync(dir, { recursive: true });
  const daemon = join(here, 'echo-daemon.mjs');
  const defs = Array.from({ length: count }, (_, i) => ({
    name: i === 0 ? 'echo-plain' : `svc-${String(i).padStart(5, '0')}`,
    version: '1.0.0',
    command: process.execPath,
    args: [daemon],
    handoff,
    readyTimeoutMs: 30_000,
  }));
  for (let f = 0; f * PER_FILE < count; f++) {
    const services = defs.slice(f * PER_FILE, (f + 1) * PER_FILE);
    writeFileSync(
      join(dir, `services-${String(f).padStart(3, '0')}.json`),
      JSON.stringify({ services }),
    );
  }
}

export async function startCapacityBroker(
  root: string,
  count: number,
  {
    nodeFlags = BROKER_NODE_FLAGS,
    written,
  }: {
    /** Node flags: by default the broker's own (its executable's and its systemd unit's). */
    nodeFlags?: readonly string[];
    /** A config dir already written; by default one of `count` echo definitions is. */
    written?: string;
  } = {},
): Promise<CapacityBroker> {
  const configDir = written ?? join(root, `config-${count}`);
  if (written === undefined) writeDefinitions(configDir, count);
  const socketPath = join(root, `b-${basename(configDir)}`, 'broker.sock');
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...nodeFlags, join(here, 'capacity-broker.mjs'), socketPath, configDir],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`broker with ${count} definitions exited`);
    return JSON.parse(value as string) as Record<string, unknown>;
  };
  const ready = await next();
  const spawnToReadyMs = performance.now() - t0;
  if (ready.services !== count)
    throw new Error(`broker loaded ${String(ready.services)} of ${count} definitions`);
  return { count, socketPath, child, startMs: ready.start_ms as number, spawnToReadyMs, next };
}

export async function memoryOf(broker: CapacityBroker): Promise<{ rss: number; heap: number }> {
  broker.child.stdin!.write('rss\n');
  const reply = await broker.next();
  return { rss: reply.rss_kib as number, heap: reply.heap_used_kib as number };
}

export async function stopBrokers(brokers: readonly CapacityBroker[]): Promise<void> {
  await Promise.all(
    brokers.map(async (b) => {
      if (b.child.exitCode !== null || b.child.signalCode !== null) return;
      const exited = once(b.child, 'exit');
      b.child.kill('SIGTERM');
      await exited;
    }),
  );
}

/** Least-squares slope and intercept of y over x. */
export function fit(points: readonly { x: number; y: number }[]): {
  slope: number;
  intercept: number;
} {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxy = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

const helloFrame = helloFrameFor('echo-plain');

const us = (ms: number) => Number((ms * 1000).toFixed(1));
const perSecond = (ms: number) => summarize([1000 / ms]);

/**
 * Runs the three measurements over brokers with `counts` definitions
 * (the first must be 0, for RSS only; Hellos go to the others).
 */
export async function servicesCase(
  root: string,
  counts: readonly number[],
  hellos: number,
): Promise<boolean> {
  const brokers: CapacityBroker[] = [];
  let met = true;
  try {
    for (const count of counts) {
      console.error(`# capacity: broker with ${count} definitions`);
      brokers.push(await startCapacityBroker(root, count));
    }
    // The A/A control: a second broker with the smallest Hello-taking count.
    const twinCount = counts.find((c) => c > 0)!;
    const twinDir = join(root, `config-${twinCount}-twin`);
    writeDefinitions(twinDir, twinCount);
    const twin = await startCapacityBroker(root, twinCount, { written: twinDir });
    brokers.push(twin);
    // The young generation's share: the smallest and the largest count again,
    // in the same loop, both started without the broker's node flags
    // (BROKER_NODE_FLAGS: --max-semi-space-size=4), as a library in a plain
    // process would run. With many definitions V8 then grows the young
    // generation's semi-spaces towards their 16 MiB default, and a Hello
    // touches fresh new-space pages: 0.5-0.8 minor page faults per Hello
    // against 0.04 with one definition (2026-12-06, /proc/<pid>/stat minflt),
    // each one dear on this VM. The flags cap them at 4 MiB, and the faults
    // go and the p50 gap with them.
    const defaults: CapacityBroker[] = [];
    if (process.env.BENCH_CAPACITY_V8_DEFAULTS !== '0') {
      for (const count of [twinCount, Math.max(...counts)]) {
        const dir = join(root, `config-${count}-v8-defaults`);
        writeDefinitions(dir, count);
        defaults.push(await startCapacityBroker(root, count, { nodeFlags: [], written: dir }));
      }
      brokers.push(...defaults);
    }
    // RSS before any daemon runs: definitions only.
    const rss: { x: number; y: number }[] = [];
    const heap: { x: number; y: number }[] = [];
    for (const b of brokers) {
      if (b === twin || defaults.includes(b)) continue;
      const m = await memoryOf(b);
      rss.push({ x: b.count, y: m.rss });
      heap.push({ x: b.count, y: m.heap });
    }
    const { slope, intercept } = fit(rss);
    emit({
      ...line(
        'broker.rss.per_defined_service',
        summarize([0]),
        'broker.rss.no_definitions',
        summarize([0]),
      ),
      kib_per_service: Number(slope.toFixed(3)),
      intercept_kib: Math.round(intercept),
      heap_kib_per_service: Number(fit(heap).slope.toFixed(3)),
      points: rss.map((p, i) => ({ definitions: p.x, rss_kib: p.y, heap_used_kib: heap[i]!.y })),
      method:
        'one broker process per count, same config-dir loading, no daemon spawned; VmRSS after two gc() (--expose-gc); least-squares slope',
    });
    const withHellos = brokers.filter((b) => b.count > 0);
    for (const b of withHellos)
      (
        await connectService('echo-plain', {
          version: '1.0.0',
          brokerPath: b.socketPath,
          timeoutMs: 60_000,
        })
      ).socket.destroy();
    console.error(`# capacity: ${hellos} Hellos per broker, interleaved`);
    // At least 300 rounds, then until every broker's JIT has settled (settle.ts).
    const warmup = await warmUntilSettled(
      async () => {
        for (const b of withHellos) await firstReply(b.socketPath, helloFrame);
      },
      withHellos.map((b) => b.child.pid!),
      { minRounds: 300 },
    );
    const samples = new Map<CapacityBroker, number[]>(withHellos.map((b) => [b, []]));
    const cpu0 = new Map(withHellos.map((b) => [b, treeCpuUs([b.child.pid!])]));
    const faults0 = new Map(withHellos.map((b) => [b, minorFaults(b.child.pid!)]));
    // In a fresh random order every round, so no broker always follows the same one.
    const order = roundOrders(withHellos.length);
    for (let i = 0; i < hellos; i++)
      for (const k of order()) {
        const b = withHellos[k]!;
        samples.get(b)!.push(await firstReply(b.socketPath, helloFrame));
      }
    // Broker CPU per Hello (from /proc/<pid>/stat): less distorted by neighbours than latency.
    const cpuPerHello = new Map(
      withHellos.map((b) => [b, (treeCpuUs([b.child.pid!]) - cpu0.get(b)!) / hellos]),
    );
    const faultsPerHello = new Map(
      withHellos.map((b) => [b, (minorFaults(b.child.pid!) - faults0.get(b)!) / hellos]),
    );
    const faults = (b: CapacityBroker) => Number(faultsPerHello.get(b)!.toFixed(3));
    const smallest = withHellos[0]!;
    const base = samples.get(smallest)!;
    const baseP50 = percentile(base, 50);
    // How far two identical brokers' p50s drift apart in this run: a
    // tolerance narrower than that cannot be judged from this run.
    const aaP50 = percentile(samples.get(twin)!, 50) / baseP50;
    for (const b of withHellos.slice(1)) {
      if (defaults.includes(b)) continue;
      const s = samples.get(b)!;
      const p50 = percentile(s, 50);
      const p50Ratio = p50 / baseP50;
      const meets = b.count < 10_000 || p50Ratio <= 1.1;
      if (b.count === 10_000) met &&= meets;
      const isTwin = b === twin;
      emit({
        ...line(
          `broker.hello_to_reply.defined_${b.count}${isTwin ? '.twin' : ''}`,
          perSecond(p50),
          `broker.hello_to_reply.defined_${smallest.count}`,
          perSecond(baseP50),
        ),
        definitions: b.count,
        node_flags: BROKER_NODE_FLAGS.join(' '),
        p50_us: us(p50),
        p99_us: us(percentile(s, 99)),
        baseline_p50_us: us(baseP50),
        baseline_p99_us: us(percentile(base, 99)),
        p50_vs_baseline: Number(p50Ratio.toFixed(3)),
        broker_cpu_us_per_hello: Number(cpuPerHello.get(b)!.toFixed(1)),
        baseline_broker_cpu_us_per_hello: Number(cpuPerHello.get(smallest)!.toFixed(1)),
        broker_minor_faults_per_hello: faults(b),
        baseline_broker_minor_faults_per_hello: faults(smallest),
        samples: hellos,
        ...warmup,
        route: 'reconnect',
        ...(isTwin
          ? {
              target: `none: the A/A control, a second ${b.count}-definition broker in the same loop`,
            }
          : {}),
        ...(b.count === 10_000
          ? {
              target: 'p50 <= 1.1x the 1-definition broker',
              meets_target: meets,
              a_a_p50_ratio: Number(aaP50.toFixed(3)),
              p50_target_within_a_a_drift: aaP50 <= 1.1 && aaP50 >= 1 / 1.1,
            }
          : {}),
      });
    }
    if (defaults.length === 2) {
      const [low, high] = defaults as [CapacityBroker, CapacityBroker];
      const lowP50 = percentile(samples.get(low)!, 50);
      const highP50 = percentile(samples.get(high)!, 50);
      emit({
        ...line(
          `broker.hello_to_reply.defined_${high.count}.v8_defaults`,
          perSecond(highP50),
          `broker.hello_to_reply.defined_${low.count}.v8_defaults`,
          perSecond(lowP50),
        ),
        node_flags: '',
        definitions: high.count,
        p50_us: us(highP50),
        baseline_p50_us: us(lowP50),
        p50_vs_baseline: Number((highP50 / lowP50).toFixed(3)),
        p50_vs_ours_baseline: Number((highP50 / baseP50).toFixed(3)),
        broker_cpu_us_per_hello: Number(cpuPerHello.get(high)!.toFixed(1)),
        baseline_broker_cpu_us_per_hello: Number(cpuPerHello.get(low)!.toFixed(1)),
        broker_minor_faults_per_hello: faults(high),
        baseline_broker_minor_faults_per_hello: faults(low),
        samples: hellos,
        route: 'reconnect',
        target:
          "none: the same two counts with V8's default young generation, on record — how much the broker's node flags take out of the many-definitions ratio",
      });
    }
    const counted = brokers.filter((b) => b !== twin && !defaults.includes(b));
    const startup = counted.map((b) => ({
      definitions: b.count,
      start_broker_ms: Number(b.startMs.toFixed(1)),
      spawn_to_ready_ms: Number(b.spawnToReadyMs.toFixed(1)),
    }));
    const first = counted[0]!;
    const last = counted.at(-1)!;
    emit({
      ...line(
        `broker.startup.defined_${last.count}`,
        perSecond(last.startMs),
        `broker.startup.defined_${first.count}`,
        perSecond(first.startMs),
      ),
      start_broker_ms: Number(last.startMs.toFixed(1)),
      baseline_start_broker_ms: Number(first.startMs.toFixed(1)),
      points: startup,
      method:
        'startBroker() call to resolve inside the broker process (config dir load included); spawn_to_ready adds node start',
    });
  } finally {
    await stopBrokers(brokers);
  }
  return met;
}
