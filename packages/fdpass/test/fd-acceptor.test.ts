import { once } from 'node:events';
import { closeSync, existsSync, openSync, statSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { closeFds, duplicateFd, FdAcceptor, FdSocket, fdOf, socketFromFd } from '../src/index.js';
import { expectFdCount, makeTempDir, nextEvent, openFdCount, type TempDir } from './helpers.js';

let dir: TempDir;
let baseline = 0;
beforeEach(() => {
  dir = makeTempDir();
  baseline = openFdCount();
});
afterEach(async () => {
  try {
    await expectFdCount(baseline);
  } finally {
    dir.cleanup();
  }
});

/** A listening TCP socket on 127.0.0.1 as a raw fd (a duplicate; Node's handle is closed). */
async function tcpListener(): Promise<{ fd: number; port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const fd = duplicateFd(fdOf(server));
  server.close();
  return { fd, port };
}

function dial(port: number, n: number): Socket[] {
  return Array.from({ length: n }, () => connect(port, '127.0.0.1'));
}

describe('FdAcceptor', () => {
  it('accepts TCP connections as raw fds, in batches, and they work as sockets', async () => {
    const { fd, port } = await tcpListener();
    const acceptor = FdAcceptor.fromFd(fd);
    const got: number[] = [];
    acceptor.on('connections', (fds: number[]) => got.push(...fds));
    const clients = dial(port, 5);
    await vi.waitFor(() => expect(got).toHaveLength(5));
    const server = socketFromFd(got[0]!);
    server.end('hi');
    const [c] = clients;
    c!.setEncoding('utf8');
    const [data] = (await once(c!, 'data')) as [string];
    expect(data).toBe('hi');
    closeFds(got.slice(1));
    for (const s of clients) s.destroy();
    server.destroy();
    acceptor.close();
    await once(acceptor, 'close');
  });

  it('pause() leaves new connections in the kernel backlog; resume() takes them', async () => {
    const { fd, port } = await tcpListener();
    const acceptor = FdAcceptor.fromFd(fd);
    const got: number[] = [];
    acceptor.on('connections', (fds: number[]) => got.push(...fds));
    acceptor.pause();
    expect(acceptor.paused).toBe(true);
    const clients = dial(port, 3);
    // The handshakes complete (the kernel accepts into the backlog)...
    await Promise.all(clients.map((c) => once(c, 'connect')));
    await new Promise((r) => setTimeout(r, 50));
    // ...but nothing was accept()ed.
    expect(got).toEqual([]);
    acceptor.resume();
    await vi.waitFor(() => expect(got).toHaveLength(3));
    closeFds(got);
    for (const c of clients) c.destroy();
    acceptor.close();
  });

  it('acceptBudget caps one readiness event; acceptNow drains the backlog synchronously', async () => {
    const { fd, port } = await tcpListener();
    const acceptor = FdAcceptor.fromFd(fd, { acceptBudget: 2 });
    acceptor.pause();
    const clients = dial(port, 5);
    await Promise.all(clients.map((c) => once(c, 'connect')));
    const batches: number[][] = [];
    acceptor.on('connections', (fds: number[]) => batches.push(fds));
    acceptor.resume();
    await vi.waitFor(() => expect(batches.flat()).toHaveLength(5));
    expect(Math.max(...batches.map((b) => b.length))).toBeLessThanOrEqual(2);
    acceptor.pause();
    const more = dial(port, 4);
    await Promise.all(more.map((c) => once(c, 'connect')));
    const now = acceptor.acceptNow(10);
    expect(now).toHaveLength(4);
    expect(acceptor.acceptNow(10)).toEqual([]);
    expect(() => (acceptor.acceptBudget = 0)).toThrow(TypeError);
    closeFds([...batches.flat(), ...now]);
    for (const c of [...clients, ...more]) c.destroy();
    acceptor.close();
    expect(() => acceptor.acceptNow(1)).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }),
    );
  });

  it('closes what it accepts when nobody listens for connections', async () => {
    const { fd, port } = await tcpListener();
    const acceptor = FdAcceptor.fromFd(fd);
    const [c] = dial(port, 1);
    const closed = once(c!, 'close');
    let ended = false;
    c!.on('end', () => {
      ended = true;
    });
    await once(c!, 'connect');
    // The acceptor closed the fd it had nobody to hand to: the client reads end-of-file.
    await vi.waitFor(
      () => expect(ended, 'the acceptor never closed the connection it accepted').toBe(true),
      { timeout: 5_000 },
    );
    await closed;
    acceptor.close();
  });

  it('listen(path): a Unix stream listener with mode, unlinked on close, never replacing a file', async () => {
    const path = dir.file('a.sock');
    const acceptor = await FdAcceptor.listen(path, { mode: 0o600 });
    expect(acceptor.path).toBe(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const got = nextEvent<number[]>(acceptor, 'connections');
    const client = connect(path);
    const fds = await got;
    expect(fds).toHaveLength(1);
    closeFds(fds);
    client.destroy();
    const closed = nextEvent(acceptor, 'close');
    acceptor.close();
    acceptor.close();
    await closed;
    expect(existsSync(path)).toBe(false);
    writeFileSync(dir.file('taken'), 'x');
    await expect(FdAcceptor.listen(dir.file('taken'))).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });

  it('fromFd refuses what is not a listening stream socket, and the caller keeps the fd', () => {
    const file = openSync('/dev/null', 'r');
    expect(() => FdAcceptor.fromFd(file)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
    closeSync(file);
    const [a, b] = FdSocket.pair('stream');
    expect(() => FdAcceptor.fromFd(a.fd)).toThrow(
      expect.objectContaining({
        code: 'ERR_INVALID_FD',
        message: expect.stringContaining('not listening'),
      }),
    );
    expect(a.closed).toBe(false);
    a.close();
    b.close();
    expect(() => FdAcceptor.fromFd(-1)).toThrow(TypeError);
  });
});
