// connectService against brokers that misbehave at every step: each fault
// must come back as a ConnectServiceError, in a client process that stays
// alive and leaks nothing. The client runs in a child process, so an
// exception thrown asynchronously (an 'error' with no listener) shows as
// what it is for a user: the process dies.
import { type ChildProcess, spawn } from 'node:child_process';
import { linkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  ErrorCode,
  encodeFramed,
  FrameKind,
  HANDOFF_PAYLOAD_PROTOCOL,
  HandoffAck,
  HelloReply,
  MAX_FRAME_BYTES,
  Negotiated,
  Refused,
  responseFrame,
  tryDecodeFramed,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { fixtures, tempDir, tsxArgs } from './harness.js';

const tmp = tempDir('client-faults');
const servers: Server[] = [];
const peers = new Set<Socket>();
const pythons: ChildProcess[] = [];
afterEach(async () => {
  for (const child of pythons.splice(0)) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }
  for (const s of peers) s.destroy();
  peers.clear();
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});
afterAll(() => tmp.remove());

let serial = 0;
/** Enough bytes after the Hello that a peer who reads one chunk leaves some unread. */
const BIG = 1024 * 1024;
const CONNECTION_ID = 7n;
const TOKEN = new Uint8Array(16).fill(0xab);
/** The initialData the child sends: byte i is i % 251. */
const pattern = (length: number) => Buffer.from(Array.from({ length }, (_, i) => i % 251));

function listen(onConnection: (socket: Socket) => void): Promise<string> {
  const path = tmp.path(`s${serial++}.sock`);
  const server = createServer((socket) => {
    peers.add(socket);
    socket.on('close', () => peers.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(path, () => resolve(path)));
}

/**
 * A fake broker: reads until a whole Hello frame is in, then hands the
 * socket to `after` — still inside the 'data' callback and paused, so what
 * the client sent after the Hello stays unread.
 */
function fakeBroker(after: (socket: Socket, afterHello: Buffer) => void): Promise<string> {
  return listen((socket) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const hello = tryDecodeFramed(buffered);
      if (!hello) return;
      socket.off('data', onData);
      socket.pause();
      after(socket, buffered.subarray(hello.consumed));
    };
    socket.on('data', onData);
  });
}

/**
 * A fake broker that reads exactly the Hello, sends `reply`, and closes with
 * the client's later bytes unread: the client sees `reply`, then ECONNRESET.
 * Node cannot stop a read at a frame boundary, so this one is Python.
 */
async function exactHelloBroker(
  reply: Uint8Array = new Uint8Array(0),
): Promise<{ path: string; served: () => number }> {
  const path = tmp.path(`py${serial++}.sock`);
  const child = spawn(
    'python3',
    [join(fixtures, 'exact-hello-broker.py'), path, Buffer.from(reply).toString('hex')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  pythons.push(child);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.startsWith('ready\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the fake broker exited with ${code}`)));
  });
  return { path, served: () => out.split('\n').filter((l) => l === 'served').length };
}

/** A fake daemon socket: records what each connection sent, answers `ping\n` with `pong\n`. */
async function fakeDaemon(): Promise<{ path: string; received: Buffer[] }> {
  const received: Buffer[] = [];
  const path = await listen((socket) => {
    const index = received.push(Buffer.alloc(0)) - 1;
    socket.on('data', (chunk: Buffer) => {
      received[index] = Buffer.concat([received[index]!, chunk]);
      if (received[index]!.toString('latin1').endsWith('ping\n')) socket.write('pong\n');
    });
  });
  return { path, received };
}

/** A socket file nobody listens on: connecting to it is ECONNREFUSED. */
async function staleSocket(): Promise<string> {
  const live = tmp.path(`live${serial++}.sock`);
  const stale = tmp.path(`stale${serial++}.sock`);
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(live, resolve));
  linkSync(live, stale);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return stale;
}

const reply = (result: HelloReply['result']) =>
  encodeFramed(
    responseFrame(
      { payloadProtocol: CONTROL_PAYLOAD_PROTOCOL, requestId: 1n, traceparent: '', tracestate: '' },
      { payload: HelloReply.encode({ result }) },
    ),
  );
const negotiated = (backendPipe: string, handoff: boolean) =>
  reply({
    case: 'negotiated',
    value: Negotiated.create({
      negotiatedProtocol: 1,
      backendPipe,
      ...(handoff ? { handlePassedToken: TOKEN, serverCapabilities: CAP_HANDLE_PASSING } : {}),
      connectionId: CONNECTION_ID,
    }),
  });
const relay = (payload: Uint8Array) =>
  encodeFramed({
    envelopeVersion: 1,
    kind: FrameKind.EVENT,
    payloadProtocol: HANDOFF_PAYLOAD_PROTOCOL,
    requestId: CONNECTION_ID,
    payload,
  });
const ack = (accepted: boolean) =>
  relay(
    HandoffAck.encode(HandoffAck.create({ token: TOKEN, accepted, correlationId: CONNECTION_ID })),
  );

/** Closes after the write is out, with whatever the client sent after the Hello unread. */
function writeThenClose(socket: Socket, bytes: Uint8Array): void {
  socket.write(bytes, () => socket.destroy());
}

interface ChildResult {
  exit: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  report: Record<string, unknown> & {
    outcome?: 'resolved' | 'rejected';
    fds?: { before: number; after: number; leaked: string[] };
    handles?: { before: string; after: string };
  };
}

async function runClient(scenario: {
  brokerPath: string;
  timeoutMs?: number;
  initialDataBytes?: number;
  abortAfterMs?: number;
  exchange?: boolean;
  readWith?: 'data' | 'iterator';
}): Promise<ChildResult> {
  const child = spawn(
    process.execPath,
    [
      ...tsxArgs,
      join(fixtures, 'connect-service-child.ts'),
      JSON.stringify({ timeoutMs: 10_000, initialDataBytes: 0, ...scenario }),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // The child must leave on its own: a leaked timer or socket would keep it.
  const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  const [exit, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('close', (code, sig) => resolve([code, sig])),
  );
  clearTimeout(killer);
  const line = stdout.trim().split('\n').pop() ?? '';
  return { exit, signal, stderr, report: line.startsWith('{') ? JSON.parse(line) : {} };
}

/** The client process lived, exited by itself, and ended with the fds and handles it started with. */
function expectAliveAndClean(result: ChildResult): void {
  expect(
    { exit: result.exit, signal: result.signal, stderr: result.stderr.slice(0, 2000) },
    'the client process died',
  ).toEqual({ exit: 0, signal: null, stderr: '' });
  expect(result.report.fds?.leaked, 'fds leaked').toEqual([]);
  expect(result.report.handles?.after, 'handles leaked').toBe(result.report.handles?.before);
  expect(result.report.signalListeners, 'abort listeners left on the signal').toBe(0);
}

function expectRejected(result: ChildResult, code: string, errno?: RegExp): void {
  expectAliveAndClean(result);
  const report = JSON.stringify(result.report);
  expect(result.report, report).toMatchObject({
    outcome: 'rejected',
    name: 'ConnectServiceError',
    code,
  });
  if (errno) expect(String(result.report.errno), report).toMatch(errno);
}

const T = 90_000;

describe('connectService: the broker fails before replying', () => {
  it(
    'a broker that resets the connection mid-Hello is a CLOSED rejection, not an uncaught ECONNRESET that kills the client',
    async () => {
      const broker = await exactHelloBroker();
      const result = await runClient({ brokerPath: broker.path, initialDataBytes: 1000 });
      expectRejected(result, 'CLOSED', /^ECONNRESET$/);
      expect(broker.served()).toBe(2); // closed before a reply: asked once more
    },
    T,
  );

  it(
    'a broker that closes without replying is CLOSED',
    async () => {
      const brokerPath = await fakeBroker((socket) => socket.end());
      expectRejected(await runClient({ brokerPath }), 'CLOSED');
    },
    T,
  );

  it(
    'a reply that is not a frame is PROTOCOL',
    async () => {
      const brokerPath = await fakeBroker((socket) =>
        socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'),
      );
      expectRejected(await runClient({ brokerPath }), 'PROTOCOL');
    },
    T,
  );

  it(
    'a reply whose header announces more than the frame cap is PROTOCOL at once, its body never awaited',
    async () => {
      const header = Buffer.alloc(5);
      header[0] = 1;
      header.writeUInt32LE(MAX_FRAME_BYTES + 1, 1);
      const brokerPath = await fakeBroker((socket) => socket.write(header));
      expectRejected(await runClient({ brokerPath, timeoutMs: 30_000 }), 'PROTOCOL');
    },
    T,
  );

  it(
    'a frame that is not a HelloReply is PROTOCOL',
    async () => {
      const brokerPath = await fakeBroker((socket) =>
        socket.end(
          encodeFramed({ kind: FrameKind.RESPONSE, requestId: 1n, payload: Buffer.from([0xff]) }),
        ),
      );
      expectRejected(await runClient({ brokerPath }), 'PROTOCOL');
    },
    T,
  );

  it(
    'a broker that never replies is TIMEOUT at the deadline',
    async () => {
      const brokerPath = await fakeBroker(() => {});
      expectRejected(await runClient({ brokerPath, timeoutMs: 300 }), 'TIMEOUT');
    },
    T,
  );

  it(
    "the caller's AbortSignal is ABORTED and leaves no listener on it",
    async () => {
      const brokerPath = await fakeBroker(() => {});
      expectRejected(await runClient({ brokerPath, abortAfterMs: 100 }), 'ABORTED');
    },
    T,
  );

  it(
    'no socket file is CONNECT with errno ENOENT',
    async () => {
      const result = await runClient({ brokerPath: tmp.path('missing.sock') });
      expectRejected(result, 'CONNECT', /^ENOENT$/);
    },
    T,
  );

  it(
    'a socket file nobody listens on is CONNECT with errno ECONNREFUSED',
    async () => {
      const result = await runClient({ brokerPath: await staleSocket() });
      expectRejected(result, 'CONNECT', /^ECONNREFUSED$/);
    },
    T,
  );
});

describe('connectService: a reply followed by a reset', () => {
  it(
    "a Refused followed by a reset (initialData unread) is REFUSED with the broker's code, not CLOSED",
    async () => {
      const broker = await exactHelloBroker(
        reply({
          case: 'refused',
          value: Refused.create({
            code: ErrorCode.SERVICE_UNKNOWN,
            reason: 'no such service',
            retryAfterMs: 250n,
          }),
        }),
      );
      const result = await runClient({ brokerPath: broker.path, initialDataBytes: BIG });
      expectRejected(result, 'REFUSED');
      expect(result.report.refusal).toMatchObject({
        code: ErrorCode.SERVICE_UNKNOWN,
        retryAfterMs: 250,
      });
    },
    T,
  );
});

describe('connectService: the reconnect route', () => {
  it(
    'a reconnect reply followed by a reset (initialData left unread by the broker) is still used, and the daemon gets initialData exactly once',
    async () => {
      const daemon = await fakeDaemon();
      const broker = await exactHelloBroker(negotiated(daemon.path, false));
      const result = await runClient({
        brokerPath: broker.path,
        initialDataBytes: BIG,
        exchange: true,
      });
      expect(broker.served()).toBe(1);
      expectAliveAndClean(result);
      expect(result.report).toMatchObject({ outcome: 'resolved', route: 'reconnect' });
      expect(result.report.listeners).toMatchObject({ error: 0, data: 0 });
      expect(daemon.received).toHaveLength(1);
      expect(daemon.received[0]!.equals(Buffer.concat([pattern(BIG), Buffer.from('ping\n')]))).toBe(
        true,
      );
    },
    T,
  );

  it(
    'a backend_pipe that does not exist is CONNECT (after one more try)',
    async () => {
      const broker = await exactHelloBroker(negotiated(tmp.path('gone.sock'), false));
      const result = await runClient({ brokerPath: broker.path, initialDataBytes: BIG });
      expectRejected(result, 'CONNECT', /^ENOENT$/);
      expect(broker.served()).toBe(2);
    },
    T,
  );

  it(
    'an empty backend_pipe is PROTOCOL, not a TCP connect to localhost',
    async () => {
      const brokerPath = await fakeBroker((socket) =>
        writeThenClose(socket, negotiated('', false)),
      );
      expectRejected(await runClient({ brokerPath }), 'PROTOCOL');
    },
    T,
  );

  it(
    'a backend_pipe nobody listens on is CONNECT with ECONNREFUSED',
    async () => {
      const stale = await staleSocket();
      const brokerPath = await fakeBroker((socket) =>
        writeThenClose(socket, negotiated(stale, false)),
      );
      expectRejected(await runClient({ brokerPath }), 'CONNECT', /^ECONNREFUSED$/);
    },
    T,
  );
});

describe('connectService: waiting for the handoff relay', () => {
  it(
    'a reset while waiting for the relay is CLOSED, not an uncaught ECONNRESET',
    async () => {
      const broker = await exactHelloBroker(negotiated('/nonexistent', true));
      const result = await runClient({ brokerPath: broker.path, initialDataBytes: BIG });
      // When the hang-up comes in the same poll as the reply, libuv reports
      // EOF instead of reading the ECONNRESET: no errno then.
      expectRejected(result, 'CLOSED', /^(ECONNRESET|undefined)$/);
      expect(broker.served()).toBe(2);
    },
    T,
  );

  it(
    'a relay whose HandoffAck cannot be decoded is PROTOCOL',
    async () => {
      const brokerPath = await fakeBroker((socket) =>
        socket.write(
          Buffer.concat([negotiated('/nonexistent', true), relay(Buffer.from([0xff, 0xff]))]),
        ),
      );
      expectRejected(await runClient({ brokerPath }), 'PROTOCOL');
    },
    T,
  );

  it(
    'a refused handoff falls back to backend_pipe and sends initialData there once',
    async () => {
      const daemon = await fakeDaemon();
      const broker = await exactHelloBroker(
        Buffer.concat([negotiated(daemon.path, true), ack(false)]),
      );
      const result = await runClient({
        brokerPath: broker.path,
        initialDataBytes: BIG,
        exchange: true,
      });
      expectAliveAndClean(result);
      expect(result.report).toMatchObject({ outcome: 'resolved', route: 'reconnect' });
      expect(daemon.received).toHaveLength(1);
      expect(daemon.received[0]!.equals(Buffer.concat([pattern(BIG), Buffer.from('ping\n')]))).toBe(
        true,
      );
    },
    T,
  );

  it.each(['data', 'iterator'] as const)(
    'after a handoff the socket is handed back with no listener of the library on it, early answers first to a reader using %s, and every initialData byte reaches the daemon once, in order',
    async (readWith) => {
      const early = encodeFramed({
        kind: FrameKind.RESPONSE,
        requestId: 42n,
        payload: Buffer.from('early'),
      });
      let daemonGot: Buffer = Buffer.alloc(0);
      const brokerPath = await fakeBroker((socket, afterHello) => {
        // Playing the daemon too: it answers before the relay, and after it.
        socket.write(Buffer.concat([negotiated('/nonexistent', true), early, ack(true)]));
        daemonGot = afterHello;
        socket.on('data', (chunk: Buffer) => {
          daemonGot = Buffer.concat([daemonGot, chunk]);
          if (daemonGot.subarray(-5).toString() === 'ping\n') socket.write('pong\n');
        });
        socket.resume();
      });
      const result = await runClient({
        brokerPath,
        initialDataBytes: BIG,
        exchange: true,
        readWith,
      });
      expectAliveAndClean(result);
      expect(result.report).toMatchObject({
        outcome: 'resolved',
        route: 'handoff',
        listeners: { error: 0, data: 0, close: 0, readable: 0 },
        socketErrors: [],
      });
      const received = Buffer.from(result.report.received as string, 'base64');
      expect(received.equals(Buffer.concat([early, Buffer.from('pong\n')]))).toBe(true);
      expect(daemonGot.equals(Buffer.concat([pattern(BIG), Buffer.from('ping\n')]))).toBe(true);
    },
    T,
  );
});
