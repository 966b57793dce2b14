import { once } from 'node:events';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import {
  type AddressInfo,
  createConnection,
  createServer,
  type Server,
  type Socket,
} from 'node:net';
import { tcpNoDelay } from '@handoff/testkit';
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
} from '../src/index.js';
import {
  expectFdCount,
  fdInfoFlags,
  isOpen,
  makeTempDir,
  nextEvent,
  O_CLOEXEC,
  openFdCount,
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
