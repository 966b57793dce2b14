// Every byte a client writes before a handoff reaches the daemon, in order,
// exactly once (DESIGN §6) — whatever the broker had read with the Hello and
// whatever still sat in the socket's buffers when the fd moved. Regression
// for issue 12, case 1: first requests over ~64 KiB sent with the Hello were
// lost in a handoff (the broker read past the Hello and dropped the excess).
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  CAP_HANDLE_PASSING,
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  Hello,
  HelloReply,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  requestFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../src/broker-api.js';
import { startBroker } from '../src/broker-launch.js';
import { connectService } from '../src/client/connect-service.js';
import { echoService, openFds, str, tempDir } from './harness.js';

const P = 0xf001;
const KiB = 1024;
const MiB = 1024 * KiB;
const brokers: Broker[] = [];
const dirs: ReturnType<typeof tempDir>[] = [];
afterEach(async () => {
  await Promise.all(brokers.splice(0).map((b) => b.close({ deadlineMs: 1000 })));
});
afterAll(() => {
  for (const d of dirs) d.remove();
});

async function broker(handoff: boolean, flags: string[] = []): Promise<Broker> {
  const tmp = tempDir('first-request');
  dirs.push(tmp);
  const b = await startBroker({
    socketPath: tmp.path('run/broker.sock'),
    services: [echoService('digest', { handoff }, ['--digest', ...flags])],
    watchConfig: false,
  });
  brokers.push(b);
  return b;
}

/**
 * Our fd count once it stops moving: the broker lets go of its copy of a
 * handed-off fd only when the daemon's ack arrives, after the client has
 * already heard the relay from the daemon.
 */
async function settledFds(): Promise<number> {
  let last = openFds();
  for (;;) {
    await new Promise((r) => setTimeout(r, 150));
    const now = openFds();
    if (now === last) return now;
    last = now;
  }
}

interface Sent {
  id: bigint;
  digest: string;
}

/** Frames with ids 1..n and random payloads of `payloadBytes`, as one byte stream. */
function frameStream(count: number, payloadBytes: number): { bytes: Buffer; sent: Sent[] } {
  const sent: Sent[] = [];
  const parts: Uint8Array[] = [];
  for (let i = 1; i <= count; i++) {
    const payload = randomBytes(payloadBytes);
    const id = BigInt(i);
    sent.push({ id, digest: digestOf(payload) });
    parts.push(encodeFramed(requestFrame({ payloadProtocol: P, requestId: id, payload })));
  }
  return { bytes: Buffer.concat(parts), sent };
}

function digestOf(payload: Uint8Array): string {
  return `${payload.length}:${createHash('sha256').update(payload).digest('hex')}`;
}

/** One request whose frame body is exactly the 16 MiB cap. */
function frameAtTheCap(): { bytes: Buffer; sent: Sent[] } {
  const probe = (n: number) =>
    encodeFramed(requestFrame({ payloadProtocol: P, requestId: 1n, payload: new Uint8Array(n) }));
  const guess = MAX_FRAME_BYTES - 64;
  const payload = randomBytes(guess + (MAX_FRAME_BYTES + 5 - probe(guess).length));
  const bytes = Buffer.from(
    encodeFramed(requestFrame({ payloadProtocol: P, requestId: 1n, payload })),
  );
  expect(bytes.readUInt32LE(1)).toBe(MAX_FRAME_BYTES);
  return { bytes, sent: [{ id: 1n, digest: digestOf(payload) }] };
}

/** Reads answers until every id is answered (or the socket closes), in arrival order. */
function answers(socket: Socket, expected: number, timeoutMs = 60_000): Promise<Frame[]> {
  const decoder = new FrameDecoder();
  const got: Frame[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${got.length} of ${expected} answers within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      resolve(got);
    };
    const onData = (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) got.push(frame);
      if (got.length >= expected) done();
    };
    socket.on('data', onData);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(new Error(`${why} after ${got.length} of ${expected} answers`));
    };
    socket.on('error', (error) => fail(`socket error ${error.message}`));
    socket.once('close', () => fail('closed'));
    socket.resume();
  });
}

function expectAnsweredInOrder(got: Frame[], sent: Sent[]): void {
  expect(got.map((f) => f.requestId)).toEqual(sent.map((s) => s.id));
  for (const [i, frame] of got.entries()) {
    expect(frame.kind).toBe(FrameKind.RESPONSE);
    expect(str(frame.payload)).toBe(sent[i]!.digest);
  }
}

describe.each([
  ['handoff', true],
  ['reconnect', false],
] as const)('bytes written with the Hello, %s route', (route, handoff) => {
  // `split` bytes of the stream go with the Hello (initialData); the rest is
  // written on the returned socket. Split points cut frames anywhere.
  it.each([
    ['0 B', 0],
    ['1 B', 1],
    ['64 KiB - 1', 64 * KiB - 1],
    ['64 KiB + 1', 64 * KiB + 1],
    ['1 MiB', MiB],
  ])('a first request of %s reaches the daemon in order, exactly once', async (_, split) => {
    const b = await broker(handoff);
    const { bytes, sent } = frameStream(Math.ceil((split + 100 * KiB) / (40 * KiB)), 40 * KiB);
    // The first connect spawns the daemon (pipes, control channel): count
    // our fds once it runs.
    const warm = await connectService('digest', { version: '1.0.0', brokerPath: b.socketPath });
    warm.socket.destroy();
    await once(warm.socket, 'close');
    const fdsBefore = await settledFds();
    const connection = await connectService('digest', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
      ...(split > 0 ? { initialData: bytes.subarray(0, split) } : {}),
    });
    expect(connection.route).toBe(route);
    const got = answers(connection.socket, sent.length);
    connection.socket.write(bytes.subarray(split));
    expectAnsweredInOrder(await got, sent);
    connection.socket.destroy();
    await once(connection.socket, 'close');
    await expect.poll(openFds).toBe(fdsBefore);
  });

  it('a first request at the 16 MiB frame cap is answered', async () => {
    const b = await broker(handoff);
    const { bytes, sent } = frameAtTheCap();
    const connection = await connectService('digest', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
      initialData: bytes,
    });
    expect(connection.route).toBe(route);
    expectAnsweredInOrder(await answers(connection.socket, 1), sent);
    connection.socket.destroy();
  });

  it('many frames pipelined behind the Hello are all answered, in order', async () => {
    const b = await broker(handoff);
    // 300 frames of 1 KiB..3 KiB: several reads' worth, cut mid-frame by the
    // broker's read of the Hello.
    const parts: Buffer[] = [];
    const sent: Sent[] = [];
    for (let i = 1; i <= 300; i++) {
      const payload = randomBytes(1024 + ((i * 37) % 2048));
      sent.push({ id: BigInt(i), digest: digestOf(payload) });
      parts.push(
        Buffer.from(
          encodeFramed(requestFrame({ payloadProtocol: P, requestId: BigInt(i), payload })),
        ),
      );
    }
    const connection = await connectService('digest', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
      initialData: Buffer.concat(parts),
    });
    expect(connection.route).toBe(route);
    expectAnsweredInOrder(await answers(connection.socket, sent.length), sent);
    connection.socket.destroy();
  });
});

describe('a handoff the daemon refuses falls back to reconnect', () => {
  // The broker offers twice, then tells the client to reconnect; the daemon
  // never read a byte, so the client sends its first request again, once.
  it.each([
    ['1 B', 1],
    ['64 KiB + 1', 64 * KiB + 1],
    ['1 MiB', MiB],
  ])('a first request of %s is answered once, on the direct connection', async (_, split) => {
    const b = await broker(true, ['--refuse-offers']);
    const { bytes, sent } = frameStream(Math.ceil((split + 100 * KiB) / (40 * KiB)), 40 * KiB);
    const connection = await connectService('digest', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
      initialData: bytes.subarray(0, split),
    });
    expect(connection.route).toBe('reconnect');
    const got = answers(connection.socket, sent.length);
    connection.socket.write(bytes.subarray(split));
    expectAnsweredInOrder(await got, sent);
    // Exactly once: nothing more arrives.
    const extra = await new Promise<number>((resolve) => {
      let n = 0;
      connection.socket.on('data', (chunk: Buffer) => (n += chunk.length));
      setTimeout(() => resolve(n), 300);
    });
    expect(extra).toBe(0);
    connection.socket.destroy();
  });
});

describe('a raw client that writes the Hello and 1 MiB in one write', () => {
  // Not through connectService: the broker alone must keep every byte, in
  // whatever reads the kernel hands it, and the daemon must answer on the
  // same socket after the relay.
  it('gets Negotiated, the relay, then every answer on the one socket', async () => {
    const b = await broker(true);
    const { bytes, sent } = frameStream(26, 40 * KiB);
    const hello = encodeFramed(
      requestFrame({
        payloadProtocol: CONTROL_PAYLOAD_PROTOCOL,
        requestId: 1n,
        payload: Hello.encode({
          clientMinProtocol: PROTOCOL_VERSION,
          clientMaxProtocol: PROTOCOL_VERSION,
          serviceName: 'digest',
          wantedVersion: '1.0.0',
          clientCapabilities: CAP_HANDLE_PASSING,
        }),
      }),
    );
    const socket = connect(b.socketPath);
    await once(socket, 'connect');
    socket.write(Buffer.concat([hello, bytes]));
    const frames = await answers(socket, sent.length + 2);
    const reply = HelloReply.decode(frames[0]!.payload);
    expect(reply.result.case).toBe('negotiated');
    expect(frames[1]!.kind).toBe(FrameKind.EVENT);
    expectAnsweredInOrder(frames.slice(2), sent);
    socket.destroy();
  });
});
