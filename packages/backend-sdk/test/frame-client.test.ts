import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeFramed,
  type Frame,
  FrameDecoder,
  FrameKind,
  responseFrame,
} from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FrameClient, FrameClientError } from '../src/index.js';
import { openFds } from './harness.js';

const P = 0xf001;
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

/** A real server on a Unix socket; its behaviour is steered by the payload. */
class TestServer {
  readonly received: Frame[] = [];
  readonly sockets = new Set<Socket>();
  private server: Server | null = null;
  constructor(readonly path: string) {}

  async start(): Promise<void> {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      const decoder = new FrameDecoder();
      const held: Frame[] = [];
      socket.on('data', (chunk) => {
        for (const frame of decoder.push(chunk)) this.handle(socket, frame, held);
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => this.server!.listen(this.path, resolve));
  }

  private handle(socket: Socket, frame: Frame, held: Frame[]): void {
    this.received.push(frame);
    if (frame.kind !== FrameKind.REQUEST) return;
    const command = str(frame.payload);
    const reply = (f: Frame) => socket.write(encodeFramed(f));
    if (command === 'never') return;
    if (command === 'close') return void socket.destroy();
    if (command === 'wrong-protocol')
      return void reply(responseFrame(frame, { payloadProtocol: 0xf002, payload: frame.payload }));
    if (command === 'wrong-kind')
      return void reply({ ...responseFrame(frame), kind: FrameKind.CANCEL });
    if (command === 'unknown')
      return void reply(responseFrame({ ...frame, requestId: frame.requestId + 1000n }));
    if (command === 'event') {
      reply({ ...responseFrame(frame, { payload: text('tick') }), kind: FrameKind.EVENT });
      return void reply(responseFrame(frame, { payload: frame.payload }));
    }
    if (command.startsWith('hold')) {
      // Hold requests until `release`, then answer all of them in reverse.
      held.push(frame);
      return;
    }
    if (command === 'release') {
      for (const h of held.reverse()) reply(responseFrame(h, { payload: h.payload }));
      held.length = 0;
      return void reply(responseFrame(frame, { payload: frame.payload }));
    }
    reply(responseFrame(frame, { payload: frame.payload }));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) =>
      this.server ? this.server.close(() => resolve()) : resolve(),
    );
  }
}

let dir: string;
let server: TestServer;
const clients: FrameClient[] = [];
const client = async () => {
  const c = await FrameClient.connect(server.path);
  clients.push(c);
  return c;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'handoff-fc-'));
  server = new TestServer(join(dir, 'daemon.sock'));
  await server.start();
});
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});
afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('FrameClient', () => {
  it('correlates 1,000 pipelined requests answered out of order', async () => {
    const c = await client();
    const requests = Array.from({ length: 1000 }, (_, i) => c.request(P, text(`hold-${i}`)));
    expect(c.inFlight).toBe(1000);
    const release = await c.request(P, text('release'));
    expect(str(release.payload)).toBe('release');
    const answers = await Promise.all(requests);
    answers.forEach((frame, i) => {
      expect(str(frame.payload)).toBe(`hold-${i}`);
      expect(frame.kind).toBe(FrameKind.RESPONSE);
    });
    expect(c.inFlight).toBe(0);
  });

  it('numbers requests from 1, skips 0 and wraps at 2^64', async () => {
    const c = await client();
    const first = server.received.length;
    await c.request(P, text('a'));
    expect(server.received[first]!.requestId).toBe(1n);
    (c as unknown as { nextId: bigint }).nextId = 2n ** 64n - 1n;
    await c.request(P, text('b'));
    await c.request(P, text('c'));
    expect(server.received.slice(-2).map((f) => f.requestId)).toEqual([2n ** 64n - 1n, 1n]);
  });

  it('an AbortSignal cancels just that request and tells the server', async () => {
    const c = await client();
    const controller = new AbortController();
    const doomed = c.request(P, text('never'), { signal: controller.signal });
    const fine = c.request(P, text('fine'));
    controller.abort();
    await expect(doomed).rejects.toMatchObject({ code: 'ABORTED' });
    expect(str((await fine).payload)).toBe('fine');
    await expect.poll(() => server.received.some((f) => f.kind === FrameKind.CANCEL)).toBe(true);
  });

  it('a deadline fails only its request and travels as deadlineUnixMs', async () => {
    const c = await client();
    const before = Date.now();
    const late = c.request(P, text('never'), { timeoutMs: 50 });
    await expect(late).rejects.toMatchObject({ code: 'DEADLINE' });
    const sent = server.received.findLast((f) => str(f.payload) === 'never')!;
    expect(Number(sent.deadlineUnixMs)).toBeGreaterThanOrEqual(before + 50);
    expect(str((await c.request(P, text('still-works'))).payload)).toBe('still-works');
  });

  it('rejects an already-aborted signal without sending', async () => {
    const c = await client();
    await expect(c.request(P, text('x'), { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });

  it('types a response on the wrong protocol or of the wrong kind', async () => {
    const c = await client();
    await expect(c.request(P, text('wrong-protocol'))).rejects.toMatchObject({
      code: 'UNEXPECTED_PROTOCOL',
    });
    await expect(c.request(P, text('wrong-kind'))).rejects.toMatchObject({
      code: 'UNEXPECTED_KIND',
    });
  });

  it('emits EVENT frames and still resolves the response', async () => {
    const c = await client();
    const events: Frame[] = [];
    c.on('event', (f: Frame) => events.push(f));
    await c.request(P, text('event'));
    expect(events.map((f) => str(f.payload))).toEqual(['tick']);
  });

  it('an unknown request id fails every pending request', async () => {
    const c = await client();
    const pending = c.request(P, text('never'));
    const unknown = c.request(P, text('unknown'));
    await expect(unknown).rejects.toMatchObject({ code: 'UNKNOWN_REQUEST_ID' });
    await expect(pending).rejects.toMatchObject({ code: 'UNKNOWN_REQUEST_ID' });
    await expect(c.request(P, text('after'))).rejects.toBeInstanceOf(FrameClientError);
  });

  it('a dead connection fails every pending request at once', async () => {
    const c = await client();
    const waiting = Array.from({ length: 5 }, () => c.request(P, text('never')));
    const killer = c.request(P, text('close'));
    const results = await Promise.allSettled([...waiting, killer]);
    for (const r of results)
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'CLOSED' } });
  });

  it('fails connect with CONNECT for a missing socket', async () => {
    await expect(FrameClient.connect(join(dir, 'nope.sock'))).rejects.toMatchObject({
      code: 'CONNECT',
    });
  });

  it('leaks no fd over 200 connect/request/close cycles', async () => {
    const before = openFds();
    for (let i = 0; i < 200; i++) {
      const c = await FrameClient.connect(server.path);
      await c.request(P, text('x'));
      c.close();
    }
    await expect.poll(openFds).toBe(before);
  });
});
