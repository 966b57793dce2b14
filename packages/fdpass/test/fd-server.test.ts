import { existsSync, statSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FdServer, FdSocket, type ReceivedMessage } from '../src/index.js';
import { loadNative } from '../src/native-loader.js';
import {
  expectFdCount,
  isOpen,
  makeTempDir,
  nextEvent,
  openFdCount,
  type TempDir,
} from './helpers.js';

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

describe.each(['seqpacket', 'stream'] as const)('FdServer (%s)', (kind) => {
  it('listens on a path, accepts, and both sides exchange fds', async () => {
    const path = dir.file('srv.sock');
    const server = await FdServer.listen(path, { kind, mode: 0o600 });
    expect(server.path).toBe(path);
    expect(server.fd).toBeGreaterThan(2);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const accepted = nextEvent<FdSocket>(server, 'connection');
    const client = await FdSocket.connect(path, { kind });
    const serverSide = await accepted;
    expect(serverSide.kind).toBe(kind);
    const got = nextEvent<ReceivedMessage>(client, 'message');
    serverSide.write(Buffer.from('welcome'), [serverSide.fd]);
    const m = await got;
    expect(m.data.toString()).toBe('welcome');
    expect(m.fds).toHaveLength(1);
    for (const fd of m.fds) FdSocket.adopt(fd).close();
    client.close();
    serverSide.close();
    const closed = nextEvent(server, 'close');
    server.close();
    server.close();
    await closed;
    expect(existsSync(path)).toBe(false);
  });
});

describe('FdServer / connect errors', () => {
  it('connect to a missing path or to a file nobody listens on fails typed', async () => {
    await expect(FdSocket.connect(dir.file('none.sock'))).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'connect',
    });
    writeFileSync(dir.file('plain'), 'x');
    await expect(FdSocket.connect(dir.file('plain'))).rejects.toMatchObject({
      code: 'ECONNREFUSED',
      syscall: 'connect',
    });
  });

  it('refuses to replace an existing path and never unlinks a file it did not create', async () => {
    const path = dir.file('taken.sock');
    const first = await FdServer.listen(path);
    await expect(FdServer.listen(path)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    first.close();
    expect(existsSync(path)).toBe(false);
  });

  it('honours an AbortSignal that is already aborted', async () => {
    const path = dir.file('abort.sock');
    const server = await FdServer.listen(path);
    await expect(FdSocket.connect(path, { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
    server.close();
  });

  it('validates options with usage errors', async () => {
    await expect(FdServer.listen('')).rejects.toThrow(TypeError);
    await expect(FdServer.listen(dir.file('x'), { backlog: -1 })).rejects.toThrow(/Usage/);
    await expect(FdSocket.connect(dir.file('x'), { maxFdsPerMessage: 300 })).rejects.toThrow(
      /Usage/,
    );
  });
});

describe('FdServer.fromFd', () => {
  it('adopts a listening socket, learns its kind and path, and leaves the file on close', async () => {
    const native = loadNative();
    const path = dir.file('adopted.sock');
    const fd = native.listen(path, native.constants.SOCK_STREAM, 16, 0o600);
    const server = FdServer.fromFd(fd, { reserveFd: true });
    expect(server.kind).toBe('stream');
    expect(server.path).toBe(path);
    expect(server.fd).toBe(fd);
    const accepted = nextEvent<FdSocket>(server, 'connection');
    const client = await FdSocket.connect(path, { kind: 'stream' });
    const serverSide = await accepted;
    const got = nextEvent<ReceivedMessage>(client, 'message');
    serverSide.write(Buffer.from('hi'));
    expect((await got).data.toString()).toBe('hi');
    client.close();
    serverSide.close();
    const closed = nextEvent(server, 'close');
    server.close();
    await closed;
    // The file belongs to whoever bound it (a service manager, say).
    expect(statSync(path).isSocket()).toBe(true);
  });

  it('refuses a socket that is not listening, and the caller keeps the fd', () => {
    const [a, b] = FdSocket.pair('stream');
    expect(() => FdServer.fromFd(a.fd)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_FD' }),
    );
    expect(isOpen(a.fd)).toBe(true);
    expect(() => FdServer.fromFd(-1)).toThrow(TypeError);
    a.close();
    b.close();
  });
});

describe('FdServer / accept order', () => {
  it('hands over one waiting connection, lets its turn run, then takes the rest before the next poll', async () => {
    const path = dir.file('order.sock');
    const server = await FdServer.listen(path, { kind: 'stream' });
    server.pause();
    const clients = await Promise.all(
      [1, 2, 3].map(() => FdSocket.connect(path, { kind: 'stream' })),
    );
    const events: string[] = [];
    const sockets: FdSocket[] = [];
    let polled = false;
    const all = new Promise<void>((resolve) => {
      server.on('connection', (socket: FdSocket) => {
        const n = sockets.push(socket);
        events.push(`connection ${n}`);
        // Work the first connection's handler leaves for later in its turn.
        queueMicrotask(() => events.push(`microtask ${n}`));
        // Set in the poll phase, a timer fires in the next turn at the earliest.
        if (n === 1)
          setTimeout(() => {
            polled = true;
          }, 0);
        if (n === 3) resolve();
      });
    });
    server.resume();
    await all;
    expect(events.slice(0, 3)).toEqual(['connection 1', 'microtask 1', 'connection 2']);
    expect(events).toHaveLength(6);
    expect(polled).toBe(false);
    for (const s of [...sockets, ...clients]) s.close();
    server.close();
  });
});
