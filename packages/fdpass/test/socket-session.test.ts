import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import {
  type AddressInfo,
  createConnection,
  createServer,
  type Server,
  type Socket,
} from 'node:net';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  closeFd,
  decodeSessionAddress,
  FdPassError,
  FdSocket,
  type ReceivedMessage,
  SessionForwarder,
  SessionReceiver,
  type SocketKind,
  type SocketSession,
  socketFromFd,
} from '../src/index.js';
import { expectFdCount, nextEvent, openFdCount } from './helpers.js';

const AF_UNIX = 1;
const AF_INET = 2;
const SOCK_STREAM = 1;
const IPPROTO_TCP = 6;

let baseline = 0;
const cleanup: Array<() => void | Promise<void>> = [];
beforeEach(() => {
  baseline = openFdCount();
});
afterEach(async () => {
  try {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  } finally {
    await expectFdCount(baseline);
  }
});

async function tcpPair(): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const acceptedP = once(server, 'connection');
  const client = createConnection((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [accepted] = (await acceptedP) as [Socket];
  cleanup.push(async () => {
    client.destroy();
    accepted.destroy();
    await new Promise((r) => server.close(r));
  });
  return { server, client, accepted };
}

function channel(kind: SocketKind) {
  const [a, b] = FdSocket.pair(kind);
  cleanup.push(() => {
    a.close();
    b.close();
  });
  return [a, b] as const;
}

/** Receives the next session or rejects with the receiver's error. */
function nextSession(receiver: SessionReceiver): Promise<SocketSession> {
  return new Promise((resolve, reject) => {
    receiver.once('session', resolve);
    receiver.once('error', reject);
  });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** sockaddr image of an unnamed AF_UNIX socket on Linux: just sa_family (LE u16). */
const unnamedUnix = Buffer.from([AF_UNIX, 0]);

/** A well-formed AF_UNIX session header (hand-built, not from the encoder). */
function unixHeader(dataLength: number): Buffer {
  const body = Buffer.concat([
    u32(AF_UNIX),
    u32(SOCK_STREAM),
    u32(0),
    u32(2),
    unnamedUnix,
    u32(2),
    unnamedUnix,
    u32(dataLength),
  ]);
  return Buffer.concat([u16(body.length), body]);
}

describe.each(['seqpacket', 'stream'] as const)('socket sessions over a %s channel', (kind) => {
  it('moves a live TCP connection with the bytes already read; it keeps serving', async () => {
    const { client, accepted } = await tcpPair();
    const [tx, rx] = channel(kind);
    const forwarder = new SessionForwarder(tx);
    const receiver = new SessionReceiver(rx);

    accepted.pause();
    const gotSession = nextSession(receiver);
    forwarder.forward(accepted, Buffer.from('GET / already read'));
    const s = await gotSession;
    accepted.destroy();

    expect(s.family).toBe(AF_INET);
    expect(s.type).toBe(SOCK_STREAM);
    expect(s.protocol).toBe(IPPROTO_TCP);
    expect(s.local).toMatchObject({
      family: 'inet',
      address: '127.0.0.1',
      port: client.remotePort,
    });
    expect(s.remote).toMatchObject({
      family: 'inet',
      address: '127.0.0.1',
      port: client.localPort,
    });
    expect(s.local.raw.length).toBe(16);
    expect(decodeSessionAddress(s.remote.raw)).toEqual(s.remote);
    expect(s.data.toString()).toBe('GET / already read');

    const adopted = socketFromFd(s.fd);
    adopted.setEncoding('utf8');
    const echoed = once(client, 'data');
    adopted.once('data', (d: string) => adopted.write(`new owner got: ${d}`));
    client.write('after the move');
    expect(String((await echoed)[0])).toBe('new owner got: after the move');
    adopted.destroy();
    receiver.close();
  });

  it('forwards an AF_UNIX socket with empty data', async () => {
    const [tx, rx] = channel(kind);
    const [moved, peer] = channel('stream');
    const forwarder = new SessionForwarder(tx);
    const receiver = new SessionReceiver(rx);
    const gotSession = nextSession(receiver);
    forwarder.forward(moved.fd);
    const s = await gotSession;
    expect(s.family).toBe(AF_UNIX);
    expect(s.type).toBe(SOCK_STREAM);
    expect(s.local).toMatchObject({ family: 'unix', path: '', abstract: false });
    expect(s.data.length).toBe(0);
    // The received fd is the same socket: talk to its peer through it.
    const adopted = FdSocket.adopt(s.fd);
    const got = nextEvent<ReceivedMessage>(peer, 'message');
    adopted.write(Buffer.from('via session fd'));
    expect((await got).data.toString()).toBe('via session fd');
    adopted.close();
    receiver.close();
  });

  it('delivers many sessions in order through the async iterator', async () => {
    const [tx, rx] = channel(kind);
    const [moved] = channel('stream');
    const forwarder = new SessionForwarder(tx);
    const receiver = new SessionReceiver(rx);
    for (let i = 0; i < 50; i++) forwarder.forward(moved.fd, Buffer.from(`s${i}`));
    forwarder.close();
    const seen: string[] = [];
    for await (const s of receiver) {
      seen.push(s.data.toString());
      closeFd(s.fd);
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => `s${i}`));
  });

  it('fails fast with ERR_SESSION_WOULD_BLOCK and never leaves half a session', async () => {
    const [tx, rx] = channel(kind);
    const [moved] = channel('stream');
    const forwarder = new SessionForwarder(tx);
    const data = Buffer.alloc(2000, 0x61);
    let sent = 0;
    let error: FdPassError | undefined;
    for (let i = 0; i < 100_000 && !error; i++) {
      try {
        forwarder.forward(moved.fd, data);
        sent++;
      } catch (err) {
        error = err as FdPassError;
      }
    }
    expect(error?.code).toBe('ERR_SESSION_WOULD_BLOCK');
    expect(forwarder.broken).toBe(false);
    expect(tx.writableLength).toBe(0);
    // Everything sent before the refusal arrives whole; nothing after it.
    const receiver = new SessionReceiver(rx);
    let received = 0;
    const errors: Error[] = [];
    receiver.on('error', (e: Error) => errors.push(e));
    await new Promise<void>((resolve) => {
      receiver.on('session', (s: SocketSession) => {
        expect(s.data.equals(data)).toBe(true);
        closeFd(s.fd);
        if (++received === sent) resolve();
      });
    });
    forwarder.close();
    await nextEvent(receiver, 'end');
    expect(errors).toEqual([]);
    expect(received).toBe(sent);
  });
});

describe('session header layout (golden, hand-built)', () => {
  it('matches dummy byte + u16 length + u32 fields in network order + data', async () => {
    const [tx, rx] = channel('stream');
    const [moved] = channel('stream');
    new SessionForwarder(tx).forward(moved.fd, Buffer.from('abc'));
    const m = await nextEvent<ReceivedMessage>(rx, 'message');
    expect(m.fds).toHaveLength(1);
    for (const fd of m.fds) closeFd(fd);
    expect(m.data.subarray(1)).toEqual(Buffer.concat([unixHeader(3), Buffer.from('abc')]));
  });
});

describe('incomplete or malformed sessions', () => {
  async function expectRejected(
    send: (tx: FdSocket, fd: number) => void,
    reason: RegExp,
  ): Promise<void> {
    const [tx, rx] = channel('stream');
    const [moved] = channel('stream');
    const receiver = new SessionReceiver(rx);
    const sessions: SocketSession[] = [];
    receiver.on('session', (s: SocketSession) => sessions.push(s));
    const failed = new Promise<FdPassError>((resolve) => receiver.once('error', resolve));
    send(tx, moved.fd);
    const err = await failed;
    expect(err).toBeInstanceOf(FdPassError);
    expect(err.code).toBe('ERR_INCOMPLETE_SESSION');
    expect(err.message).toMatch(reason);
    expect(sessions).toEqual([]);
    expect(rx.closed).toBe(true);
  }

  it('EOF in the middle of the header', async () => {
    await expectRejected((tx, fd) => {
      tx.write(Buffer.concat([Buffer.from([0]), unixHeader(0).subarray(0, 9)]), [fd]);
      tx.end();
    }, /ended in the middle/);
  });

  it('EOF before the announced data arrived', async () => {
    await expectRejected((tx, fd) => {
      tx.write(Buffer.concat([Buffer.from([0]), unixHeader(10), Buffer.from('short')]), [fd]);
      tx.close();
    }, /ended in the middle/);
  });

  it('a session without an fd', async () => {
    await expectRejected((tx) => {
      tx.write(Buffer.concat([Buffer.from([0]), unixHeader(0)]));
    }, /without an fd/);
  });

  it('two fds where one is expected (both closed)', async () => {
    await expectRejected((tx, fd) => {
      tx.write(Buffer.concat([Buffer.from([0]), unixHeader(0)]), [fd, fd]);
    }, /2 fds/);
  });

  it('header length inconsistent with the address sizes', async () => {
    await expectRejected((tx, fd) => {
      const good = unixHeader(0);
      const lying = Buffer.from(good);
      lying.writeUInt32BE(20, 2 + 12); // local size 20 instead of 2
      tx.write(Buffer.concat([Buffer.from([0]), lying]), [fd]);
    }, /inconsistent/);
  });

  it('header length out of range', async () => {
    await expectRejected((tx, fd) => {
      tx.write(Buffer.concat([Buffer.from([0]), u16(3), Buffer.alloc(3)]), [fd]);
    }, /header length 3/);
  });

  it('data size over the cap', async () => {
    await expectRejected((tx, fd) => {
      tx.write(Buffer.concat([Buffer.from([0]), unixHeader(1 << 30)]), [fd]);
    }, /exceeds the cap/);
  });

  it('a header that lies about the socket family', async () => {
    await expectRejected((tx, fd) => {
      const inet = Buffer.alloc(16);
      inet.writeUInt16LE(AF_INET, 0);
      const body = Buffer.concat([
        u32(AF_INET),
        u32(SOCK_STREAM),
        u32(0),
        u32(16),
        inet,
        u32(16),
        inet,
        u32(0),
      ]);
      tx.write(Buffer.concat([Buffer.from([0]), u16(body.length), body]), [fd]);
    }, /does not match/);
  });

  it('fds arriving in the middle of a session', async () => {
    await expectRejected((tx, fd) => {
      const whole = Buffer.concat([Buffer.from([0]), unixHeader(4), Buffer.from('data')]);
      tx.write(whole.subarray(0, 5), [fd]);
      tx.write(whole.subarray(5, 12), [fd]);
      tx.write(whole.subarray(12));
      tx.write(Buffer.concat([Buffer.from([0]), unixHeader(0)]), [fd]);
    }, /middle of a session/);
  });
});

describe('forwarder argument checks', () => {
  it('rejects data over maxDataSize and non-sockets without sending anything', () => {
    const [tx] = channel('seqpacket');
    const forwarder = new SessionForwarder(tx, { maxDataSize: 8 });
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    expect(() => forwarder.forward(tx.fd, Buffer.alloc(9))).toThrow(
      expect.objectContaining({ code: 'ERR_SESSION_TOO_LARGE' }),
    );
    expect(() => forwarder.forward(file)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
    expect(() => new SessionForwarder({} as FdSocket)).toThrow(TypeError);
    forwarder.close();
    expect(() => forwarder.forward(0)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }),
    );
  });
});

describe('receiver properties (fast-check)', () => {
  /** Feeds the receiver and resolves with what it produced once the channel ends. */
  function feed(
    writes: Array<{ data: Buffer; withFd: boolean }>,
  ): Promise<{ sessions: SocketSession[]; error: FdPassError | null }> {
    const [tx, rx] = FdSocket.pair('stream');
    const [moved, movedPeer] = FdSocket.pair('stream');
    const receiver = new SessionReceiver(rx);
    const sessions: SocketSession[] = [];
    receiver.on('session', (s: SocketSession) => sessions.push(s));
    const done = new Promise<{ sessions: SocketSession[]; error: FdPassError | null }>(
      (resolve) => {
        receiver.once('error', (error: FdPassError) => resolve({ sessions, error }));
        receiver.once('end', () => resolve({ sessions, error: null }));
      },
    );
    for (const w of writes) {
      if (w.data.length > 0) tx.write(w.data, w.withFd ? [moved.fd] : []);
    }
    tx.end();
    return done.then((result) => {
      for (const s of result.sessions) closeFd(s.fd);
      receiver.close();
      tx.close();
      moved.close();
      movedPeer.close();
      return result;
    });
  }

  it('reassembles sessions however the bytes are split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 8 }),
        async (payloads, cuts) => {
          const writes: Array<{ data: Buffer; withFd: boolean }> = [];
          for (const payload of payloads) {
            // BIND-style: the fd with the dummy byte, then the rest in pieces.
            writes.push({ data: Buffer.from([0]), withFd: true });
            let rest = Buffer.concat([unixHeader(payload.length), Buffer.from(payload)]);
            for (const cut of cuts) {
              if (rest.length === 0) break;
              writes.push({ data: rest.subarray(0, cut), withFd: false });
              rest = rest.subarray(cut);
            }
            if (rest.length > 0) writes.push({ data: rest, withFd: false });
          }
          const { sessions, error } = await feed(writes);
          expect(error).toBeNull();
          expect(sessions.map((s) => [...s.data])).toEqual(payloads.map((p) => [...p]));
        },
      ),
      { numRuns: 60 },
    );
  });

  it('hostile bytes never crash, never leak, and fail typed', async () => {
    const before = openFdCount();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 400 }), fc.boolean(), async (garbage, withFd) => {
        const { error } = await feed([
          { data: Buffer.concat([Buffer.from([0]), Buffer.from(garbage)]), withFd },
        ]);
        if (error !== null) {
          expect(error).toBeInstanceOf(FdPassError);
          expect(error.code).toBe('ERR_INCOMPLETE_SESSION');
        }
      }),
      { numRuns: 150 },
    );
    await expectFdCount(before);
  });
});

describe('SessionForwarder.connect', () => {
  it('connects to a socket path and forwards', async () => {
    const { FdServer, closeFd: close } = await import('../src/index.js');
    const { makeTempDir } = await import('./helpers.js');
    const dir = makeTempDir();
    cleanup.push(() => dir.cleanup());
    const server = await FdServer.listen(dir.file('s.sock'));
    const accepted = nextEvent<FdSocket>(server, 'connection');
    const forwarder = await SessionForwarder.connect(dir.file('s.sock'));
    const receiver = new SessionReceiver(await accepted);
    const [moved, peer] = FdSocket.pair('stream');
    const got = nextSession(receiver);
    forwarder.forward(moved.fd, Buffer.from('x'));
    const s = await got;
    expect(s.data.toString()).toBe('x');
    close(s.fd);
    forwarder.close();
    receiver.close();
    moved.close();
    peer.close();
    server.close();
  });
});
