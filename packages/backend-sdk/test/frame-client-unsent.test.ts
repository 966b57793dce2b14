// Requests that fail before they reach the wire (over the frame cap, not
// encodable, on a dead socket): each is a typed FrameClientError, and
// leaves nothing behind — no pending entry, no timer, no abort listener,
// no CANCEL for an id the server never saw.
import { getEventListeners } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import {
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  MAX_FRAME_BYTES,
  responseFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FrameClient, FrameClientError } from '../src/index.js';
import { str, tempDir, text } from './harness.js';

const P = 0xf001;
const tmp = tempDir('fc-unsent');
const received: Frame[] = [];
const sockets = new Set<Socket>();
let server: Server;
const clients: FrameClient[] = [];

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

beforeAll(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) {
        received.push(frame);
        if (frame.kind === FrameKind.REQUEST && str(frame.payload) !== 'never')
          socket.write(encodeFramed(responseFrame(frame, { payload: frame.payload })));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(tmp.path('d.sock'), resolve));
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  tmp.remove();
});

async function client(): Promise<FrameClient> {
  const c = await FrameClient.connect(tmp.path('d.sock'));
  clients.push(c);
  return c;
}

/** A round trip on the same connection: everything written before it has been read. */
async function flushed(c: FrameClient): Promise<void> {
  expect(str((await c.request(P, text('flush'))).payload)).toBe('flush');
}

describe('a request that cannot be sent', () => {
  it('a request over the frame cap is a TOO_LARGE FrameClientError, with nothing pending, no timer and no CANCEL', async () => {
    const c = await client();
    await flushed(c);
    const before = { frames: received.length, timers: timers() };
    const controller = new AbortController();
    const huge = new Uint8Array(MAX_FRAME_BYTES + 1);
    const request = c.request(P, huge, { timeoutMs: 20, signal: controller.signal });
    expect(c.inFlight).toBe(0);
    expect(timers()).toBe(before.timers);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    const error = await request.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FrameClientError);
    expect(error).toMatchObject({ code: 'TOO_LARGE', requestId: undefined });
    // Past the would-be deadline, the connection still works and the server
    // heard nothing of the request: no REQUEST, no CANCEL.
    await new Promise((resolve) => setTimeout(resolve, 40));
    await flushed(c);
    expect(received.slice(before.frames).map((f) => str(f.payload))).toEqual(['flush']);
    expect(c.inFlight).toBe(0);
  });

  it('a request whose fields cannot be encoded is an ENCODE FrameClientError, never a synchronous throw', async () => {
    const c = await client();
    await flushed(c);
    const before = { frames: received.length, timers: timers() };
    const attempts: [string, () => Promise<Frame>][] = [
      ['a non-finite deadline', () => c.request(P, text('x'), { deadline: Number.NaN })],
      [
        'an infinite timeout',
        () => c.request(P, text('x'), { timeoutMs: Number.POSITIVE_INFINITY }),
      ],
      ['a payload protocol out of u32 range', () => c.request(2 ** 32, text('x'))],
      ['a payload that is not bytes', () => c.request(P, 'x' as unknown as Uint8Array)],
    ];
    for (const [what, attempt] of attempts) {
      let request: Promise<Frame>;
      try {
        request = attempt();
      } catch (error) {
        throw new Error(`${what}: threw synchronously: ${error}`);
      }
      await expect(request, what).rejects.toBeInstanceOf(FrameClientError);
      await expect(request, what).rejects.toMatchObject({ code: 'ENCODE' });
      expect(c.inFlight, what).toBe(0);
    }
    expect(timers()).toBe(before.timers);
    await flushed(c);
    expect(received.slice(before.frames).map((f) => str(f.payload))).toEqual(['flush']);
  });

  it('a client wrapping a socket that is already closed rejects with CLOSED instead of waiting forever', async () => {
    const { connect } = await import('node:net');
    const socket = connect(tmp.path('d.sock'));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.destroy();
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const c = new FrameClient(socket);
    clients.push(c);
    const outcome = await Promise.race([
      c.request(P, text('x')).then(
        () => 'answered',
        (e: FrameClientError) => e.code,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still pending after 2 s'), 2000)),
    ]);
    expect(outcome).toBe('CLOSED');
    expect(c.inFlight).toBe(0);
  });

  it('a request on a closed client is rejected with CLOSED and leaves no timer', async () => {
    const c = await client();
    c.close();
    const before = timers();
    await expect(c.request(P, text('x'), { timeoutMs: 10_000 })).rejects.toMatchObject({
      code: 'CLOSED',
    });
    expect(timers()).toBe(before);
    expect(c.inFlight).toBe(0);
  });
});

describe('deadlines', () => {
  it('a deadline more than 24.8 days away does not fire after 1 ms (setTimeout overflow)', async () => {
    const c = await client();
    const far = c.request(P, text('never'), { timeoutMs: 30 * 24 * 3600 * 1000 });
    let settled = false;
    far.then(
      () => (settled = true),
      () => (settled = true),
    );
    // Two round trips on the same connection: a 1 ms timer has long fired.
    await new Promise((resolve) => setTimeout(resolve, 20));
    await flushed(c);
    await flushed(c);
    expect(settled).toBe(false);
    expect(c.inFlight).toBe(1);
    c.close();
    await expect(far).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
