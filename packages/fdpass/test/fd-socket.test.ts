import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  closeFd,
  closeFds,
  duplicateFd,
  FdPassError,
  FdSocket,
  type ReceivedMessage,
  type SocketKind,
} from '../src/index.js';
import {
  expectFdCount,
  fdInfoFlags,
  isOpen,
  nextEvent,
  O_CLOEXEC,
  openFdCount,
  sameFile,
} from './helpers.js';

/**
 * Two connected raw stream fds (the sockets' own, duplicated), for fs I/O.
 * The addon made them, not fs: the caller owns them and closes them with closeFds.
 */
function rawStreamPair(): [number, number] {
  const [a, b] = FdSocket.pair('stream');
  const raw: [number, number] = [duplicateFd(a.fd), duplicateFd(b.fd)];
  a.close();
  b.close();
  return raw;
}

/** A pair whose receiving end was adopted with its own options. */
function pairWithReceiver(kind: SocketKind, receiverOpts: Parameters<typeof FdSocket.adopt>[1]) {
  const [tx, rxRaw] = FdSocket.pair(kind);
  const rx = FdSocket.adopt(duplicateFd(rxRaw.fd), receiverOpts);
  rxRaw.close();
  cleanup.push(() => {
    tx.close();
    rx.close();
  });
  return [tx, rx] as const;
}

function collect(socket: FdSocket, count: number): Promise<ReceivedMessage[]> {
  return new Promise((resolve, reject) => {
    const got: ReceivedMessage[] = [];
    const onMessage = (m: ReceivedMessage) => {
      got.push(m);
      if (got.length === count) {
        socket.off('message', onMessage);
        socket.off('error', reject);
        resolve(got);
      }
    };
    socket.on('message', onMessage);
    socket.on('error', reject);
  });
}

let baseline = 0;
const cleanup: Array<() => void> = [];

beforeEach(() => {
  baseline = openFdCount();
});

afterEach(async () => {
  for (const fn of cleanup.splice(0)) fn();
  await expectFdCount(baseline);
});

function pair(kind?: SocketKind, opts?: Parameters<typeof FdSocket.pair>[1]) {
  const [a, b] = FdSocket.pair(kind, opts);
  cleanup.push(() => {
    a.close();
    b.close();
  });
  return [a, b] as const;
}

describe.each(['seqpacket', 'stream'] as const)('FdSocket.pair(%s)', (kind) => {
  it('sends bytes with 0..253 fds and receives exactly those fds, real and open', async () => {
    const [a, b] = pair(kind);
    expect(a.kind).toBe(kind);
    const file = openSync('/proc/self/exe', 'r');
    cleanup.push(() => closeSync(file));
    const counts = [0, 1, 2, 7, 64, 128, 252, 253];
    const messages: ReceivedMessage[] = [];
    // One at a time: a stream socket would otherwise glue the fd-less first
    // write to the next one (see the attachment-rule test below).
    for (const n of counts) {
      const got = nextEvent<ReceivedMessage>(b, 'message');
      expect(a.write(Buffer.from(`n=${n};`), new Array<number>(n).fill(file))).toBe(true);
      messages.push(await got);
    }
    for (const [i, m] of messages.entries()) {
      const n = counts[i] as number;
      expect(m.data.toString()).toBe(`n=${n};`);
      expect(m.fds).toHaveLength(n);
      expect(new Set(m.fds).size).toBe(n);
      for (const fd of m.fds) {
        expect(sameFile(fd, file)).toBe(true);
        expect(fdInfoFlags(fd) & O_CLOEXEC).toBe(O_CLOEXEC);
      }
      closeFds(m.fds);
    }
  });

  it('received fds work: bytes written through one arrive at the other end', async () => {
    const [a, b] = pair(kind);
    const [left, right] = rawStreamPair();
    cleanup.push(() => closeFds([left, right]));
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('x'), [left]);
    const m = await got;
    const received = m.fds[0] as number;
    writeSync(received, 'through the passed fd');
    closeFd(received);
    const buf = Buffer.alloc(64);
    const n = readSync(right, buf);
    expect(buf.subarray(0, n).toString()).toBe('through the passed fd');
  });

  it('rejects 254 fds with ERR_TOO_MANY_FDS before any syscall', async () => {
    const [a, b] = pair(kind);
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    let error: unknown;
    try {
      a.write(Buffer.from('too many'), new Array<number>(254).fill(file));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FdPassError);
    expect((error as FdPassError).code).toBe('ERR_TOO_MANY_FDS');
    expect((error as FdPassError).syscall).toBeUndefined();
    expect(a.writableLength).toBe(0);
    // Nothing reached the peer: the next message is the first one it sees.
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('after'));
    expect((await got).data.toString()).toBe('after');
  });

  it('transfer: true closes the caller fds once sent, and on a rejected write', async () => {
    const [a, b] = pair(kind);
    const sent = openSync('/dev/null', 'r');
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('t'), [sent], { transfer: true });
    expect(isOpen(sent)).toBe(false);
    closeFds((await got).fds);
    const rejected = Array.from({ length: 254 }, () => openSync('/dev/null', 'r'));
    expect(() => a.write(Buffer.from('x'), rejected, { transfer: true })).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_MANY_FDS' }),
    );
    expect(rejected.some(isOpen)).toBe(false);
  });

  it('honours maxFdsPerMessage on send (typed error, no syscall)', () => {
    const [a] = pair(kind, { maxFdsPerMessage: 2 });
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    expect(a.write(Buffer.from('ok'), [file, file])).toBe(true);
    expect(() => a.write(Buffer.from('no'), [file, file, file])).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_MANY_FDS' }),
    );
  });

  it('a receiver with a smaller cap closes every fd that arrived and reports ERR_TOO_MANY_FDS', async () => {
    const [tx, rx] = pairWithReceiver(kind, { maxFdsPerMessage: 3 });
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    const before = openFdCount();
    const errors: FdPassError[] = [];
    rx.on('error', (e: FdPassError) => errors.push(e));
    const messages: ReceivedMessage[] = [];
    rx.on('message', (m: ReceivedMessage) => messages.push(m));
    tx.write(Buffer.from('ten'), new Array<number>(10).fill(file));
    // More fds than the receiver's control buffer holds: the kernel truncates
    // (MSG_CTRUNC) and the receiver must still close the ones that arrived.
    tx.write(Buffer.from('forty'), new Array<number>(40).fill(file));
    tx.write(Buffer.from('three'), [file, file, file]);
    await vi.waitFor(() => expect(messages.at(-1)?.data.toString()).toBe('three'));
    expect(errors.map((e) => e.code)).toEqual(['ERR_TOO_MANY_FDS', 'ERR_TOO_MANY_FDS']);
    // SEQPACKET drops the rejected message whole; a stream still delivers
    // its bytes (without fds) so the byte stream stays intact.
    expect(messages.map((m) => [m.data.toString(), m.fds.length])).toEqual(
      kind === 'stream'
        ? [
            ['ten', 0],
            ['forty', 0],
            ['three', 3],
          ]
        : [['three', 3]],
    );
    for (const m of messages) closeFds(m.fds);
    expect(openFdCount()).toBe(before);
  });

  it('queues under EAGAIN: write() returns false, then drain, and everything arrives in order', async () => {
    const [a, b] = pair(kind);
    const file = openSync('/dev/null', 'r');
    const payload = Buffer.alloc(1000, 7);
    let sent = 0;
    let accepted = true;
    while (accepted && sent < 100_000) {
      payload.writeUInt32BE(sent, 0);
      accepted = a.write(payload, [file]);
      sent++;
    }
    expect(accepted).toBe(false);
    expect(a.writableLength).toBeGreaterThan(0);
    // Queued fds were duplicated: the caller may close its own copy now.
    closeSync(file);
    const drained = nextEvent(a, 'drain');
    let received = 0;
    let expectedSeq = 0;
    let pending = Buffer.alloc(0);
    let fdsSeen = 0;
    const done = new Promise<void>((resolve) => {
      b.on('message', (m: ReceivedMessage) => {
        fdsSeen += m.fds.length;
        closeFds(m.fds);
        pending = Buffer.concat([pending, m.data]);
        while (pending.length >= 1000) {
          expect(pending.readUInt32BE(0)).toBe(expectedSeq++);
          pending = pending.subarray(1000);
          received++;
        }
        if (received === sent) resolve();
      });
    });
    await drained;
    await done;
    expect(fdsSeen).toBe(sent);
    expect(a.writableLength).toBe(0);
  });

  it('accepts fds as an Int32Array, sent directly and through the queue', async () => {
    const [a, b] = pair(kind);
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    const got = nextEvent<ReceivedMessage>(b, 'message');
    expect(a.write(Buffer.from('typed'), Int32Array.of(file, file))).toBe(true);
    const m = await got;
    expect(m.data.toString()).toBe('typed');
    expect(m.fds).toHaveLength(2);
    for (const fd of m.fds) expect(sameFile(fd, file)).toBe(true);
    closeFds(m.fds);
    expect(() => a.write(Buffer.from('x'), Int32Array.of(file, -1))).toThrow(TypeError);
    expect(() => a.write(Buffer.from('x'), new Int32Array(254).fill(file))).toThrow(
      expect.objectContaining({ code: 'ERR_TOO_MANY_FDS' }),
    );
    // Queued: the caller may reuse (and close) its typed array's fds at once.
    const reference = openSync('/proc/self/exe', 'r');
    cleanup.push(() => closeSync(reference));
    const own = openSync('/proc/self/exe', 'r');
    const list = Int32Array.of(own);
    let queuedAt = -1;
    for (let i = 0; i < 100_000 && queuedAt < 0; i++) {
      a.write(Buffer.alloc(1000), list);
      if (a.writableLength > 0) queuedAt = i;
    }
    expect(queuedAt).toBeGreaterThanOrEqual(0);
    closeSync(own);
    list[0] = 0x7fffffff; // reusing the array must not change what was queued
    let fdsSeen = 0;
    let messages = 0;
    await new Promise<void>((resolve) => {
      b.on('message', (r: ReceivedMessage) => {
        fdsSeen += r.fds.length;
        if (!r.fds.every((fd) => sameFile(fd, reference))) throw new Error('not the queued file');
        closeFds(r.fds);
        messages++;
        if (kind === 'seqpacket' ? messages === queuedAt + 1 : fdsSeen === queuedAt + 1) resolve();
      });
    });
    expect(fdsSeen).toBe(queuedAt + 1);
  });

  it('write() returns false once highWaterMessages messages are queued', async () => {
    const [a, b] = pair(kind, { highWaterMessages: 3, highWaterMark: 1 << 30 });
    const results: boolean[] = [];
    let sent = 0;
    for (; sent < 100_000; sent++) {
      const ok = a.write(Buffer.alloc(1000, sent & 0xff));
      if (a.writableLength > 0) results.push(ok);
      if (!ok) break;
    }
    // A partial stream write leaves its tail queued too, as one message.
    expect(results.at(-1)).toBe(false);
    expect(results.slice(0, -1).every((ok) => ok)).toBe(true);
    expect(results.length).toBeLessThanOrEqual(3);
    const drained = nextEvent(a, 'drain');
    let bytes = 0;
    b.on('message', (m: ReceivedMessage) => {
      bytes += m.data.length;
    });
    await drained;
    await vi.waitFor(() => expect(bytes).toBe((sent + 1) * 1000));
    expect(() => FdSocket.pair(kind, { highWaterMessages: -1 })).toThrow(TypeError);
  });

  it('a queued message holds one duplicate per distinct fd, however often it repeats', async () => {
    const [a, b] = pair(kind);
    const file = openSync('/dev/null', 'r');
    const other = openSync('/dev/null', 'r');
    let queued = false;
    for (let i = 0; i < 100_000 && !queued; i++) {
      a.write(Buffer.alloc(4096));
      queued = a.writableLength > 0;
    }
    const before = openFdCount();
    a.write(Buffer.from('repeat'), [file, other, file, file, other, file]);
    expect(a.writableFds).toBe(6);
    expect(openFdCount()).toBe(before + 2);
    closeSync(file);
    closeSync(other);
    const got = new Promise<ReceivedMessage>((resolve) => {
      b.on('message', (m: ReceivedMessage) => {
        if (m.fds.length > 0) resolve(m);
      });
    });
    const m = await got;
    expect(m.fds).toHaveLength(6);
    expect(new Set(m.fds).size).toBe(6);
    expect(sameFile(m.fds[0] as number, m.fds[2] as number)).toBe(true);
    closeFds(m.fds);
    await vi.waitFor(() => expect(a.writableFds).toBe(0));
    expect(openFdCount()).toBe(before - 2);
  });

  it('close() with queued fds closes them; close is idempotent and emits close once', async () => {
    const [a, b] = FdSocket.pair(kind);
    const file = openSync('/dev/null', 'r');
    const before = openFdCount();
    let queued = false;
    for (let i = 0; i < 100_000 && !queued; i++) {
      a.write(Buffer.alloc(4096), [file, file]);
      queued = a.writableFds > 0;
    }
    for (let i = 0; i < 10; i++) a.write(Buffer.alloc(10), [file, file]);
    expect(a.writableFds).toBeGreaterThan(0);
    expect(openFdCount()).toBeGreaterThan(before);
    let closes = 0;
    a.on('close', () => closes++);
    a.close();
    a.close();
    expect(a.closed).toBe(true);
    expect(a.fd).toBe(-1);
    expect(openFdCount()).toBe(before - 1);
    await new Promise((r) => setImmediate(r));
    expect(closes).toBe(1);
    b.close();
    closeSync(file);
    expect(() => a.write(Buffer.from('x'))).toThrow(
      expect.objectContaining({ code: 'ERR_SOCKET_CLOSED' }),
    );
  });

  it('async iterator yields messages in order and ends when the peer ends', async () => {
    const [a, b] = pair(kind);
    for (let i = 0; i < 200; i++) a.write(Buffer.from(`m${i};`));
    a.end();
    const text: string[] = [];
    for await (const m of b) text.push(m.data.toString());
    expect(text.join('')).toBe(Array.from({ length: 200 }, (_, i) => `m${i};`).join(''));
  });

  it('breaking out of the iterator closes the socket and buffered fds', async () => {
    const [a, b] = pair(kind);
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    for (let i = 0; i < 20; i++) a.write(Buffer.from('x'), [file]);
    for await (const m of b) {
      closeFds(m.fds);
      break;
    }
    expect(b.closed).toBe(true);
  });

  it('pause() stops delivery and resume() continues without loss', async () => {
    const [a, b] = pair(kind);
    const seen: string[] = [];
    b.on('message', (m: ReceivedMessage) => {
      seen.push(m.data.toString());
      if (seen.length === 1) b.pause();
    });
    for (let i = 0; i < 5; i++) a.write(Buffer.from(String(i)));
    await new Promise((r) => setTimeout(r, 30));
    const joined = () => seen.join('');
    expect(b.paused).toBe(true);
    const atPause = joined();
    b.resume();
    await new Promise<void>((resolve) => {
      const check = () => (joined() === '01234' ? resolve() : setTimeout(check, 5));
      check();
    });
    expect(atPause.length).toBeGreaterThan(0);
  });

  it('emits end then close when the peer closes', async () => {
    const [a, b] = pair(kind);
    const events: string[] = [];
    b.on('message', () => events.push('message'));
    b.on('end', () => events.push('end'));
    const closed = nextEvent(b, 'close');
    a.write(Buffer.from('last'));
    a.close();
    await closed;
    expect(events).toEqual(['message', 'end']);
  });

  it('a write to a closed peer emits a typed connection error and closes', async () => {
    const [a, b] = pair(kind);
    b.close();
    const err = nextEvent<FdPassError>(a, 'error');
    a.write(Buffer.from('into the void'));
    const e = await err;
    expect(e).toBeInstanceOf(FdPassError);
    expect(['EPIPE', 'ECONNRESET']).toContain(e.code);
    expect(e.syscall).toBe('sendmsg');
    expect(typeof e.errno).toBe('number');
    expect(a.closed).toBe(true);
  });
});

describe('SEQPACKET specifics', () => {
  it('keeps message boundaries and delivers empty messages (with and without fds)', async () => {
    const [a, b] = pair('seqpacket');
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    const got = collect(b, 4);
    a.write(Buffer.from('one'));
    a.write(Buffer.alloc(0), [file]);
    a.write(Buffer.alloc(0));
    a.write(Buffer.from('two'));
    const m = await got;
    expect(m.map((x) => x.data.toString())).toEqual(['one', '', '', 'two']);
    expect(m.map((x) => x.fds.length)).toEqual([0, 1, 0, 0]);
    closeFds(m[1]?.fds ?? []);
  });

  it('a message longer than maxMessageSize is ERR_DATA_TRUNCATED with its fds closed; the socket keeps working', async () => {
    const [tx, rx] = pairWithReceiver('seqpacket', { maxMessageSize: 16 });
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    const before = openFdCount();
    const err = new Promise<FdPassError>((resolve) => rx.once('error', resolve));
    const msg = new Promise<ReceivedMessage>((resolve) => rx.once('message', resolve));
    tx.write(Buffer.alloc(100, 1), [file, file]);
    tx.write(Buffer.from('small'), [file]);
    expect((await err).code).toBe('ERR_DATA_TRUNCATED');
    const m = await msg;
    expect(m.data.toString()).toBe('small');
    closeFds(m.fds);
    expect(openFdCount()).toBe(before);
  });

  it('a batch mixing good and rejected messages reports each in order and closes exactly the rejected fds', async () => {
    const [tx, rx] = pairWithReceiver('seqpacket', { maxMessageSize: 16, maxFdsPerMessage: 3 });
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    const before = openFdCount();
    // Everything is queued in the kernel before reading starts, so one
    // readiness event (one recvmmsg) reads the whole batch.
    tx.write(Buffer.from('first'), [file, file]);
    tx.write(Buffer.alloc(100, 1), [file, file, file]); // MSG_TRUNC
    tx.write(Buffer.from('second'), [file]);
    tx.write(Buffer.from('four'), [file, file, file, file]); // over the cap
    tx.write(Buffer.alloc(0));
    tx.write(Buffer.from('last'), [file, file, file]);
    const log: string[] = [];
    const kept: ReceivedMessage[] = [];
    rx.on('error', (e: FdPassError) => log.push(`error ${e.code}`));
    rx.on('message', (m: ReceivedMessage) => {
      log.push(`message ${m.data.toString()} ${m.fds.length}`);
      kept.push(m);
    });
    await vi.waitFor(() => expect(log).toHaveLength(6));
    expect(log).toEqual([
      'message first 2',
      'error ERR_DATA_TRUNCATED',
      'message second 1',
      'error ERR_TOO_MANY_FDS',
      'message  0',
      'message last 3',
    ]);
    // Only the delivered fds are open, each a real copy of the file.
    const delivered = kept.flatMap((m) => m.fds);
    expect(delivered).toHaveLength(6);
    for (const fd of delivered) expect(sameFile(fd, file)).toBe(true);
    expect(openFdCount()).toBe(before + 6);
    // A later batch does not disturb the bytes of an earlier one.
    const more = nextEvent<ReceivedMessage>(rx, 'message');
    tx.write(Buffer.from('zzzzzzzzzzzz'));
    expect((await more).data.toString()).toBe('zzzzzzzzzzzz');
    expect(kept.slice(0, 4).map((m) => m.data.toString())).toEqual(['first', 'second', '', 'last']);
    closeFds(delivered);
    expect(openFdCount()).toBe(before);
  });

  it('a received message never pins much more memory than itself', async () => {
    const [a, b] = pair('seqpacket');
    const sizes = [10, 3000, 20_000, 10, 70_000, 5, 10_000, 10_000, 10_000, 10_000, 10_000];
    const got = collect(b, sizes.length);
    for (const [i, n] of sizes.entries()) a.write(Buffer.alloc(n, i));
    const messages = await got;
    for (const [i, m] of messages.entries()) {
      expect(m.data.length).toBe(sizes[i]);
      expect(m.data.every((byte) => byte === i)).toBe(true);
      expect(m.data.buffer.byteLength).toBeLessThanOrEqual(Math.max(64 * 1024, 2 * m.data.length));
    }
  });

  it('empty messages read in the same batch as end-of-file are still delivered, then end', async () => {
    const [a, b] = pair('seqpacket');
    a.write(Buffer.alloc(0));
    a.write(Buffer.from('after empty'));
    a.write(Buffer.alloc(0));
    a.write(Buffer.from('tail'));
    a.end();
    const log: string[] = [];
    b.on('message', (m: ReceivedMessage) => log.push(`[${m.data.toString()}]`));
    await nextEvent(b, 'end');
    expect(log).toEqual(['[]', '[after empty]', '[]', '[tail]']);
  });

  it('EMSGSIZE for an oversized message is thrown and the socket stays usable', async () => {
    const [a, b] = pair('seqpacket');
    expect(() => a.write(Buffer.alloc(4 * 1024 * 1024))).toThrow(
      expect.objectContaining({ code: 'EMSGSIZE', syscall: 'sendmsg' }),
    );
    const got = nextEvent<ReceivedMessage>(b, 'message');
    a.write(Buffer.from('fine'));
    expect((await got).data.toString()).toBe('fine');
  });
});

describe('SOCK_STREAM fd attachment rule', () => {
  it('one read glues no-fd bytes before an fd-carrying write and stops right after it', async () => {
    const [a, b] = pair('stream');
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    // All three writes sit in the kernel before the receiver reads.
    a.write(Buffer.from('AAAA'));
    a.write(Buffer.from('BBBB'), [file]);
    a.write(Buffer.from('CCCC'));
    a.write(Buffer.from('DD'), [file, file]);
    a.write(Buffer.from('EE'));
    const m = await collect(b, 3);
    expect(m.map((x) => [x.data.toString(), x.fds.length])).toEqual([
      ['AAAABBBB', 1],
      ['CCCCDD', 2],
      ['EE', 0],
    ]);
    for (const x of m) closeFds(x.fds);
  });

  it('fds need at least one byte on a stream socket', () => {
    const [a] = pair('stream');
    expect(() => a.write(Buffer.alloc(0), [0])).toThrow(
      expect.objectContaining({ code: 'ERR_FDS_NEED_DATA' }),
    );
  });
});

describe('FdSocket.adopt', () => {
  it('takes the kind from SO_TYPE and refuses non-AF_UNIX fds (caller keeps them)', () => {
    for (const kind of ['stream', 'seqpacket'] as const) {
      const [a, b] = FdSocket.pair(kind);
      const s = FdSocket.adopt(duplicateFd(a.fd));
      expect(s.kind).toBe(kind);
      s.close();
      a.close();
      b.close();
    }
    const file = openSync('/dev/null', 'r');
    expect(() => FdSocket.adopt(file)).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
    expect(isOpen(file)).toBe(true);
    closeSync(file);
  });

  it('validates arguments with a usage TypeError', () => {
    expect(() => FdSocket.adopt(-1)).toThrow(TypeError);
    expect(() => FdSocket.pair('dgram' as SocketKind)).toThrow(/Usage/);
    const [a] = pair('stream');
    expect(() => a.write('text' as unknown as Uint8Array)).toThrow(/Usage/);
    expect(() => a.write(Buffer.from('x'), [1.5])).toThrow(/Usage/);
  });
});
