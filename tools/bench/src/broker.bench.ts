// `npm run bench -- broker`: the broker's latencies and the cost of its
// handoff, each against a baseline measured in the same run.
//   hello:    Hello → Negotiated on a fresh connection, 10,000 sequential
//             (reconnect route, so the daemon is not involved), vs the
//             same bytes through a bare echo — both in their own process
//   connect:  connect to the first daemon response, three routes —
//             handoff, reconnect to backend_pipe, and straight to the daemon;
//             the first request sent with the Hello (initialData) and after;
//             plus the floor of any Node handoff (bare-handoff.mjs) against
//             a bare direct echo, both measured in the same loop
//   bulk:     64 KiB requests on a handed-off session vs a direct connection
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { connectService } from '@handoff/broker';
import { encodeFramed, requestFrame } from '@handoff/protocol';
import { startBareHandoff } from './broker/bare-handoff.ts';
import { startCFirstReply } from './broker/c-first-reply.ts';
import { endpointCacheBench } from './broker/endpoint-cache.ts';
import { firstReply, helloFrameFor, readFrame } from './broker/frames.ts';
import { emit, line, percentile, summarize, type Throughput } from './measure.ts';

const P = 0xf001;
const us = (ms: number) => Number((ms * 1000).toFixed(1));

export async function brokerSuite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-broker-'));
  const socketPath = join(dir, 'run', 'broker.sock');
  // Broker, daemons and the echo baseline each run in their own process,
  // as plain JavaScript over the built packages: the client crosses a
  // process boundary for ours and for the baseline alike.
  const child = (script: string, arg: string) =>
    spawn(process.execPath, [join(import.meta.dirname, 'broker', script), arg], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  const broker = child('broker-process.mjs', socketPath);
  const echo = child('echo-process.mjs', join(dir, 'echo.sock'));
  const cServer = await startCFirstReply(join(dir, 'c.sock'));
  const floor = await startBareHandoff(dir);
  try {
    await once(broker.stdout!, 'data');
    await once(echo.stdout!, 'data');
    console.error('# broker: starting the daemons');
    // Start both daemons before measuring.
    for (const name of ['echo', 'echo-plain'])
      (
        await connectService(name, { version: '1.0.0', brokerPath: socketPath, timeoutMs: 60_000 })
      ).socket.destroy();
    // BENCH_BROKER_CASES=hello,connect,bulk runs some of the cases (default: all).
    const cases = process.env.BENCH_BROKER_CASES?.split(',');
    const runs = (name: string) => cases === undefined || cases.includes(name);
    console.error('# broker: 10,000 sequential Hellos');
    if (runs('hello')) await helloBench(socketPath, join(dir, 'echo.sock'), join(dir, 'c.sock'));
    console.error('# broker: connect to first response, three routes');
    if (runs('connect')) await connectBench(socketPath, floor);
    console.error('# broker: bulk after handoff vs direct');
    if (runs('bulk')) await bulkBench(socketPath);
    if (runs('cache')) await endpointCacheBench(socketPath);
  } finally {
    echo.kill('SIGTERM');
    broker.kill('SIGTERM');
    cServer.kill('SIGTERM');
    await Promise.all([
      once(broker, 'exit'),
      once(echo, 'exit'),
      once(cServer, 'exit'),
      floor.stop(),
    ]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const helloFrame = helloFrameFor('echo-plain');

// Targets (issue 17): p50 at least 0.9x the echo's speed, p99 at most 1.1x
// the echo's p99. The C server's line puts the floor on record.
const HELLO_P50_SPEED_TARGET = 0.9;
const HELLO_P99_TARGET = 1.1;

async function helloBench(brokerPath: string, echoPath: string, cPath: string): Promise<void> {
  const n = 10_000;
  for (let i = 0; i < 500; i++) {
    await firstReply(brokerPath, helloFrame);
    await firstReply(echoPath, helloFrame);
    await firstReply(cPath, helloFrame);
  }
  const hellos: number[] = [];
  const base: number[] = [];
  const floor: number[] = [];
  // Interleaved, so that noise on the shared machine hits all three alike.
  for (let i = 0; i < n; i++) {
    hellos.push(await firstReply(brokerPath, helloFrame));
    base.push(await firstReply(echoPath, helloFrame));
    floor.push(await firstReply(cPath, helloFrame));
  }
  const p50 = percentile(hellos, 50);
  const p99 = percentile(hellos, 99);
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
  });
  const echo = versus('net.echo.first_reply', base);
  emit({
    ...echo,
    target_ratio: HELLO_P50_SPEED_TARGET,
    target_p99_vs_baseline: HELLO_P99_TARGET,
    meets_target:
      percentile(base, 50) / p50 >= HELLO_P50_SPEED_TARGET &&
      p99 <= HELLO_P99_TARGET * percentile(base, 99),
  });
  emit({ ...versus('c.first_reply', floor), target: 'none: the C floor, on record' });
}

const HANDOFF_P50_VS_DIRECT_TARGET = 1.6;

async function connectBench(
  brokerPath: string,
  floor: { brokerPath: string; directPath: string },
): Promise<void> {
  const rounds = 1000;
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
  const direct = async (path = pipe) => {
    const t0 = performance.now();
    const socket = connect({ path });
    socket.write(request);
    await readFrame(socket);
    const elapsed = performance.now() - t0;
    socket.destroy();
    return elapsed;
  };
  const samples = {
    handoff: [] as number[],
    reconnect: [] as number[],
    handoffAfter: [] as number[],
    reconnectAfter: [] as number[],
    direct: [] as number[],
    bareHandoff: [] as number[],
    bareDirect: [] as number[],
  };
  for (let i = 0; i < rounds; i++) {
    samples.handoff.push((await viaBroker('echo', true)).elapsed);
    samples.reconnect.push((await viaBroker('echo-plain', true)).elapsed);
    samples.handoffAfter.push((await viaBroker('echo', false)).elapsed);
    samples.reconnectAfter.push((await viaBroker('echo-plain', false)).elapsed);
    samples.direct.push(await direct());
    samples.bareHandoff.push(await direct(floor.brokerPath));
    samples.bareDirect.push(await direct(floor.directPath));
  }
  const report = (
    bench: string,
    ours: number[],
    baseName: string,
    base: number[],
    extra: Record<string, unknown> = {},
  ) =>
    emit({
      ...line(bench, perSecond(percentile(ours, 50)), baseName, perSecond(percentile(base, 50))),
      p50_us: us(percentile(ours, 50)),
      p99_us: us(percentile(ours, 99)),
      baseline_p50_us: us(percentile(base, 50)),
      baseline_p99_us: us(percentile(base, 99)),
      samples: rounds,
      ...extra,
    });
  const beats = (a: number[], b: number[]) =>
    percentile(a, 50) < percentile(b, 50) && percentile(a, 99) < percentile(b, 99);
  report(
    'broker.connect_to_first_response.handoff',
    samples.handoff,
    'broker.connect_to_first_response.reconnect',
    samples.reconnect,
    { first_request: 'with_hello', meets_target: beats(samples.handoff, samples.reconnect) },
  );
  report(
    'broker.connect_to_first_response.handoff',
    samples.handoffAfter,
    'broker.connect_to_first_response.reconnect',
    samples.reconnectAfter,
    {
      first_request: 'after_connect',
      handoff_faster: beats(samples.handoffAfter, samples.reconnectAfter),
    },
  );
  // Issue 17: handoff p50 at most 1.6x direct (a handoff has one hop more:
  // ~1.5x is the structural floor), and its p99 below reconnect's.
  const vsDirect = percentile(samples.handoff, 50) / percentile(samples.direct, 50);
  // The floor: the same ratio for a Node handoff that does nothing but pass
  // the fd on. A target below it is out of reach for any Node broker here.
  const floorVsDirect = percentile(samples.bareHandoff, 50) / percentile(samples.bareDirect, 50);
  report(
    'node.connect_to_first_response.bare_handoff',
    samples.bareHandoff,
    'node.connect_to_first_response.bare_direct',
    samples.bareDirect,
    {
      p50_vs_baseline: Number(floorVsDirect.toFixed(2)),
      target: 'none: the floor of a handoff in Node (no Hello, no checks), on record',
    },
  );
  report(
    'broker.connect_to_first_response.handoff',
    samples.handoff,
    'daemon.connect_to_first_response.direct',
    samples.direct,
    {
      first_request: 'with_hello',
      p50_vs_baseline: Number(vsDirect.toFixed(2)),
      target_p50_vs_baseline: HANDOFF_P50_VS_DIRECT_TARGET,
      floor_p50_vs_direct: Number(floorVsDirect.toFixed(2)),
      p99_below_reconnect: percentile(samples.handoff, 99) < percentile(samples.reconnect, 99),
      meets_target:
        vsDirect <= HANDOFF_P50_VS_DIRECT_TARGET &&
        percentile(samples.handoff, 99) < percentile(samples.reconnect, 99),
    },
  );
}

async function bulkBench(brokerPath: string): Promise<void> {
  const payload = new Uint8Array(64 * 1024).fill(1);
  const requests = 2000;
  const { socket, negotiated } = await connectService('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 10_000,
  });
  const handedOff = new FrameClient(socket);
  const direct = await FrameClient.connect(negotiated.backendPipe);
  const ours: number[] = [];
  const base: number[] = [];
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
  // Alternating rounds, and the ratio as the median of each round's pair:
  // a burst of noise on this shared machine then skews one pair, not the verdict.
  const pairs: number[] = [];
  for (let r = 0; r < 9; r++) {
    ours.push(await run(handedOff));
    base.push(await run(direct));
    pairs.push(ours.at(-1)! / base.at(-1)!);
  }
  handedOff.close();
  direct.close();
  const o = summarize(ours);
  const b = summarize(base);
  const ratio = Number(summarize(pairs).opsPerSec.toFixed(2));
  emit({
    ...line('broker.bulk_after_handoff', o, 'daemon.bulk_direct', b),
    ratio,
    ratio_of: 'median of 9 alternating round pairs',
    unit: 'bytes_per_s',
    request_bytes: payload.length,
    target_ratio: 0.95,
    meets_target: ratio >= 0.95,
  });
}

const perSecond = (ms: number): Throughput => summarize([1000 / ms]);
