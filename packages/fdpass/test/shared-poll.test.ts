// The shared epoll set behind the sockets fdpass makes itself
// (native/nested_poll.h): one epoll_ctl per watch change instead of
// uv_poll's five syscalls per socket. What must hold: a socket sent away and
// closed leaves the set (its file lives on elsewhere and would keep the set
// readable), a socket closed while its event is pending never hears of it,
// many sockets share one set, and fds and registrations come back to where
// they were. Ref/unref of the loop is in shared-poll-ref.int.test.ts.
import { createConnection, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FdServer, FdSocket, type ReceivedMessage } from '../src/index.js';
import { loadNative } from '../src/native-loader.js';
import { expectFdCount, makeTempDir, nextEvent, openFdCount } from './helpers.js';
import { sharedSetFds, sharedSetStats } from './shared-set.js';

const stats = sharedSetStats;
const registeredFds = sharedSetFds;

const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

describe.skipIf(process.platform !== 'linux')('shared epoll set', () => {
  it('pairs, accepted and connected sockets join it; adopted fds do not', async () => {
    const [a, b] = FdSocket.pair('stream');
    a.on('message', () => {});
    await turns(1);
    expect(registeredFds()).toContain(a.fd);
    // An adopted fd keeps its own uv_poll_t: it may be one Node watches too.
    const [c, d] = FdSocket.pair('stream');
    const dupOfC = loadNative().dupFd(c.fd);
    const adopted = FdSocket.adopt(dupOfC);
    adopted.on('message', () => {});
    await turns(1);
    expect(registeredFds()).not.toContain(dupOfC);
    for (const s of [a, b, c, d, adopted]) s.close();
  });

  it('a watched socket sent away (SCM_RIGHTS) and closed leaves the set; its data wakes nothing here', async () => {
    const fdsBefore = openFdCount();
    const [x, peer] = FdSocket.pair('stream');
    const [chanA, chanB] = FdSocket.pair('seqpacket');
    x.on('message', () => {
      throw new Error('x must never read after it is closed');
    });
    await turns(1);
    expect(registeredFds()).toContain(x.fd);
    const xFd = x.fd;
    const sent = nextEvent<ReceivedMessage>(chanB, 'message');
    chanA.write(new Uint8Array([1]), [x.fd]);
    const [away] = (await sent).fds;
    if (away === undefined) throw new Error('no fd received');
    x.close();
    // Its file is still open (as `away`), so only an explicit DEL removes it.
    expect(registeredFds()).not.toContain(xFd);
    const wakes = stats().wakes;
    const stale = stats().stale;
    peer.write(new TextEncoder().encode('late'));
    // A registration left behind would report this byte on every loop turn.
    await turns(20);
    expect(stats().wakes).toBe(wakes);
    expect(stats().stale).toBe(stale);
    // The bytes are all there for the new owner.
    const owner = FdSocket.adopt(away);
    const got = await nextEvent<ReceivedMessage>(owner, 'message');
    expect(new TextDecoder().decode(got.data)).toBe('late');
    for (const s of [owner, peer, chanA, chanB]) s.close();
    await expectFdCount(fdsBefore);
  });

  it('a socket closed while its event is pending in the same batch never hears of it', async () => {
    const [a1, p1] = FdSocket.pair('stream');
    const [a2, p2] = FdSocket.pair('stream');
    const heard: string[] = [];
    let reused: FdSocket[] = [];
    a1.on('message', () => {
      heard.push('a1');
      a2.close();
      // The lowest free number is a2's: a new socket may take it in the
      // middle of the batch, and must not get a2's event either.
      reused = FdSocket.pair('stream');
      for (const s of reused) s.on('message', () => heard.push('reused'));
    });
    a2.on('message', () => heard.push('a2'));
    await turns(1);
    const stale = stats().stale;
    // Both ready before the loop polls: one epoll_wait returns both, a1 first.
    p1.write(new Uint8Array([1]));
    p2.write(new Uint8Array([2]));
    await nextEvent(a2, 'close');
    await turns(5);
    expect(heard).toEqual(['a1']);
    expect(stats().stale).toBe(stale + 1);
    for (const s of [a1, p1, p2, ...reused]) s.close();
  });

  it('many sockets on one loop: all served, then the set and the fd table are as before', async () => {
    const fdsBefore = openFdCount();
    const before = stats();
    const pairs = Array.from({ length: 300 }, () => FdSocket.pair('seqpacket'));
    expect(stats().entries).toBe(before.entries + 600);
    const received = pairs.map(([, b], i) =>
      nextEvent<ReceivedMessage>(b, 'message').then((m) => {
        expect(m.data[0]).toBe(i & 0xff);
        expect(m.data[1]).toBe(i >> 8);
      }),
    );
    await turns(1);
    expect(stats().registered).toBe(before.registered + 300);
    for (const [i, [a]] of pairs.entries()) a.write(new Uint8Array([i & 0xff, i >> 8]));
    await Promise.all(received);
    for (const [a, b] of pairs) {
      a.close();
      b.close();
    }
    expect(stats().entries).toBe(before.entries);
    expect(stats().registered).toBe(before.registered);
    await expectFdCount(fdsBefore);
  });

  it('stop and restart of reading: one registration change each, no events while paused', async () => {
    const [a, b] = FdSocket.pair('stream');
    const got: number[] = [];
    a.on('message', (m: ReceivedMessage) => got.push(...m.data));
    await turns(1);
    a.pause();
    expect(registeredFds()).not.toContain(a.fd);
    const wakes = stats().wakes;
    b.write(new Uint8Array([7]));
    await turns(10);
    expect(stats().wakes).toBe(wakes);
    expect(got).toEqual([]);
    a.resume();
    await expect.poll(() => got).toEqual([7]);
    a.close();
    b.close();
  });
});

describe.skipIf(process.platform !== 'linux')('a socket that keeps waking up', () => {
  /** Sends `n` messages from `from`, each once `to` has read the one before: n wake-ups of `to`. */
  async function pingOneByOne(from: FdSocket, got: string[], n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const before = got.length;
      from.write(new TextEncoder().encode(`${got.length};`));
      await expect.poll(() => got.length).toBe(before + 1);
    }
  }

  it('moves to a poll of its own after 8 wake-ups and still hears everything', async () => {
    const fdsBefore = openFdCount();
    const [a, b] = FdSocket.pair('stream');
    const got: string[] = [];
    b.on('message', ({ data }: ReceivedMessage) => got.push(new TextDecoder().decode(data)));
    await pingOneByOne(a, got, 7);
    // Seven wake-ups: still one of the many in the shared set.
    expect(registeredFds()).toContain(b.fd);
    await pingOneByOne(a, got, 1);
    expect(registeredFds()).not.toContain(b.fd);
    // From here its wake-ups are its own poll's, not the shared set's.
    const wakes = stats().wakes;
    await pingOneByOne(a, got, 12);
    expect(stats().wakes).toBe(wakes);
    expect(got.join('')).toBe(Array.from({ length: 20 }, (_, i) => `${i};`).join(''));

    // Paused, it reads nothing; resumed, it gets what waited.
    b.pause();
    a.write(new TextEncoder().encode('while paused;'));
    await turns(10);
    expect(got).toHaveLength(20);
    b.resume();
    await expect.poll(() => got.at(-1)).toBe('while paused;');

    // Its writable watch still works: fill a's receive queue, then drain it.
    a.pause();
    const chunk = new Uint8Array(64 * 1024);
    let queued = 0;
    while (b.write(chunk)) queued++;
    expect(b.writableLength).toBeGreaterThan(0);
    const drained = nextEvent(b, 'drain');
    let read = 0;
    a.on('message', ({ data }: ReceivedMessage) => {
      read += data.length;
    });
    a.resume();
    await drained;
    await expect.poll(() => read).toBe((queued + 1) * chunk.length);
    a.close();
    b.close();
    await expectFdCount(fdsBefore);
  });

  it('a socket that moved and is then closed mid-batch leaves no fd and no watch behind', async () => {
    const fdsBefore = openFdCount();
    const [a, b] = FdSocket.pair('seqpacket');
    const got: string[] = [];
    b.on('message', ({ data }: ReceivedMessage) => {
      got.push(new TextDecoder().decode(data));
      if (got.length === 10) b.close();
    });
    await pingOneByOne(a, got, 9);
    expect(registeredFds()).not.toContain(b.fd);
    // Two messages in one wake-up: the first closes b, the second is never read.
    a.write(new TextEncoder().encode('last'));
    a.write(new TextEncoder().encode('never'));
    await expect.poll(() => b.closed).toBe(true);
    await turns(5);
    expect(got).toHaveLength(10);
    a.close();
    await expectFdCount(fdsBefore);
  });
});

describe.skipIf(process.platform !== 'linux')('the first read of an accepted socket', () => {
  // A net.Socket client stays out of the shared set (and the listener has a
  // watcher of its own): every wake counted here is an accepted socket's.
  function client(path: string): { socket: Socket; answer: Promise<string> } {
    const socket = createConnection(path);
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString();
    });
    return { socket, answer: new Promise((r) => socket.on('close', () => r(text))) };
  }

  async function echoServer(path: string): Promise<FdServer> {
    const server = await FdServer.listen(path, { kind: 'stream' });
    server.on('connection', (socket: FdSocket) => {
      let got = '';
      socket.on('message', ({ data }: ReceivedMessage) => {
        got += new TextDecoder().decode(data);
        if (!got.endsWith('.')) return;
        socket.write(new TextEncoder().encode(`got ${got}`));
        socket.close();
      });
      socket.on('end', () => socket.close());
    });
    return server;
  }

  it('reads what came with the connect before any watch: no wake, never in the set', async () => {
    const dir = makeTempDir();
    const server = await echoServer(dir.file('s.sock'));
    const fdsBefore = openFdCount();
    // The bytes wait in the kernel before the server accepts.
    server.pause();
    const { socket, answer } = client(dir.file('s.sock'));
    await new Promise<void>((r) => socket.write('hello.', () => r()));
    const wakes = stats().wakes;
    server.resume();
    expect(await answer).toBe('got hello.');
    expect(stats().wakes).toBe(wakes);
    await turns(2);
    expect(registeredFds()).toEqual([]);
    server.close();
    await expectFdCount(fdsBefore - 1);
    dir.cleanup();
  });

  it('still hears a client that writes later, in pieces, and one that only hangs up', async () => {
    const dir = makeTempDir();
    const server = await echoServer(dir.file('s.sock'));
    const late = client(dir.file('s.sock'));
    const wakes = stats().wakes;
    await new Promise((r) => late.socket.once('connect', r));
    await new Promise((r) => setTimeout(r, 20));
    late.socket.write('one ');
    await new Promise((r) => setTimeout(r, 20));
    late.socket.write('two.');
    expect(await late.answer).toBe('got one two.');
    // Watched this time: woken for each piece.
    expect(stats().wakes - wakes).toBeGreaterThanOrEqual(2);
    const silent = client(dir.file('s.sock'));
    silent.socket.once('connect', () => silent.socket.end());
    expect(await silent.answer).toBe('');
    server.close();
    dir.cleanup();
  });
});
