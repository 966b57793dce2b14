// `npm run bench -- backend-sdk`: the daemon-author SDK's hot paths, each
// against a baseline measured in the same run.
//   probe:   probeDaemon round trip (connect, challenge, answer, every
//            check incl. SO_PEERCRED and /proc start time; warm hash cache)
//            vs a bare connect + one framed echo on the same machine
//   client:  FrameClient pipelined requests to a serveDaemon process vs the
//            same bytes through a raw net echo process, same window
//   mux:     BackendEndpointMux.poll over a buffer of 10,000 small frames,
//            per frame, vs the same over 1,000 (linearity) and vs plain
//            tryDecodeFramed (the cost of classification)
//   slot_set: SlotSet (the collection of open connections the dispatcher
//            worker, serveDaemon and the broker keep) vs a plain Set, each
//            churning 300,000 stand-in connections with 256 open (after
//            300,000 untimed, so the old generation has filled) in fresh
//            processes, alternating; rate and GC pause per 1,000
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BackendEndpointMux, FrameClient, probeDaemon } from '@handoff/backend-sdk';
import { DaemonProcess, encodeFramed, requestFrame, tryDecodeFramed } from '@handoff/protocol';
import { childExecArgv } from './fdpass/paths.ts';
import { emit, line, percentile, summarize, type Throughput, timeSync } from './measure.ts';

const P = 0xf001;

export async function backendSdkSuite(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'handoff-bench-sdk-'));
  const daemonPath = join(dir, 'daemon.sock');
  const echoPath = join(dir, 'echo.sock');
  const child = spawn(
    process.execPath,
    [
      ...childExecArgv,
      join(import.meta.dirname, 'backend-sdk', 'servers.ts'),
      daemonPath,
      echoPath,
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    await once(child.stdout!, 'data');
    await probeBench(daemonPath, echoPath);
    await clientBench(daemonPath, echoPath);
    muxBench();
    await openSetBench();
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function probeBench(daemonPath: string, echoPath: string): Promise<void> {
  const rounds = 2000;
  for (let i = 0; i < 200; i++) await probeDaemon(daemonPath); // warm up
  const probes: number[] = [];
  const baseline: number[] = [];
  const frame = encodeFramed(
    requestFrame({ payloadProtocol: P, payload: new Uint8Array(32), requestId: 1n }),
  );
  for (let i = 0; i < rounds; i++) {
    probes.push((await probeDaemon(daemonPath)).roundTripMs);
    baseline.push(await connectEcho(echoPath, frame));
  }
  const p50 = percentile(probes, 50);
  const base50 = percentile(baseline, 50);
  emit({
    ...line(
      'backend_sdk.probe.round_trip',
      perSecond(p50),
      'net.connect_echo.round_trip',
      perSecond(base50),
    ),
    p50_ms: round(p50),
    p99_ms: round(percentile(probes, 99)),
    baseline_p50_ms: round(base50),
    baseline_p99_ms: round(percentile(baseline, 99)),
    samples: rounds,
    target_p50_ms: 1,
    meets_target: p50 <= 1,
  });
}

/** Connect, write one frame, wait for it to come back, close: milliseconds. */
async function connectEcho(path: string, bytes: Uint8Array): Promise<number> {
  const t0 = performance.now();
  const socket = connect({ path });
  await once(socket, 'connect');
  socket.write(bytes);
  let got = 0;
  while (got < bytes.length) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    got += chunk.length;
  }
  const elapsed = performance.now() - t0;
  socket.destroy();
  return elapsed;
}

async function clientBench(daemonPath: string, echoPath: string): Promise<void> {
  const requests = 50_000;
  const window = 256;
  const payload = new Uint8Array(64).fill(7);
  const ours: number[] = [];
  const base: number[] = [];
  const client = await FrameClient.connect(daemonPath);
  const echo = connect({ path: echoPath });
  await once(echo, 'connect');
  try {
    for (let round = 0; round < 5; round++) {
      ours.push(await pipelined(client, requests, window, payload));
      base.push(await rawEcho(echo, requests, window, payload));
    }
  } finally {
    client.close();
    echo.destroy();
  }
  const oursT = summarize(ours);
  const baseT = summarize(base);
  emit({
    ...line('backend_sdk.frame_client.pipelined', oursT, 'net.echo.same_bytes', baseT),
    requests_per_round: requests,
    window,
    payload_bytes: payload.length,
    target_ratio: 0.5,
    meets_target: oursT.opsPerSec / baseT.opsPerSec >= 0.5,
  });
}

/** Requests/s with `window` requests kept in flight. */
async function pipelined(
  client: FrameClient,
  total: number,
  window: number,
  payload: Uint8Array,
): Promise<number> {
  const t0 = performance.now();
  let sent = 0;
  const worker = async () => {
    while (sent < total) {
      sent++;
      await client.request(P, payload);
    }
  };
  await Promise.all(Array.from({ length: window }, worker));
  return (total * 1000) / (performance.now() - t0);
}

/** The same frames through a byte echo: frames/s, `window` frames outstanding. */
async function rawEcho(
  socket: Socket,
  total: number,
  window: number,
  payload: Uint8Array,
): Promise<number> {
  const frame = encodeFramed(requestFrame({ payloadProtocol: P, payload, requestId: 123_456n }));
  const size = frame.length;
  const t0 = performance.now();
  let sent = 0;
  let received = 0;
  await new Promise<void>((resolve) => {
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      const done = Math.floor(received / size);
      while (sent < total && sent - done < window) {
        socket.write(frame);
        sent++;
      }
      if (done >= total) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
    while (sent < Math.min(window, total)) {
      socket.write(frame);
      sent++;
    }
  });
  return (total * 1000) / (performance.now() - t0);
}

function muxBench(): void {
  const mux = new BackendEndpointMux({
    daemon: {
      process: DaemonProcess.create({
        pid: 1,
        exePath: '/x',
        ipcEndpoint: { namespaceId: '', path: '/x' },
        exeHashAlgorithm: 'blake3',
        exeHash: new Uint8Array(32),
      }),
      legacyExeSha256: new Uint8Array(32),
    },
    servedPayloadProtocols: [P],
  });
  const buffer = (count: number) => {
    const one = encodeFramed(
      requestFrame({ payloadProtocol: P, payload: new Uint8Array(32), requestId: 9n }),
    );
    const out = new Uint8Array(one.length * count);
    for (let i = 0; i < count; i++) out.set(one, i * one.length);
    return out;
  };
  const drain = (buf: Uint8Array, poll: (b: Uint8Array) => number) => {
    let rest = buf;
    while (rest.length > 0) rest = rest.subarray(poll(rest));
  };
  const viaMux = (b: Uint8Array) => {
    const v = mux.poll(b);
    return v.kind === 'Payload' || v.kind === 'ProbeAnswered' ? v.consumed : b.length;
  };
  const viaDecode = (b: Uint8Array) => tryDecodeFramed(b)?.consumed ?? b.length;
  const big = buffer(10_000);
  const small = buffer(1_000);
  const per10k = timeSync(() => drain(big, viaMux), { opsPerCall: 10_000 });
  const per1k = timeSync(() => drain(small, viaMux), { opsPerCall: 1_000 });
  const decode10k = timeSync(() => drain(big, viaDecode), { opsPerCall: 10_000 });
  emit({
    ...line('backend_sdk.mux.poll_10k_frames', per10k, 'mux.poll_1k_frames', per1k),
    linear: per10k.opsPerSec / per1k.opsPerSec > 0.8,
  });
  emit(
    line('backend_sdk.mux.poll_10k_frames', per10k, 'protocol.try_decode_framed_10k', decode10k),
  );
}

const round = (n: number) => Number(n.toFixed(3));
const perSecond = (ms: number): Throughput => summarize([1000 / ms]);

/**
 * SlotSet vs Set under connection churn. Each run is its own process (a
 * fresh heap: neither side inherits the other's old generation); pairs
 * alternate which goes first.
 */
async function openSetBench(): Promise<void> {
  const run = promisify(execFile);
  const script = join(import.meta.dirname, 'backend-sdk', 'slot-set-churn.mjs');
  const LIVE = 256;
  const TOTAL = 300_000;
  const PAIRS = 3;
  type Churn = { ops_per_s: number; gc_ms: number };
  const churn = async (kind: 'set' | 'slots'): Promise<Churn> => {
    const { stdout } = await run(process.execPath, [script, kind, String(LIVE), String(TOTAL)]);
    return JSON.parse(stdout) as Churn;
  };
  const runs = { slots: [] as Churn[], set: [] as Churn[] };
  for (let i = 0; i < PAIRS; i++) {
    const order = i % 2 === 0 ? (['slots', 'set'] as const) : (['set', 'slots'] as const);
    for (const kind of order) runs[kind].push(await churn(kind));
  }
  const gcPer1k = (runs: Churn[]) =>
    round(
      percentile(
        runs.map((r) => (r.gc_ms * 1000) / TOTAL),
        50,
      ),
    );
  emit(
    line(
      'backend_sdk.slot_set.churn',
      summarize(runs.slots.map((r) => r.ops_per_s)),
      'js.set.churn',
      summarize(runs.set.map((r) => r.ops_per_s)),
      {
        unit: 'connections_per_s',
        open: LIVE,
        gc_ms_per_1k: gcPer1k(runs.slots),
        baseline_gc_ms_per_1k: gcPer1k(runs.set),
      },
    ),
  );
}
