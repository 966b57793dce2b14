// FdSocket: fds carried per message (0..253, the caps on both ends, transfer)
// and adopting a socket fd.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { sendImmediately } from '../src/fd-socket.js';
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
  checkFdsAfterEachTest,
  cleanup,
  pair,
  pairWithReceiver,
  rawStreamPair,
} from './fd-socket-pairs.js';
import { fdInfoFlags, isOpen, nextEvent, O_CLOEXEC, openFdCount, sameFile } from './helpers.js';

checkFdsAfterEachTest();

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

describe("sendImmediately (the session forwarder's door to a socket's private send)", () => {
  it('sends at once on an FdSocket, with its fd, and refuses anything that is not one', async () => {
    const [a, b] = FdSocket.pair('seqpacket');
    const fd = openSync('/dev/null', 'r');
    const got = nextEvent<ReceivedMessage>(b, 'message');
    expect(sendImmediately(a, new Uint8Array([7]), [fd])).toBe(1);
    closeSync(fd);
    const message = await got;
    expect([...message.data]).toEqual([7]);
    expect(message.fds).toHaveLength(1);
    closeFds(message.fds);
    const fake = Object.create(FdSocket.prototype) as FdSocket;
    expect(() => sendImmediately({} as FdSocket, new Uint8Array([1]), [])).toThrow(/^Usage/);
    expect(() => sendImmediately(fake, new Uint8Array([1]), [])).toThrow(TypeError);
    a.close();
    expect(() => sendImmediately(a, new Uint8Array([1]), [])).toThrow(FdPassError);
    b.close();
  });
});
