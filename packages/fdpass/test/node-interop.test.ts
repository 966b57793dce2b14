import { once } from 'node:events';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { type AddressInfo, createConnection, createServer, type Server, Socket } from 'node:net';
import { tcpNoDelay } from '@handoff/testkit';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  closeFd,
  closeFds,
  duplicateFd,
  FdPassError,
  FdSocket,
  fdOf,
  type ReceivedMessage,
  serverFromFd,
  socketAdoptionPath,
  socketFromFd,
  writeNow,
} from '../src/index.js';
import {
  expectFdCount,
  fdInfoFlags,
  isOpen,
  makeTempDir,
  nextEvent,
  O_CLOEXEC,
  openFdCount,
  type TempDir,
} from './helpers.js';

async function tcpServer(): Promise<Server> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

function port(server: Server): number {
  return (server.address() as AddressInfo).port;
}

let baseline = 0;
beforeEach(() => {
  baseline = openFdCount();
});
afterEach(async () => {
  await expectFdCount(baseline);
});

describe('fd primitives', () => {
  it('duplicateFd gives an O_CLOEXEC copy of the same file; closeFd closes; errors are typed', () => {
    const fd = openSync('/dev/null', 'r');
    const dup = duplicateFd(fd);
    expect(dup).not.toBe(fd);
    expect(fstatSync(dup).ino).toBe(fstatSync(fd).ino);
    expect(fdInfoFlags(dup) & O_CLOEXEC).toBe(O_CLOEXEC);
    closeFd(dup);
    expect(isOpen(dup)).toBe(false);
    closeSync(fd);
    expect(() => closeFd(dup)).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'close' }),
    );
    expect(() => duplicateFd(dup)).toThrow(FdPassError);
    expect(() => closeFd(-1)).toThrow(TypeError);
  });

  it('closeFds closes a whole list in one call (number[] or Int32Array), each distinct fd once', () => {
    const fds = Array.from({ length: 5 }, () => openSync('/dev/null', 'r'));
    closeFds([fds[0] as number, fds[1] as number, fds[0] as number]);
    expect(fds.map(isOpen)).toEqual([false, false, true, true, true]);
    closeFds(Int32Array.of(fds[2] as number, fds[3] as number));
    expect(fds.map(isOpen)).toEqual([false, false, false, false, true]);
    closeFds([]);
    closeFds(new Int32Array(0));
    // A usage error closes nothing.
    expect(() => closeFds([fds[4] as number, -1])).toThrow(TypeError);
    expect(() => closeFds([fds[4] as number, 1.5])).toThrow(TypeError);
    expect(() => closeFds(Int32Array.of(fds[4] as number, -3))).toThrow(TypeError);
    expect(() => closeFds('3' as unknown as number[])).toThrow(TypeError);
    expect(isOpen(fds[4] as number)).toBe(true);
    // A bad fd is reported (typed), after every other fd was still closed.
    const last = fds[4] as number;
    const next = openSync('/dev/null', 'r');
    const neverOpen = 1_000_000;
    expect(() => closeFds([neverOpen, last, next])).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'close' }),
    );
    expect(isOpen(last)).toBe(false);
    expect(isOpen(next)).toBe(false);
  });

  it('a plain file fd passed over a socket reads like the original', async () => {
    const [a, b] = FdSocket.pair();
    const fd = openSync('/proc/self/exe', 'r');
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('f'), [fd]);
    const received = (await got).fds[0] as number;
    const head = Buffer.alloc(4);
    readSync(received, head, 0, 4, 0);
    expect(head.toString('latin1')).toBe('\x7fELF');
    closeFd(received);
    closeSync(fd);
    a.close();
    b.close();
  });
});

describe('fdOf', () => {
  it('borrows the fd of a net.Socket and a net.Server', async () => {
    const server = await tcpServer();
    expect(fdOf(server)).toBeGreaterThan(2);
    const client = createConnection(port(server), '127.0.0.1');
    await once(client, 'connect');
    expect(fdOf(client)).toBeGreaterThan(2);
    client.destroy();
    await new Promise((r) => server.close(r));
    expect(() => fdOf(client)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_FD' }));
  });
});

describe('socketFromFd', () => {
  it('adopts a TCP connection received over an FdSocket and serves traffic on it', async () => {
    const server = await tcpServer();
    const accepted = once(server, 'connection');
    const client = createConnection(port(server), '127.0.0.1');
    await once(client, 'connect');
    const [original] = (await accepted) as [Socket];
    original.pause();

    const [a, b] = FdSocket.pair();
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('tcp'), [fdOf(original)]);
    const [fd] = (await got).fds as [number];
    original.destroy();

    const adopted = socketFromFd(fd);
    expect(adopted.remotePort).toBe(client.localPort);
    adopted.setEncoding('utf8');
    adopted.on('data', (chunk: string) => adopted.write(chunk.toUpperCase()));
    client.setEncoding('utf8');
    const reply = once(client, 'data');
    client.write('hello adopted');
    expect((await reply)[0]).toBe('HELLO ADOPTED');

    client.destroy();
    await once(adopted, 'close');
    a.close();
    b.close();
    await new Promise((r) => server.close(r));
  });

  it('builds on a Pipe handle when the caller names the transport; a dead fd fails typed', async () => {
    expect(socketAdoptionPath()).toBe('handle');
    const [a, b] = FdSocket.pair('stream');
    const peer = socketFromFd(duplicateFd(a.fd));
    const adopted = socketFromFd(duplicateFd(b.fd), { transport: 'unix', allowHalfOpen: true });
    a.close();
    b.close();
    adopted.setEncoding('utf8');
    let got = '';
    adopted.on('data', (chunk: string) => {
      got += chunk;
    });
    const ended = once(adopted, 'end');
    peer.end('half');
    await ended;
    // allowHalfOpen: our side still writes after the peer's end.
    expect(got).toBe('half');
    expect(adopted.writable).toBe(true);
    peer.setEncoding('utf8');
    const back = once(peer, 'data');
    const closed = once(adopted, 'close');
    adopted.end('closed');
    expect((await back)[0]).toBe('closed');
    await closed;
    peer.destroy();

    const dead = openSync('/dev/null', 'r');
    closeSync(dead);
    for (const transport of ['unix', 'tcp'] as const) {
      expect(() => socketFromFd(dead, { transport })).toThrow(
        expect.objectContaining({ name: 'FdPassError', code: 'EBADF', syscall: 'open' }),
      );
    }
  });

  it('noDelay records TCP_NODELAY the fd already has, so setNoDelay(true) makes no setsockopt', async () => {
    const server = await tcpServer();
    const client = createConnection(port(server), '127.0.0.1');
    const [original] = (await once(server, 'connection')) as [Socket];
    original.pause();
    // net.createServer leaves Nagle on: the kernel says so.
    const recorded = socketFromFd(duplicateFd(fdOf(original)), {
      transport: 'tcp',
      noDelay: true,
    });
    expect(await tcpNoDelay(fdOf(recorded))).toBe(false);
    // Told the option is on already, the socket does not ask the kernel…
    recorded.setNoDelay(true);
    expect(await tcpNoDelay(fdOf(recorded))).toBe(false);
    // …and any real change still reaches it.
    recorded.setNoDelay(false);
    recorded.setNoDelay(true);
    expect(await tcpNoDelay(fdOf(recorded))).toBe(true);
    // Without noDelay, setNoDelay(true) sets it.
    original.setNoDelay(false);
    const plain = socketFromFd(duplicateFd(fdOf(original)), { transport: 'tcp' });
    plain.setNoDelay(true);
    expect(await tcpNoDelay(fdOf(plain))).toBe(true);
    for (const s of [recorded, plain, original, client]) s.destroy();
    await new Promise((r) => server.close(r));
  });

  it('refuses non-stream fds and leaves them with the caller', () => {
    const fd = openSync('/dev/null', 'r');
    expect(() => socketFromFd(fd)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
    const [a, b] = FdSocket.pair('seqpacket');
    expect(() => socketFromFd(a.fd)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_FD' }));
    expect(isOpen(fd)).toBe(true);
    closeSync(fd);
    a.close();
    b.close();
  });
});

describe('serverFromFd', () => {
  it('adopts a listening TCP socket received over an FdSocket; it accepts connections', async () => {
    const original = await tcpServer();
    const listenPort = port(original);
    const [a, b] = FdSocket.pair();
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('listener'), [fdOf(original)]);
    const [fd] = (await got).fds as [number];
    await new Promise((r) => original.close(r));

    const adopted = await serverFromFd(fd);
    adopted.on('connection', (s: Socket) => s.end('served by the adopted server'));
    const client = createConnection(listenPort, '127.0.0.1');
    client.setEncoding('utf8');
    let text = '';
    client.on('data', (c: string) => {
      text += c;
    });
    await once(client, 'end');
    expect(text).toBe('served by the adopted server');
    client.destroy();
    await new Promise((r) => adopted.close(r));
    a.close();
    b.close();
  });

  it('rejects a socket that is not listening (caller keeps it)', async () => {
    const [a, b] = FdSocket.pair('stream');
    await expect(serverFromFd(a.fd)).rejects.toMatchObject({ code: 'ERR_INVALID_FD' });
    a.close();
    b.close();
  });
});

describe('FdSocket.adopt of an fd Node is already watching', () => {
  it('fails typed and leaves the fd (and the net.Socket) alone', async () => {
    const dir = makeTempDir();
    try {
      const server = createServer((s) => s.end('still fine'));
      server.listen(dir.file('n.sock'));
      await once(server, 'listening');
      const client = createConnection(dir.file('n.sock'));
      await once(client, 'connect');
      expect(() => FdSocket.adopt(fdOf(client))).toThrow(
        expect.objectContaining({ code: 'EEXIST', syscall: 'uv_poll_init' }),
      );
      client.setEncoding('utf8');
      const [text] = await once(client, 'data');
      expect(text).toBe('still fine');
      client.destroy();
      await new Promise((r) => server.close(r));
    } finally {
      dir.cleanup();
    }
  });
});

describe('writeNow', () => {
  let dir: TempDir;
  beforeEach(() => {
    dir = makeTempDir();
  });
  afterEach(() => dir.cleanup());

  /** A Unix server whose every connection's bytes are collected until it ends. */
  async function collectingServer(path: string, { paused = false } = {}) {
    const received: Promise<Buffer>[] = [];
    const peers: Socket[] = [];
    const server = createServer((peer) => {
      peers.push(peer);
      if (paused) peer.pause();
      received.push(
        (async () => {
          const chunks: Buffer[] = [];
          for await (const chunk of peer) chunks.push(chunk as Buffer);
          return Buffer.concat(chunks);
        })(),
      );
    });
    server.listen(path);
    await once(server, 'listening');
    return { server, received, peers };
  }

  it('queues the bytes at the peer inside the call, before the connect callback; the rest follows in order', async () => {
    const { server, received } = await collectingServer(dir.file('w.sock'));
    const head = Buffer.from('first bytes, ');
    const tail = Buffer.from('then the rest');
    const client = createConnection(dir.file('w.sock'));
    // A Unix connect is settled inside connect(): the kernel takes the bytes now.
    expect(client.connecting).toBe(true);
    expect(writeNow(client, head)).toBe(head.length);
    client.end(tail);
    await once(client, 'close');
    expect((await received[0])!.toString()).toBe('first bytes, then the rest');
    await new Promise((r) => server.close(r));
  });

  it('takes nothing while Node holds writes for the socket, or once it is ended or destroyed', async () => {
    const { server, received } = await collectingServer(dir.file('q.sock'));
    const client = createConnection(dir.file('q.sock'));
    client.write('queued by Node, ');
    expect(client.writableLength).toBeGreaterThan(0);
    expect(writeNow(client, Buffer.from('must not overtake'))).toBe(0);
    client.end('then this');
    expect(writeNow(client, Buffer.from('after end'))).toBe(0);
    await once(client, 'close');
    expect(writeNow(client, Buffer.from('after destroy'))).toBe(0);
    expect(writeNow(client, new Uint8Array(0))).toBe(0);
    expect((await received[0])!.toString()).toBe('queued by Node, then this');
    // Ended while connecting, with nothing queued: the FIN is Node's last word.
    const ended = createConnection(dir.file('q.sock'));
    ended.end();
    expect(writeNow(ended, Buffer.from('after end'))).toBe(0);
    await once(ended, 'close');
    expect((await received[1])!.length).toBe(0);
    await new Promise((r) => server.close(r));
  });

  it('takes nothing from a socket whose connect failed; the error is still Node’s to report', async () => {
    const client = createConnection(dir.file('nobody.sock'));
    const failed = nextEvent<NodeJS.ErrnoException>(client, 'error');
    expect(writeNow(client, Buffer.from('lost?'))).toBe(0);
    expect((await failed).code).toBe('ENOENT');
  });

  it('takes what fits when the buffer fills, and the remainder written by Node arrives whole and in order', async () => {
    const { server, received, peers } = await collectingServer(dir.file('f.sock'), {
      paused: true,
    });
    const data = Buffer.alloc(4 << 20);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
    const client = createConnection(dir.file('f.sock'));
    const taken = writeNow(client, data);
    // The peer reads nothing yet: the kernel takes a socket buffer's worth.
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(data.length);
    expect(writeNow(client, data.subarray(taken))).toBe(0);
    client.end(data.subarray(taken));
    await once(client, 'connect');
    while (peers.length === 0) await new Promise((r) => setImmediate(r));
    peers[0]!.resume();
    await once(client, 'close');
    expect((await received[0])!.equals(data)).toBe(true);
    await new Promise((r) => server.close(r));
  });

  it('raises no SIGPIPE on a peer that has gone: it takes nothing, and Node reports the write', async () => {
    const server = createServer((peer) => peer.destroy());
    server.listen(dir.file('gone.sock'));
    await once(server, 'listening');
    const client = createConnection(dir.file('gone.sock'));
    client.on('error', () => {});
    await once(client, 'end');
    expect(writeNow(client, Buffer.from('into the void'))).toBe(0);
    client.destroy();
    await new Promise((r) => server.close(r));
  });

  it('splits anywhere: what writeNow took and what Node wrote after it arrive as one stream', async () => {
    const { server, received } = await collectingServer(dir.file('p.sock'));
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 70_000 }),
        fc.nat(),
        async (bytes, cut) => {
          const at = cut % (bytes.length + 1);
          const client = createConnection(dir.file('p.sock'));
          const taken = writeNow(client, bytes.subarray(0, at));
          expect(taken).toBe(at);
          client.end(bytes.subarray(at));
          await once(client, 'close');
          expect(Buffer.from(bytes).equals((await received.at(-1))!)).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
    await new Promise((r) => server.close(r));
  });

  it('refuses what is not a net.Socket and bytes, typed', () => {
    expect(() => writeNow({} as Socket, Buffer.from('x'))).toThrow(TypeError);
    expect(() => writeNow(new Socket(), 'x' as unknown as Uint8Array)).toThrow(TypeError);
  });
});
