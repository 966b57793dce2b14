// The client of the instructions suite: sequential connects, each a fresh
// connection → Hello and one framed request → the response → close. It
// warms up, says so, and measures only when told, so the suite can zero the
// instruction counters of whichever process it counts in between.
//   instructions-client.mjs <handoff|wire|hello> <socket> <warmup> <connects> [go-file]
// handoff: connectService('echo', { initialData: request }) through the broker
// wire:    a hand-written client: the same bytes in one write, three frames
//          read (Negotiated, the relayed ack, the response)
// hello:   a Hello for echo-plain (the reconnect route) and its one reply
// connect-plain, connect-bare: a bare net.connect to an echo (echo-process.mjs),
//          one byte each way, closed; options { path } or { __proto__: null, path }
// Prints "warm" after <warmup> connects; with a go-file, waits for it to
// exist, runs <connects>, prints "done" and waits to be stopped; without,
// runs <connects> at once and exits. Not a line on stdin: a pipe as stdin
// (or stdout) made every later connect cost about twice the instructions
// (V8 kept recompiling the stream code it shares with the sockets); nor a
// signal: under valgrind, SIGUSR2 killed the process.
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { connectPath, echoRequest, helloBytes, readFrames } from './probe-wire.mjs';

// Handoffs are what is counted: no endpoint cache (set before the client loads).
process.env.HANDOFF_ENDPOINT_CACHE = 'off';
const { connectService } = await import('@handoff/broker/client');

const [mode, path, warmupArg, connectsArg, goFile] = process.argv.slice(2);
const helloAndRequest = Buffer.concat([helloBytes('echo', { handoff: true }), echoRequest]);
const helloAlone = helloBytes('echo-plain');

async function handoff() {
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath: path,
    // A daemon started under valgrind takes many seconds to attach.
    timeoutMs: 300_000,
    initialData: echoRequest,
  });
  try {
    // readFrames rejects on close; an error is followed by one.
    socket.on('error', () => {});
    await readFrames(socket, 1);
  } finally {
    socket.destroy();
  }
}

/**
 * One connection: `bytes` written, `frames` whole frames read, closed. The
 * options have no prototype, as connectService's (probe-wire.mjs's
 * connectPath): the floor's socket costs what ours does to make.
 */
async function exchange(bytes, frames) {
  const socket = connectPath(path);
  try {
    // readFrames rejects on close; an error is followed by one.
    socket.on('error', () => {});
    socket.write(bytes);
    await readFrames(socket, frames);
  } finally {
    socket.destroy();
  }
}

/** A bare connect with `options` (made fresh for each), one byte to the echo and back, closed. */
async function bare(options) {
  const socket = connect(options);
  try {
    socket.on('error', () => {});
    socket.write(ONE);
    await once(socket, 'data');
  } finally {
    socket.destroy();
  }
}
const ONE = Buffer.from([1]);

const modes = {
  handoff,
  'connect-plain': () => bare({ path }),
  'connect-bare': () => bare({ __proto__: null, path }),
  wire: () => exchange(helloAndRequest, 3),
  hello: () => exchange(helloAlone, 1),
};
const one = modes[mode];
if (one === undefined) throw new Error(`instructions-client.mjs: no mode ${mode}`);
// BENCH_INSTRUCTIONS_LOOPS: connects in flight at once (default 1, sequential).
const loops = Number(process.env.BENCH_INSTRUCTIONS_LOOPS ?? 1);
async function run(n) {
  let left = n;
  const loop = async () => {
    while (left > 0) {
      left--;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.min(loops, n) }, loop));
}

await run(Number(warmupArg));
process.stdout.write('warm\n');
if (goFile) while (!existsSync(goFile)) await new Promise((r) => setTimeout(r, 50));
await run(Number(connectsArg));
process.stdout.write('done\n');
// Until the suite has read the counters and stops it (SIGTERM).
if (goFile) setInterval(() => {}, 60_000);
