// FdSocket's receive side: iteration, pause, end and close, connection
// errors, SEQPACKET boundaries and the SOCK_STREAM fd attachment rule.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { closeFds, FdPassError, type ReceivedMessage } from '../src/index.js';
import { loadNative } from '../src/native-loader.js';
import { recordsArray } from '../src/recv-batch.js';
import {
  checkFdsAfterEachTest,
  cleanup,
  collect,
  pair,
  pairWithReceiver,
} from './fd-socket-pairs.js';
import { nextEvent, openFdCount, sameFile } from './helpers.js';

checkFdsAfterEachTest();

describe.each(['seqpacket', 'stream'] as const)('FdSocket.pair(%s)', (kind) => {
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

  it('reads only while a message listener is on, however listeners are added and removed', async () => {
    const [a, b] = pair(kind);
    const settle = () => new Promise((r) => setTimeout(r, 30));
    const next = (add: (h: (m: ReceivedMessage) => void) => void) =>
      new Promise<string>((resolve) => add((m) => resolve(m.data.toString())));
    // Each removal below leaves the socket with no 'message' listener: if it
    // kept reading, the message written next would be emitted to nobody and
    // lost, and the listener added after it would wait for ever.
    const removals: Array<[string, (h: (m: ReceivedMessage) => void) => void]> = [
      ['off', (h) => b.off('message', h)],
      ['removeListener', (h) => b.removeListener('message', h)],
      ['removeAllListeners(message)', () => b.removeAllListeners('message')],
      ['removeAllListeners()', () => b.removeAllListeners()],
    ];
    for (const [name, remove] of removals) {
      let handler: ((m: ReceivedMessage) => void) | undefined;
      const first = next((h) => {
        handler = h;
        b.prependListener('message', h);
      });
      a.write(Buffer.from(`${name}:1`));
      expect(await first).toBe(`${name}:1`);
      remove(handler!);
      expect(b.listenerCount('message'), name).toBe(0);
      a.write(Buffer.from(`${name}:2`));
      await settle();
      expect(await next((h) => b.once('message', h))).toBe(`${name}:2`);
    }
    // once() took itself off: the socket has stopped reading again.
    expect(b.listenerCount('message')).toBe(0);
    a.write(Buffer.from('last'));
    await settle();
    expect(await next((h) => b.addListener('message', h))).toBe('last');
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

describe('native recv hands its bytes over through takeReceived', () => {
  it('returns the byte count, and takeReceived copies exactly those bytes, in order', () => {
    const native = loadNative();
    const { SOCK_SEQPACKET } = native.constants;
    const [x, y] = native.socketPair(SOCK_SEQPACKET);
    cleanup.push(() => closeFds([x, y]));
    const sent = ['alpha', '', 'a'.repeat(3000), 'omega'].map((t) => Buffer.from(t));
    for (const m of sent) native.send(x, m, 0, null, 0);
    const recs = recordsArray();
    const bytes = native.recv(y, recs, 8, 4, 4096, true);
    expect(recs[1]).toBe(4);
    expect(bytes).toBe(Buffer.concat(sent).length);
    const into = Buffer.alloc(bytes, 0xee);
    native.takeReceived(into);
    expect(into.equals(Buffer.concat(sent))).toBe(true);
    // Taken: nothing is held any more.
    expect(() => native.takeReceived(Buffer.alloc(bytes))).toThrow(TypeError);
    native.takeReceived(Buffer.alloc(0));
  });

  it('refuses a destination of another length or type, and the next recv drops untaken bytes', () => {
    const native = loadNative();
    const { SOCK_STREAM } = native.constants;
    const [x, y] = native.socketPair(SOCK_STREAM);
    cleanup.push(() => closeFds([x, y]));
    const recs = recordsArray();
    native.send(x, Buffer.from('first'), 0, null, 0);
    expect(native.recv(y, recs, 1, 4, 64, false)).toBe(5);
    expect(() => native.takeReceived(Buffer.alloc(4))).toThrow(TypeError);
    expect(() => native.takeReceived(Buffer.alloc(6))).toThrow(TypeError);
    expect(() => native.takeReceived(new Int32Array(5) as unknown as Uint8Array)).toThrow(
      TypeError,
    );
    // Still held after the refusals; a new recv replaces it.
    native.send(x, Buffer.from('second!'), 0, null, 0);
    expect(native.recv(y, recs, 1, 4, 64, false)).toBe(7);
    const into = Buffer.alloc(7);
    native.takeReceived(into);
    expect(into.toString()).toBe('second!');
    // Nothing queued: no bytes, nothing to take.
    expect(native.recv(y, recs, 1, 4, 64, false)).toBe(0);
    native.takeReceived(Buffer.alloc(0));
  });

  it('FdSocket messages are Buffers of their own bytes, small and large alike', async () => {
    const [a, b] = pair('seqpacket');
    const sizes = [1, 100, 4095, 4096, 70_000, 3];
    const got: Buffer[] = [];
    b.on('message', (m: ReceivedMessage) => got.push(m.data));
    for (const [i, n] of sizes.entries()) a.write(Buffer.alloc(n, i + 1));
    await vi.waitFor(() => expect(got.length).toBe(sizes.length));
    for (const [i, n] of sizes.entries()) {
      expect(Buffer.isBuffer(got[i])).toBe(true);
      expect(got[i]!.equals(Buffer.alloc(n, i + 1))).toBe(true);
    }
  });
});

describe('SOCK_STREAM: a short read ends the batch', () => {
  // [status, count] of one native recv over `fd` with room for 2 messages of 64 bytes.
  const recvStatus = (fd: number) => {
    const recs = recordsArray();
    loadNative().recv(fd, recs, 2, 4, 64, false);
    const fds = recs[1]! > 0 ? Array.from(recs.subarray(5, 5 + recs[4]!)) : [];
    closeFds(fds);
    return [recs[0], recs[1]];
  };

  it('stops at a read shorter than asked for, without the read that says EAGAIN', () => {
    const native = loadNative();
    const { BATCH_SHORT, BATCH_DRAINED, BATCH_BUDGET, SOCK_STREAM } = native.constants;
    const [x, y] = native.socketPair(SOCK_STREAM);
    cleanup.push(() => closeFds([x, y]));
    const send = (bytes: number, fds: number[] = []) =>
      native.send(
        x,
        new Uint8Array(bytes),
        0,
        fds.length ? Int32Array.from(fds) : null,
        fds.length,
      );
    // 10 bytes of a possible 64: short. (Before, a second recvmsg found EAGAIN.)
    send(10);
    expect(recvStatus(y)).toEqual([BATCH_SHORT, 1]);
    // Nothing queued: the one read says EAGAIN.
    expect(recvStatus(y)).toEqual([BATCH_DRAINED, 0]);
    // A full 64-byte read may have more behind it: reading goes on, and
    // the second (short) read ends the batch.
    send(100);
    expect(recvStatus(y)).toEqual([BATCH_SHORT, 2]);
    // Exactly full, twice: the budget ends it, not a short read.
    send(128);
    expect(recvStatus(y)).toEqual([BATCH_BUDGET, 2]);
    expect(recvStatus(y)).toEqual([BATCH_DRAINED, 0]);
    // A read that brought fds stopped right after them: reading goes on.
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    send(4, [file]);
    send(4);
    expect(recvStatus(y)).toEqual([BATCH_SHORT, 2]);
  });

  it('every message still arrives, in order, across short reads and fd boundaries', async () => {
    const [a, b] = pair('stream');
    const file = openSync('/dev/null', 'r');
    cleanup.push(() => closeSync(file));
    const got: string[] = [];
    let fds = 0;
    b.on('message', (m: ReceivedMessage) => {
      got.push(m.data.toString());
      fds += m.fds.length;
      closeFds(m.fds);
    });
    for (let i = 0; i < 50; i++) {
      a.write(Buffer.from(`${i};`), i % 7 === 0 ? [file] : []);
      if (i % 5 === 0) await new Promise((r) => setImmediate(r));
    }
    const want = Array.from({ length: 50 }, (_, i) => `${i};`).join('');
    await vi.waitFor(() => expect(got.join('')).toBe(want));
    expect(fds).toBe(8);
  });

  it('a reset peer: what it sent before is delivered, then the error', async () => {
    const [a, b] = pair('stream');
    const events: string[] = [];
    b.on('message', (m: ReceivedMessage) => events.push(`message ${m.data.toString()}`));
    b.on('error', (e: FdPassError) => events.push(`error ${e.code}`));
    a.write(Buffer.from('last words'));
    // Unread bytes in a's queue when it closes: the kernel resets b.
    b.write(Buffer.from('unread'));
    await new Promise((r) => setImmediate(r));
    a.close();
    await vi.waitFor(() => expect(b.closed).toBe(true));
    expect(events[0]).toBe('message last words');
    expect(events.slice(1).every((e) => e === 'error ECONNRESET' || e === 'end')).toBe(true);
  });
});
