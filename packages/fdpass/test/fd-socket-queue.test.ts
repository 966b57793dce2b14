// FdSocket's write queue: EAGAIN, high-water marks, drain, the fds it parks
// and closes.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { closeFds, FdSocket, type ReceivedMessage } from '../src/index.js';
import { checkFdsAfterEachTest, cleanup, pair } from './fd-socket-pairs.js';
import { nextEvent, openFdCount, sameFile } from './helpers.js';

checkFdsAfterEachTest();

describe.each(['seqpacket', 'stream'] as const)('FdSocket.pair(%s)', (kind) => {
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
});
