import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { encodeFramed, type Frame, requestFrame } from '@handoff/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type DaemonIdentity,
  type DaemonServer,
  FrameClient,
  type LegacyDetector,
  probeDaemon,
  type ServeDaemonOptions,
  type ServerConnectionError,
  serveDaemon,
} from '../src/index.js';
import { FramedPeer } from './framed-peer.js';
import { identityFor, openFds, str, tempDir, text } from './harness.js';

const P = 0xf001;
const tmp = tempDir('serve');
let identity: DaemonIdentity;
let counter = 0;
const open: { servers: DaemonServer[]; clients: FrameClient[]; sockets: Socket[] } = {
  servers: [],
  clients: [],
  sockets: [],
};

beforeAll(async () => {
  identity = await identityFor(tmp.path('x.sock'));
}, 60_000);
afterEach(async () => {
  for (const c of open.clients.splice(0)) c.close();
  for (const s of open.sockets.splice(0)) s.destroy();
  await Promise.all(open.servers.splice(0).map((s) => s.close({ deadlineMs: 100 })));
});
afterAll(() => tmp.remove());

/** 'L' starts the toy legacy wire. */
const legacyDetector: LegacyDetector = (buf) => (buf[0] === 0x4c ? 'Legacy' : 'NotLegacy');

async function serve(overrides: Partial<ServeDaemonOptions> = {}) {
  const endpoint = overrides.endpoint ?? tmp.path(`d${++counter}.sock`);
  const server = await serveDaemon({
    endpoint,
    identity: {
      ...identity,
      process: { ...identity.process, ipcEndpoint: { namespaceId: '', path: endpoint } },
    },
    payloadProtocols: [P],
    legacyDetector,
    onRequest: (frame) => frame.payload,
    ...overrides,
  });
  open.servers.push(server);
  return server;
}
const client = async (endpoint: string) => {
  const c = await FrameClient.connect(endpoint);
  open.clients.push(c);
  return c;
};
const rawConnect = async (endpoint: string) => {
  const s = connect(endpoint);
  open.sockets.push(s);
  await once(s, 'connect');
  return s;
};
const nextError = (server: DaemonServer) =>
  once(server, 'connectionError').then(([e]) => e as ServerConnectionError);

describe('serveDaemon', () => {
  it('reports a connection that arrived while it was still starting', async () => {
    // A Python peer spins on connect() before the socket exists, so its
    // connection lands as soon as the socket listens — before serveDaemon
    // has settled the socket's mode and returned.
    const endpoint = tmp.path(`race${++counter}.sock`);
    const peer = spawn(
      'python3',
      [
        '-c',
        [
          'import socket, sys',
          'print("spinning", flush=True)',
          'while True:',
          '    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
          '    try:',
          `        s.connect(${JSON.stringify(endpoint)})`,
          '        break',
          '    except OSError:',
          '        s.close()',
          'print("connected", flush=True)',
          'sys.stdin.read()',
        ].join('\n'),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      let out = '';
      const printed = (what: string) =>
        new Promise<void>((resolve) => {
          const check = () => out.includes(what) && resolve();
          peer.stdout.on('data', check);
          check();
        });
      peer.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
      });
      await printed('spinning');
      const server = await serve({ endpoint });
      const seen: number[] = [];
      server.on('connection', (e: { connectionId: number }) => seen.push(e.connectionId));
      await printed('connected');
      for (let i = 0; i < 300 && seen.length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(seen).toHaveLength(1);
      expect(server.connectionCount).toBe(1);
    } finally {
      peer.stdin.end();
      if (peer.exitCode === null) await once(peer, 'exit');
    }
  });

  it('binds a 0600 socket and answers identity probes itself', async () => {
    const server = await serve();
    expect(statSync(server.endpoint).mode & 0o777).toBe(0o600);
    const verified = await probeDaemon(server.endpoint, { pid: process.pid });
    expect(verified.identity.ipcEndpoint?.path).toBe(server.endpoint);
  });

  it('runs requests concurrently and answers them out of order', async () => {
    const server = await serve({
      onRequest: async (frame) => {
        await new Promise((r) => setTimeout(r, 50 - Number(str(frame.payload))));
        return frame.payload;
      },
    });
    const c = await client(server.endpoint);
    const order: string[] = [];
    const all = Array.from({ length: 40 }, (_, i) =>
      c.request(P, text(String(i))).then((f) => order.push(str(f.payload))),
    );
    await Promise.all(all);
    expect([...order].sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 40 }, (_, i) => String(i)),
    );
    expect(order).not.toEqual([...order].sort((a, b) => Number(a) - Number(b)));
  });

  it('serves 1,000 pipelined requests on one connection', async () => {
    const server = await serve();
    const c = await client(server.endpoint);
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => c.request(P, text(`r${i}`))),
    );
    for (const [i, f] of answers.entries()) expect(str(f.payload)).toBe(`r${i}`);
  });

  it('hands a legacy connection over with every byte read so far', async () => {
    const legacy: { socket: Socket; buffered: Buffer }[] = [];
    const server = await serve({
      onLegacy: (socket, buffered) => legacy.push({ socket, buffered }),
    });
    const s = await rawConnect(server.endpoint);
    s.write('LGET a\n');
    await expect.poll(() => legacy.length).toBe(1);
    const { socket, buffered } = legacy[0]!;
    let rest = '';
    socket.on('data', (d) => (rest += d));
    socket.resume();
    s.write('LGET b\n');
    await expect.poll(() => buffered.toString() + rest).toBe('LGET a\nLGET b\n');
    socket.end('ok\n');
    const [reply] = await once(s, 'data');
    expect(String(reply)).toBe('ok\n');
    expect(server.connectionCount).toBe(0);
  });

  it('answers a client that ends its side after sending, then closes', async () => {
    // A client that writes its requests and shuts its side (nc -N, a script
    // closing stdin) still reads: every answer, even a slow one, reaches it
    // before the end of stream.
    const server = await serve({
      onRequest: async (frame) => {
        await new Promise((r) => setTimeout(r, Number(str(frame.payload))));
        return frame.payload;
      },
    });
    const peer = await FramedPeer.connect(server.endpoint);
    open.sockets.push(peer.socket);
    peer.socket.end(
      Buffer.concat([50, 0, 120].map((ms, i) => FramedPeer.frame(i + 1, String(ms)))),
    );
    await once(peer.socket, 'end');
    const answers = peer.frames.map((f) => [f.requestId, str(f.payload)]);
    expect(answers).toEqual([
      [2n, '0'],
      [1n, '50'],
      [3n, '120'],
    ]);
    await expect.poll(() => server.connectionCount).toBe(0);
  });

  it('closes a connection whose client ended in the middle of a frame', async () => {
    const server = await serve();
    const peer = await FramedPeer.connect(server.endpoint);
    open.sockets.push(peer.socket);
    const cut = FramedPeer.frame(2, 'b');
    peer.socket.end(Buffer.concat([FramedPeer.frame(1, 'a'), cut.subarray(0, cut.length - 1)]));
    await peer.closed;
    expect(peer.frames.map((f) => str(f.payload))).toEqual(['a']);
    await expect.poll(() => server.connectionCount).toBe(0);
  });

  it("gives a legacy handler the socket with Node's end-of-stream behaviour", async () => {
    // Half-open is ours while the daemon serves frames; a legacy handler
    // gets the socket as it came (allowHalfOpen false: the client's end
    // ends it).
    const handed: Socket[] = [];
    const server = await serve({ onLegacy: (socket) => handed.push(socket) });
    const s = await rawConnect(server.endpoint);
    s.write('LX');
    await expect.poll(() => handed.length).toBe(1);
    const socket = handed[0]!;
    expect(socket.allowHalfOpen).toBe(false);
    socket.resume();
    s.end();
    await once(socket, 'close');
    await once(s, 'close');
  });

  it('closes a legacy connection when the daemon has no legacy handler', async () => {
    const server = await serve();
    const s = await rawConnect(server.endpoint);
    const error = nextError(server);
    s.write('LHELLO');
    expect((await error).code).toBe('LEGACY_REFUSED');
    await once(s, 'close');
  });

  it('a mux error drops only that connection', async () => {
    const server = await serve();
    const healthy = await client(server.endpoint);
    const bad = await rawConnect(server.endpoint);
    const error = nextError(server);
    bad.write(encodeFramed(requestFrame({ payloadProtocol: 0xb232, payload: new Uint8Array(5) })));
    expect((await error).code).toBe('MUX');
    await once(bad, 'close');
    const unserved = await rawConnect(server.endpoint);
    const error2 = nextError(server);
    unserved.write(
      encodeFramed(requestFrame({ payloadProtocol: 0xf00f, payload: new Uint8Array(9) })),
    );
    expect((await error2).message).toContain('UNSERVED_PAYLOAD_PROTOCOL');
    expect(str((await healthy.request(P, text('still'))).payload)).toBe('still');
  });

  it('aborts the handler signal when the client cancels', async () => {
    let aborted = false;
    const server = await serve({
      onRequest: (_frame, ctx) =>
        new Promise<undefined>((resolve) =>
          ctx.signal.addEventListener('abort', () => {
            aborted = true;
            resolve(undefined);
          }),
        ),
    });
    const c = await client(server.endpoint);
    const controller = new AbortController();
    const pending = c.request(P, text('x'), { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
    await expect.poll(() => aborted).toBe(true);
  });

  it('pauses reading at maxInFlightPerConnection', async () => {
    const release: (() => void)[] = [];
    const server = await serve({
      maxInFlightPerConnection: 2,
      onRequest: (frame) =>
        new Promise<Uint8Array>((resolve) => release.push(() => resolve(frame.payload))),
    });
    const c = await client(server.endpoint);
    const pending = Array.from({ length: 6 }, (_, i) => c.request(P, text(String(i))));
    let started = 0;
    for (let round = 0; round < 3; round++) {
      await new Promise((r) => setTimeout(r, 50));
      // Never more than two handlers running at once.
      expect(release.length).toBe(2);
      started += 2;
      for (const done of release.splice(0)) done();
    }
    expect(started).toBe(6);
    expect((await Promise.all(pending)).map((f) => str(f.payload))).toEqual([
      '0',
      '1',
      '2',
      '3',
      '4',
      '5',
    ]);
  });

  it('sends EVENT frames correlated with the request', async () => {
    const server = await serve({
      onRequest: (frame, ctx) => {
        ctx.sendEvent(text('progress'));
        return frame.payload;
      },
    });
    const c = await client(server.endpoint);
    const events: Frame[] = [];
    c.on('event', (f: Frame) => events.push(f));
    const response = await c.request(P, text('go'));
    expect(events.map((e) => [str(e.payload), e.requestId])).toEqual([
      ['progress', response.requestId],
    ]);
  });

  it('closes idle connections, rejects foreign uids and enforces maxConnections', async () => {
    const idle = await serve({ idleTimeoutMs: 50 });
    const s = await rawConnect(idle.endpoint);
    await once(s, 'close');

    const foreign = await serve({ allowedUids: [12345] });
    const error = nextError(foreign);
    const f = await rawConnect(foreign.endpoint);
    expect((await error).code).toBe('PEER_REJECTED');
    await once(f, 'close');

    const limited = await serve({ maxConnections: 1 });
    await client(limited.endpoint);
    const tooMany = nextError(limited);
    await rawConnect(limited.endpoint);
    expect((await tooMany).code).toBe('TOO_MANY_CONNECTIONS');
  });

  it('close() lets in-flight requests finish, then removes the socket file', async () => {
    let finish!: () => void;
    const server = await serve({
      onRequest: (frame) => new Promise<Uint8Array>((r) => (finish = () => r(frame.payload))),
    });
    const c = await client(server.endpoint);
    const pending = c.request(P, text('last'));
    await new Promise((r) => setTimeout(r, 20));
    const closed = server.close({ deadlineMs: 5000 });
    await new Promise((r) => setTimeout(r, 20));
    finish();
    expect(str((await pending).payload)).toBe('last');
    await closed;
    expect(existsSync(server.endpoint)).toBe(false);
    await expect(FrameClient.connect(server.endpoint)).rejects.toMatchObject({ code: 'CONNECT' });
  });

  it('close() aborts requests still running at the deadline', async () => {
    let signal!: AbortSignal;
    const server = await serve({
      onRequest: (_f, ctx) => {
        signal = ctx.signal;
        return new Promise(() => {});
      },
    });
    const c = await client(server.endpoint);
    const outcome = c.request(P, text('stuck')).catch((error: unknown) => error);
    await expect.poll(() => signal !== undefined).toBe(true);
    await server.close({ deadlineMs: 50 });
    expect(signal.aborted).toBe(true);
    expect(await outcome).toMatchObject({ code: 'CLOSED' });
  });

  it('serves an adopted connection, bytes read before adoption first', async () => {
    const server = await serve();
    const relay = createServer({ pauseOnConnect: true });
    relay.listen(tmp.path('relay.sock'));
    await once(relay, 'listening');
    const connection = once(relay, 'connection');
    const c = await FrameClient.connect(tmp.path('relay.sock'));
    open.clients.push(c);
    const [accepted] = (await connection) as [Socket];
    const answer = c.request(P, text('early'));
    // The "broker" read the first request before handing the connection off.
    const early = await new Promise<Buffer>((resolve) => {
      accepted.once('data', (d: Buffer) => {
        accepted.pause();
        resolve(d);
      });
      accepted.resume();
    });
    server.adopt(accepted, early);
    expect(str((await answer).payload)).toBe('early');
    expect(str((await c.request(P, text('later'))).payload)).toBe('later');
    relay.close();
  });

  it('refuses unsafe directories, live sockets and non-socket files; replaces stale sockets', async () => {
    const shared = join(tmp.dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    await expect(serve({ endpoint: join(shared, 'd.sock') })).rejects.toMatchObject({
      code: 'UNSAFE_DIRECTORY',
    });
    const live = await serve();
    await expect(serve({ endpoint: live.endpoint })).rejects.toMatchObject({
      code: 'ADDRESS_IN_USE',
    });
    const file = tmp.path('plain-file');
    writeFileSync(file, 'x');
    await expect(serve({ endpoint: file })).rejects.toMatchObject({ code: 'NOT_A_SOCKET' });
    const stale = tmp.path('stale.sock');
    const orphan = createServer().listen(stale);
    await once(orphan, 'listening');
    // Close without unlinking: leaves a socket file nobody accepts on.
    (orphan as unknown as { _handle: { close(): void } })._handle.close();
    const revived = await serve({ endpoint: stale });
    expect((await probeDaemon(revived.endpoint)).identity.pid).toBe(process.pid);
  });

  it('leaks no fd across 300 connections with requests and probes', async () => {
    const server = await serve();
    const before = openFds();
    for (let i = 0; i < 100; i++) {
      const c = await FrameClient.connect(server.endpoint);
      await c.request(P, text('x'));
      c.close();
      await probeDaemon(server.endpoint);
      const s = connect(server.endpoint);
      await once(s, 'connect');
      s.destroy();
    }
    await expect.poll(() => server.connectionCount).toBe(0);
    await expect.poll(openFds).toBe(before);
  });
});
