// `npm run bench -- broker`: the broker's latencies and the cost of its
// handoff, each against a baseline measured in the same run.
//   hello:    Hello → Negotiated on a fresh connection, 10,000 sequential
//             (reconnect route, so the daemon is not involved), vs the
//             same bytes through a bare echo — both in their own process —
//             with the Hello floor (the same route of record done the
//             cheapest right way, bare-handoff.mjs wire-hello) and a C
//             server in the same loop
//   connect:  connect to the first daemon response, three routes —
//             handoff, reconnect to backend_pipe, and straight to the daemon;
//             the first request sent with the Hello (initialData) and after;
//             plus the floor of any Node handoff (bare-handoff.mjs) and,
//             on record, the handoff of record written plainly in Node (the
//             wire floor), each against its own direct echo, all measured
//             in the same loop
//   bulk:     64 KiB requests on a handed-off session vs a direct connection
// Every timed loop starts once the JIT of each process in it has settled
// (settle.ts); the lines say how long that took (warmup_ms, jit_settled).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { BROKER_NODE_FLAGS, connectService } from '@handoff/broker';
import { encodeFramed, requestFrame } from '@handoff/protocol';
import { startBareHandoff, startHelloFloor } from './broker/bare-handoff.ts';
import { startCFirstReply } from './broker/c-first-reply.ts';
import { endpointCacheBench } from './broker/endpoint-cache.ts';
import { connectPath, firstReply, helloFrameFor, readFrame } from './broker/frames.ts';
import { childrenOf, helloBytes, readFrames } from './broker/probe-wire.mjs';
import { emit, line, percentile, roundOrders, summarize, type Throughput } from './measure.ts';
import { warmUntilSettled } from './settle.ts';
import { beyondAaDrift, verdictOf } from './verdict.ts';

const P = 0xf001;
const us = (ms: number) => Number((ms * 1000).toFixed(1));

export async function brokerSuite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-broker-'));
  const socketPath = join(dir, 'run', 'broker.sock');
  // Broker, daemons and the echo baseline each run in their own process,
  // as plain JavaScript over the built packages: the client crosses a
  // process boundary for ours and for the baseline alike. The broker gets
  // the node flags its executable and its systemd unit start it with.
  const child = (script: string, arg: string, nodeArgs: readonly string[] = []) =>
    spawn(process.execPath, [...nodeArgs, join(import.meta.dirname, 'broker', script), arg], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const broker = child('broker-process.mjs', socketPath, BROKER_NODE_FLAGS);
  const echo = child('echo-process.mjs', join(dir, 'echo.sock'));
  const echoTwin = child('echo-process.mjs', join(dir, 'echo-twin.sock'));
  const cServer = await startCFirstReply(join(dir, 'c.sock'));
  const floor = await startBareHandoff(dir);
  const wireFloor = await startBareHandoff(dir, { kind: 'wire' });
  const helloFloor = await startHelloFloor(join(dir, 'hello-floor.sock'), {
    service: 'echo-plain',
    version: '1.0.0',
    endpoint: join(dir, 'echo-plain.sock'),
  });
  try {
    await once(broker.stdout!, 'data');
    await once(echo.stdout!, 'data');
    await once(echoTwin.stdout!, 'data');
    console.error('# broker: starting the daemons');
    // Start both daemons before measuring.
    for (const name of ['echo', 'echo-plain'])
      (
        await connectService(name, { version: '1.0.0', brokerPath: socketPath, timeoutMs: 60_000 })
      ).socket.destroy();
    // BENCH_BROKER_CASES=hello,connect,bulk runs some of the cases (default: all).
    const cases = process.env.BENCH_BROKER_CASES?.split(',');
    const runs = (name: string) => cases === undefined || cases.includes(name);
    // The broker with its daemons, for the warm-ups.
    const brokerPids = () => [broker.pid!, ...childrenOf(broker.pid!)];
    console.error('# broker: 10,000 sequential Hellos');
    if (runs('hello'))
      await helloBench(
        socketPath,
        {
          echo: join(dir, 'echo.sock'),
          twin: join(dir, 'echo-twin.sock'),
          c: join(dir, 'c.sock'),
          floor: helloFloor.path,
        },
        [...brokerPids(), echo.pid!, echoTwin.pid!, helloFloor.pid],
      );
    console.error('# broker: connect to first response, three routes');
    if (runs('connect'))
      await connectBench(socketPath, floor, wireFloor, [
        ...brokerPids(),
        ...floor.pids(),
        ...wireFloor.pids(),
      ]);
    console.error('# broker: bulk after handoff vs direct');
    if (runs('bulk')) await bulkBench(socketPath);
    if (runs('cache')) await endpointCacheBench(socketPath, brokerPids());
  } finally {
    echo.kill('SIGTERM');
    echoTwin.kill('SIGTERM');
    broker.kill('SIGTERM');
    cServer.kill('SIGTERM');
    await Promise.all([
      once(broker, 'exit'),
      once(echo, 'exit'),
      once(echoTwin, 'exit'),
      once(cServer, 'exit'),
      floor.stop(),
      wireFloor.stop(),
      helloFloor.stop(),
    ]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const helloFrame = helloFrameFor('echo-plain');

// Targets (issue 17): p50 at least 0.9x the echo's speed, p99 at most 1.1x
// the echo's p99. The Hello floor says whether a Node broker could have met
// them in this run; the C server's line puts the machine's floor on record.
const HELLO_P50_SPEED_TARGET = 0.9;
const HELLO_P99_TARGET = 1.1;

async function helloBench(
  brokerPath: string,
  paths: { echo: string; twin: string; c: string; floor: string },
  pids: readonly number[],
): Promise<void> {
  const n = 10_000;
  const servers = [brokerPath, paths.echo, paths.twin, paths.c, paths.floor];
  const warmup = await warmUntilSettled(
    async () => {
      for (const path of servers) await firstReply(path, helloFrame);
    },
    pids,
    { minRounds: 500 },
  );
  const samples = servers.map(() => [] as number[]);
  // Interleaved, so that noise on the shared machine hits all five alike,
  // in a fresh random order every round (see roundOrders).
  const order = roundOrders(servers.length);
  for (let i = 0; i < n; i++)
    for (const k of order()) samples[k]!.push(await firstReply(servers[k]!, helloFrame));
  const [hellos, base, twin, cFloor, helloFloor] = samples as [
    number[],
    number[],
    number[],
    number[],
    number[],
  ];
  const p50 = percentile(hellos, 50);
  const p99 = percentile(hellos, 99);
  // The A/A control: the same echo program twice. Its p99 ratio is the
  // drift between two identical servers in this run; a p99 tolerance
  // narrower than that drift cannot be judged from this run.
  const aaP99 = percentile(twin, 99) / percentile(base, 99);
  const aaP50 = percentile(twin, 50) / percentile(base, 50);
  const ours = {
    p50_us: us(p50),
    p99_us: us(p99),
  };
  const versus = (baseName: string, samples: number[]) => ({
    ...line('broker.hello_to_reply', perSecond(p50), baseName, perSecond(percentile(samples, 50))),
    ...ours,
    baseline_p50_us: us(percentile(samples, 50)),
    baseline_p99_us: us(percentile(samples, 99)),
    p99_vs_baseline: Number((p99 / percentile(samples, 99)).toFixed(2)),
    samples: n,
    ...warmup,
  });
  const echo = versus('net.echo.first_reply', base);
  const p50Met = percentile(base, 50) / p50 >= HELLO_P50_SPEED_TARGET;
  const p99Met = p99 <= HELLO_P99_TARGET * percentile(base, 99);
  const p99Resolvable = aaP99 <= HELLO_P99_TARGET && aaP99 >= 1 / HELLO_P99_TARGET;
  // The Hello floor against the same echo: a part it misses too was out of
  // reach for any Node broker in this run.
  const floorP50 = percentile(helloFloor, 50);
  const floorP99 = percentile(helloFloor, 99);
  const floorP50Speed = percentile(base, 50) / floorP50;
  const floorP99Ratio = floorP99 / percentile(base, 99);
  emit({
    ...echo,
    target_ratio: HELLO_P50_SPEED_TARGET,
    target_p99_vs_baseline: HELLO_P99_TARGET,
    meets_target: p50Met && p99Met,
    a_a_p99_ratio: Number(aaP99.toFixed(2)),
    p99_target_within_a_a_drift: p99Resolvable,
    floor_p50_us: us(floorP50),
    floor_p99_us: us(floorP99),
    floor_speed_ratio: Number(floorP50Speed.toFixed(2)),
    floor_p99_ratio: Number(floorP99Ratio.toFixed(2)),
    p50_to_floor_ratio: Number((p50 / floorP50).toFixed(2)),
    p99_to_floor_ratio: Number((p99 / floorP99).toFixed(2)),
    // A part is out of reach when the Hello floor missed it too; a p99 miss
    // inside the A/A drift is undecidable; any other miss is a miss.
    verdict: verdictOf([
      { met: p50Met, reachable: floorP50Speed >= HELLO_P50_SPEED_TARGET },
      {
        met: p99Met,
        reachable: floorP99Ratio <= HELLO_P99_TARGET,
        resolvable: p99Resolvable,
      },
    ]),
  });
  emit({
    ...versus('wire.hello_floor', helloFloor),
    target:
      'none: the Hello floor (the reconnect route of record done the cheapest right way in Node), on record',
  });
  emit({ ...versus('c.first_reply', cFloor), target: 'none: the C floor, on record' });
  reportLatencies('net.echo.first_reply.twin', twin, 'net.echo.first_reply', base, {
    ...warmup,
    a_a_p50_ratio: Number(aaP50.toFixed(2)),
    a_a_p99_ratio: Number(aaP99.toFixed(2)),
    target:
      'none: the A/A control, the same echo program in a second process, same loop; its p99 ratio is how far two identical servers drift apart in this run',
  });
}

const HANDOFF_P50_VS_DIRECT_TARGET = 1.6;

type FloorPaths = { brokerPath: string; directPath: string };

async function connectBench(
  brokerPath: string,
  floor: FloorPaths,
  wireFloor: FloorPaths,
  pids: readonly number[],
): Promise<void> {
  // 2,000 rounds: a p99 is then the 20th-slowest sample, not the 10th.
  const rounds = 2000;
  const request = encodeFramed(
    requestFrame({ payloadProtocol: P, requestId: 1n, payload: new Uint8Array(32) }),
  );
  // Connect → first response from the daemon, the way an application does
  // it: one connectService call with its first request, then read. With
  // `pipelined` the request rides with the Hello (initialData); without,
  // it is written once connectService has returned.
  const viaBroker = async (service: string, pipelined: boolean) => {
    const t0 = performance.now();
    const { socket, negotiated } = await connectService(service, {
      version: '1.0.0',
      brokerPath,
      timeoutMs: 10_000,
      ...(pipelined ? { initialData: request } : {}),
    });
    if (!pipelined) socket.write(request);
    await readFrame(socket);
    const elapsed = performance.now() - t0;
    socket.destroy();
    return { elapsed, pipe: negotiated.backendPipe };
  };
  const { pipe } = await viaBroker('echo', true);
  // A bare client: `bytes` in one write on a fresh connection to `path`,
  // timed until `frames` whole frames are back.
  const exchange = async (path: string, bytes: Uint8Array, frames: number) => {
    const t0 = performance.now();
    const socket = connectPath(path);
    socket.write(bytes);
    await readFrames(socket, frames);
    const elapsed = performance.now() - t0;
    socket.destroy();
    return elapsed;
  };
  const direct = (path = pipe) => exchange(path, request, 1);
  // The wire floor's client sends what connectService sends (the Hello and
  // the request in one write) and reads what it reads: Negotiated, the
  // relayed ack, the response.
  const helloAndRequest = Buffer.concat([helloBytes('echo', { handoff: true }), request]);
  const viaWireFloor = () => exchange(wireFloor.brokerPath, helloAndRequest, 3);
  const samples = {
    handoff: [] as number[],
    reconnect: [] as number[],
    reconnectTwin: [] as number[],
    handoffAfter: [] as number[],
    reconnectAfter: [] as number[],
    direct: [] as number[],
    bareHandoff: [] as number[],
    bareDirect: [] as number[],
    wireHandoff: [] as number[],
    wireDirect: [] as number[],
  };
  const routes: [keyof typeof samples, () => Promise<number>][] = [
    ['handoff', async () => (await viaBroker('echo', true)).elapsed],
    ['reconnect', async () => (await viaBroker('echo-plain', true)).elapsed],
    // The A/A control: the reconnect route again, for how far two p99s of
    // the same route drift apart in this run.
    ['reconnectTwin', async () => (await viaBroker('echo-plain', true)).elapsed],
    ['handoffAfter', async () => (await viaBroker('echo', false)).elapsed],
    ['reconnectAfter', async () => (await viaBroker('echo-plain', false)).elapsed],
    ['direct', () => direct()],
    ['bareHandoff', () => direct(floor.brokerPath)],
    ['bareDirect', () => direct(floor.directPath)],
    ['wireHandoff', viaWireFloor],
    ['wireDirect', () => direct(wireFloor.directPath)],
  ];
  const warmup = await warmUntilSettled(
    async () => {
      for (const [, run] of routes) await run();
    },
    pids,
    { minRounds: 100 },
  );
  // Interleaved, in a fresh random order every round (see roundOrders).
  const order = roundOrders(routes.length);
  for (let i = 0; i < rounds; i++)
    for (const k of order()) {
      const [name, run] = routes[k]!;
      samples[name].push(await run());
    }
  const beats = (a: number[], b: number[]) =>
    percentile(a, 50) < percentile(b, 50) && percentile(a, 99) < percentile(b, 99);
  reportLatencies(
    'broker.connect_to_first_response.handoff',
    samples.handoff,
    'broker.connect_to_first_response.reconnect',
    samples.reconnect,
    {
      first_request: 'with_hello',
      meets_target: beats(samples.handoff, samples.reconnect),
      ...warmup,
    },
  );
  const aaP99 = percentile(samples.reconnectTwin, 99) / percentile(samples.reconnect, 99);
  reportLatencies(
    'broker.connect_to_first_response.reconnect.twin',
    samples.reconnectTwin,
    'broker.connect_to_first_response.reconnect',
    samples.reconnect,
    {
      first_request: 'with_hello',
      a_a_p50_ratio: Number(
        (percentile(samples.reconnectTwin, 50) / percentile(samples.reconnect, 50)).toFixed(2),
      ),
      a_a_p99_ratio: Number(aaP99.toFixed(2)),
      target:
        'none: the A/A control, the reconnect route measured twice in the same loop; its p99 ratio is how far two p99s of one route drift apart in this run',
      ...warmup,
    },
  );
  reportLatencies(
    'broker.connect_to_first_response.handoff',
    samples.handoffAfter,
    'broker.connect_to_first_response.reconnect',
    samples.reconnectAfter,
    {
      first_request: 'after_connect',
      handoff_faster: beats(samples.handoffAfter, samples.reconnectAfter),
      ...warmup,
    },
  );
  // Issue 17: handoff p50 at most 1.6x direct (a handoff has one hop more:
  // ~1.5x is the structural floor), and its p99 below reconnect's.
  const p50 = (route: keyof typeof samples) => percentile(samples[route], 50);
  const vsDirect = p50('handoff') / p50('direct');
  // The floor: the same ratio for a Node handoff that does nothing but pass
  // the fd on. A target below it is out of reach for any Node broker here.
  // Beside it, on record only, the wire floor: the handoff of record done
  // the cheapest right way in Node with none of our code (DESIGN §2.5, §2.7).
  // It is no floor for latency (ours came in at 0.74–0.83 of its p50 when
  // it was first timed here, 2026-12-07 23:22): it answers the question how
  // far a correct handoff written plainly lands from 1.6x, not whether ours
  // could have met it.
  const floorVsDirect = p50('bareHandoff') / p50('bareDirect');
  const wireFloorVsDirect = p50('wireHandoff') / p50('wireDirect');
  reportLatencies(
    'node.connect_to_first_response.bare_handoff',
    samples.bareHandoff,
    'node.connect_to_first_response.bare_direct',
    samples.bareDirect,
    {
      p50_vs_baseline: Number(floorVsDirect.toFixed(2)),
      target: 'none: the floor of a handoff in Node (no Hello, no checks), on record',
      ...warmup,
    },
  );
  reportLatencies(
    'node.connect_to_first_response.wire_handoff',
    samples.wireHandoff,
    'node.connect_to_first_response.wire_direct',
    samples.wireDirect,
    {
      p50_vs_baseline: Number(wireFloorVsDirect.toFixed(2)),
      target:
        'none: the handoff of record done the plain right way in Node (bare-handoff.mjs wire-broker), on record; not a floor for latency',
      ...warmup,
    },
  );
  const reconnectP99 = percentile(samples.reconnect, 99);
  const p50Met = vsDirect <= HANDOFF_P50_VS_DIRECT_TARGET;
  const p99VsReconnect = percentile(samples.handoff, 99) / reconnectP99;
  const p99Met = p99VsReconnect < 1;
  const p50Part = { met: p50Met, reachable: floorVsDirect <= HANDOFF_P50_VS_DIRECT_TARGET };
  // The floor's p99 against the same reconnect p99: when the handoff that
  // reads nothing is not below it either, no Node handoff was.
  const floorP99VsReconnect = percentile(samples.bareHandoff, 99) / reconnectP99;
  const p99Part = {
    met: p99Met,
    reachable: floorP99VsReconnect < 1,
    // The target is "below", with no tolerance: a p99 above reconnect's by
    // less than the reconnect route's own A/A drift is not a finding.
    resolvable: beyondAaDrift(p99VsReconnect, aaP99),
  };
  reportLatencies(
    'broker.connect_to_first_response.handoff',
    samples.handoff,
    'daemon.connect_to_first_response.direct',
    samples.direct,
    {
      first_request: 'with_hello',
      p50_vs_baseline: Number(vsDirect.toFixed(2)),
      target_p50_vs_baseline: HANDOFF_P50_VS_DIRECT_TARGET,
      floor_p50_vs_direct: Number(floorVsDirect.toFixed(2)),
      p50_vs_floor: Number((p50('handoff') / p50('bareHandoff')).toFixed(2)),
      wire_floor_p50_vs_direct: Number(wireFloorVsDirect.toFixed(2)),
      p50_vs_wire_floor: Number((p50('handoff') / p50('wireHandoff')).toFixed(2)),
      p99_below_reconnect: p99Met,
      p99_vs_reconnect_ratio: Number(p99VsReconnect.toFixed(2)),
      floor_p99_vs_reconnect_ratio: Number(floorP99VsReconnect.toFixed(2)),
      reconnect_a_a_p99_ratio: Number(aaP99.toFixed(2)),
      ...warmup,
      meets_target: p50Met && p99Met,
      verdict: verdictOf([p50Part, p99Part]),
      p99_verdict: verdictOf([p99Part]),
    },
  );
}

const BULK_WARMUP_ROUNDS = 2;
// 15 measured rounds: with nine, two identical direct sessions' median ratio
// still ranged 0.84–1.09 over eleven runs (the A/A control).
const BULK_ROUNDS = 15;
const BULK_TARGET = 0.95;

async function bulkBench(brokerPath: string): Promise<void> {
  const payload = new Uint8Array(64 * 1024).fill(1);
  const requests = 2000;
  const { socket, negotiated } = await connectService('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 10_000,
  });
  // Three sessions on the same daemon: the handed-off one, a direct one, and
  // a second direct one — the A/A control, for how far two identical
  // sessions' rates drift apart in this run.
  const sides = [
    new FrameClient(socket),
    await FrameClient.connect(negotiated.backendPipe),
    await FrameClient.connect(negotiated.backendPipe),
  ];
  const run = async (client: FrameClient) => {
    const t0 = performance.now();
    let sent = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (sent < requests) {
          sent++;
          await client.request(P, payload);
        }
      }),
    );
    return (requests * payload.length * 2) / ((performance.now() - t0) / 1000);
  };
  // Unmeasured rounds first. Not warmUntilSettled: 64 KiB buffers keep the
  // GC's helper threads busy for as long as this runs, so they never look
  // idle (the cap of 20 s was reached in every run).
  for (let r = 0; r < BULK_WARMUP_ROUNDS; r++) for (const side of sides) await run(side);
  // Rounds in a fresh random order each (see roundOrders), and each ratio
  // the median of its rounds' ratios: a burst of noise on this shared
  // machine then skews one round, not the verdict, and no side always runs
  // on another's leftovers (its garbage, a neighbour's burst).
  const rates: [number[], number[], number[]] = [[], [], []];
  const order = roundOrders(sides.length);
  for (let r = 0; r < BULK_ROUNDS; r++)
    for (const k of order()) rates[k]!.push(await run(sides[k]!));
  for (const side of sides) side.close();
  const [ours, base, twin] = rates;
  const medianRatio = (a: number[]) =>
    Number(
      percentile(
        a.map((rate, i) => rate / base[i]!),
        50,
      ).toFixed(2),
    );
  const ratio = medianRatio(ours);
  const aa = medianRatio(twin);
  const met = ratio >= BULK_TARGET;
  emit({
    ...line('broker.bulk_after_handoff', summarize(ours), 'daemon.bulk_direct', summarize(base)),
    ratio,
    ratio_of: `median of ${BULK_ROUNDS} rounds’ ratios, sides in a random order each round`,
    unit: 'bytes_per_s',
    request_bytes: payload.length,
    warmup_rounds: BULK_WARMUP_ROUNDS,
    a_a_ratio: aa,
    target_ratio: BULK_TARGET,
    meets_target: met,
    // A handed-off session is the same kernel socket as a direct one, so
    // there is no floor to miss; a shortfall no wider than the A/A
    // control's drift is one this run cannot tell from noise.
    verdict: verdictOf([{ met, resolvable: beyondAaDrift(ratio, aa) }]),
  });
}

const perSecond = (ms: number): Throughput => summarize([1000 / ms]);

/** One line of latencies: p50 as the ratio's speed, p50 and p99 of both sides in µs. */
function reportLatencies(
  bench: string,
  ours: number[],
  baseName: string,
  base: number[],
  extra: Record<string, unknown> = {},
): void {
  emit({
    ...line(bench, perSecond(percentile(ours, 50)), baseName, perSecond(percentile(base, 50))),
    p50_us: us(percentile(ours, 50)),
    p99_us: us(percentile(ours, 99)),
    baseline_p50_us: us(percentile(base, 50)),
    baseline_p99_us: us(percentile(base, 99)),
    samples: ours.length,
    ...extra,
  });
}
