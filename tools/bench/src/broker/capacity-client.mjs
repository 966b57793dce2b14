// The client side of broker.handoff.throughput, in its own process so that
// ours and the baseline share the same client code and the same CPU budget:
// N loops, each a fresh connection → one framed request → one framed
// response → close, repeated; prints one JSON result line on stdout.
//   capacity-client.mjs <handoff|bare|hello|wire> <socket> <loops> <warmupMs> <measureMs>
// handoff: connectService('echo', { initialData: request }) through the broker
// bare:    net.connect straight to <socket>, write the same request
// hello:   net.connect to the Hello-reading floor (bare-handoff.mjs
//          hello-broker), write a Hello and the request in one write, read two
//          frames
// wire:    the same to the wire floor (bare-handoff.mjs wire-broker), reading
//          three frames: Negotiated, the relayed ack and the response — what
//          connectService reads on a handoff
// The warm-up lasts at least warmupMs, then until this process's JIT has
// settled (see settle()): every client is measured in its steady state,
// whatever the size of the code it runs.
import { encodeFramed, requestFrame, tryDecodeFramed } from '@handoff/protocol';
import { helpersSettled, SETTLE_WINDOW_MS, threadCpuUs } from '../thread-cpu.mjs';
import { connectPath, helloBytes, readFrames } from './probe-wire.mjs';

// The endpoint cache would skip the broker on repeat connects: this case
// measures handoffs (set before the client module is loaded).
process.env.HANDOFF_ENDPOINT_CACHE = 'off';
// CAPACITY_CLIENT_LIB=<a built client entry, e.g. a copy of an older
// dist/client/index.js>: that connectService instead, for A/B runs of the client.
const { connectService } = await import(
  process.env.CAPACITY_CLIENT_LIB ?? '@handoff/broker/client'
);

const [mode, path, loopsArg, warmupArg, measureArg] = process.argv.slice(2);
const loops = Number(loopsArg);
const warmupMs = Number(warmupArg);
const measureMs = Number(measureArg);
const request = encodeFramed(
  requestFrame({ payloadProtocol: 0xf001, requestId: 1n, payload: new Uint8Array(32) }),
);
const helloAndRequest = Buffer.concat([helloBytes('echo', { handoff: true }), request]);

/** Resolves once one whole frame has arrived on `socket`. */
function readFrame(socket) {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (tryDecodeFramed(buffered)) {
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onClose);
        resolve();
      }
    };
    const onClose = (err) =>
      reject(err instanceof Error ? err : new Error('closed before a response'));
    socket.on('data', onData);
    socket.on('close', onClose);
    socket.on('error', onClose);
    socket.resume();
  });
}

async function once() {
  if (mode === 'handoff') {
    const { socket } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: path,
      timeoutMs: 10_000,
      initialData: request,
    });
    try {
      await readFrame(socket);
    } finally {
      socket.destroy();
    }
    return;
  }
  // Made as connectService makes its connection: a plain `{ path }` costs
  // about twice the instructions per connect (node.net_connect.instructions),
  // which the baseline's and the floors' clients would burn on the two
  // cores the servers share.
  const socket = connectPath(path);
  try {
    if (mode === 'hello' || mode === 'wire') {
      // readFrames rejects on close; an error is followed by one.
      socket.on('error', () => {});
      socket.write(helloAndRequest);
      await readFrames(socket, mode === 'wire' ? 3 : 2);
    } else {
      socket.write(request);
      await readFrame(socket);
    }
  } finally {
    socket.destroy();
  }
}

let phase = 'warmup';
let done = 0;
const latencies = [];
const errors = {};
let stop = false;
async function loop() {
  while (!stop) {
    const t0 = performance.now();
    try {
      await once();
      if (phase === 'measure') {
        done++;
        latencies.push(performance.now() - t0);
      }
    } catch (error) {
      if (phase === 'measure') {
        const code = error?.code ?? error?.name ?? 'Error';
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  }
}
/**
 * A fresh Node process spends its first seconds compiling: V8's optimizing
 * compiler works on helper threads, on the same two cores as the servers
 * under test, for longer the more code the client runs (connectService
 * more than a bare connect). Measured from a fixed 500 ms, that cost fell
 * mostly on our side: 0.36 of the baseline against 0.55 after a 3 s
 * warm-up (RESULTS.md, 2026-12-05 10:55). So the warm-up goes on until the
 * helpers are quiet over the last SETTLE_WINDOW_MS (thread-cpu.mjs, the rule
 * the suites' warm-ups use too), or until SETTLE_CAP_MS more have passed;
 * `settled` says which.
 */
const SETTLE_CAP_MS = 8000;
async function settle() {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  await sleep(Math.max(0, warmupMs - SETTLE_WINDOW_MS));
  const capAt = performance.now() + SETTLE_CAP_MS;
  for (;;) {
    const before = threadCpuUs(process.pid);
    await sleep(SETTLE_WINDOW_MS);
    if (helpersSettled(before, threadCpuUs(process.pid))) return true;
    if (performance.now() >= capAt) return false;
  }
}

const running = Array.from({ length: loops }, loop);
const warmupStarted = performance.now();
const settled = await settle();
const warmedMs = performance.now() - warmupStarted;
phase = 'measure';
// The bench samples the servers' CPU from this line to the exit.
process.stdout.write('measuring\n');
const threads0 = threadCpuUs(process.pid);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, measureMs));
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const threads1 = threadCpuUs(process.pid);
phase = 'drain';
stop = true;
await Promise.all(running);
latencies.sort((a, b) => a - b);
const pct = (p) =>
  latencies.length === 0
    ? null
    : latencies[
        Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))
      ];
process.stdout.write(
  `${JSON.stringify({
    done,
    elapsed_ms: elapsedMs,
    per_s: (done * 1000) / elapsedMs,
    errors,
    client_cpu_us: cpu.user + cpu.system,
    client_helper_cpu_us: threads1.helpers - threads0.helpers,
    warmup_ms: Math.round(warmedMs),
    settled,
    latencies,
    p50_ms: pct(50),
    p99_ms: pct(99),
  })}\n`,
);
