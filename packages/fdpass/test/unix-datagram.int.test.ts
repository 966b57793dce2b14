// sendUnixDatagram against a receiver that is not this library (Python's
// socket module): exact bytes on a path and on an abstract name, errno
// codes for nobody there, usage errors, and no fd left behind.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { startDatagramReceiver } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { FdPassError, sendUnixDatagram } from '../src/index.js';
import { makeTempDir, openFdCount } from './helpers.js';

interface Receiver {
  child: ChildProcess;
  /** The datagrams received so far, oldest first. */
  received: Buffer[];
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function receiver(address: string): Promise<Receiver> {
  const started = await startDatagramReceiver(address);
  cleanups.push(started.close);
  return { child: started.child, received: started.received };
}

function uniqueAbstract(): string {
  return `@handoff-fdpass-test-${process.pid}-${randomBytes(6).toString('hex')}`;
}

describe('sendUnixDatagram', () => {
  it('delivers the exact bytes to a socket bound at a path', async () => {
    const dir = makeTempDir();
    cleanups.push(() => dir.cleanup());
    const path = dir.file('notify.sock');
    const r = await receiver(path);
    const binary = new Uint8Array([0, 1, 2, 0xff, 0, 10]);
    sendUnixDatagram(path, new TextEncoder().encode('READY=1\nSTATUS=up'));
    sendUnixDatagram(path, binary);
    sendUnixDatagram(path, new Uint8Array(0));
    await expect.poll(() => r.received.length).toBe(3);
    expect(r.received[0]!.toString()).toBe('READY=1\nSTATUS=up');
    expect([...r.received[1]!]).toEqual([...binary]);
    expect(r.received[2]!.length).toBe(0);
  });

  it('reaches an abstract-namespace address written with a leading @ (no trailing NUL)', async () => {
    const address = uniqueAbstract();
    const r = await receiver(address);
    sendUnixDatagram(address, new TextEncoder().encode('WATCHDOG=1'));
    await expect.poll(() => r.received.length).toBe(1);
    expect(r.received[0]!.toString()).toBe('WATCHDOG=1');
    // The same name with a trailing NUL is a different address: nobody is there.
    expect(() => sendUnixDatagram(`${address}\0`, new Uint8Array([1]))).toThrow(
      expect.objectContaining({ code: 'ECONNREFUSED' }),
    );
  });

  it('fails with ENOENT for a missing path and ECONNREFUSED for an unbound abstract name', () => {
    const dir = makeTempDir();
    cleanups.push(() => dir.cleanup());
    let caught: unknown;
    try {
      sendUnixDatagram(dir.file('nobody.sock'), new Uint8Array([1]));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(FdPassError);
    expect(caught).toMatchObject({ code: 'ENOENT', syscall: 'sendto' });
    expect(() => sendUnixDatagram(uniqueAbstract(), new Uint8Array([1]))).toThrow(
      expect.objectContaining({ code: 'ECONNREFUSED' }),
    );
  });

  it('rejects a malformed address or data with a TypeError before any syscall', () => {
    const data = new Uint8Array([1]);
    expect(() => sendUnixDatagram('', data)).toThrow(TypeError);
    expect(() => sendUnixDatagram('@', data)).toThrow(TypeError);
    expect(() => sendUnixDatagram(`/tmp/${'x'.repeat(103)}`, data)).toThrow(TypeError);
    expect(() => sendUnixDatagram(`@${'x'.repeat(108)}`, data)).toThrow(TypeError);
    expect(() => sendUnixDatagram('/tmp/a\0b', data)).toThrow(TypeError);
    expect(() => sendUnixDatagram('/tmp/x', 'text' as unknown as Uint8Array)).toThrow(TypeError);
    // 107 bytes is the longest that fits: it gets as far as the kernel.
    expect(() => sendUnixDatagram(`/tmp/${'x'.repeat(102)}`, data)).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });

  it('fails with EAGAIN instead of blocking when the receiver stopped reading', async () => {
    const address = uniqueAbstract();
    const r = await receiver(address);
    r.child.kill('SIGSTOP');
    cleanups.unshift(() => r.child.kill('SIGCONT'));
    const payload = new TextEncoder().encode('WATCHDOG=1');
    let sent = 0;
    let caught: unknown;
    // The kernel queues a bounded number of datagrams (net.unix.max_dgram_qlen).
    for (; sent < 100_000; sent++) {
      try {
        sendUnixDatagram(address, payload);
      } catch (err) {
        caught = err;
        break;
      }
    }
    expect(caught).toMatchObject({ code: 'EAGAIN', syscall: 'sendto' });
    expect(sent).toBeGreaterThan(0);
  });

  it('keeps no fd: 1000 sends, successful or failed, leave the fd count unchanged', async () => {
    const address = uniqueAbstract();
    const r = await receiver(address);
    const before = openFdCount();
    const payload = new TextEncoder().encode('WATCHDOG=1');
    let delivered = 0;
    for (let i = 0; i < 500; i++) {
      try {
        sendUnixDatagram(address, payload);
        delivered++;
      } catch (err) {
        // The receiver reads as it goes; its queue may be full for a moment.
        expect(err).toMatchObject({ code: 'EAGAIN' });
      }
    }
    for (let i = 0; i < 500; i++) {
      expect(() => sendUnixDatagram('/nonexistent/notify.sock', payload)).toThrow(
        expect.objectContaining({ code: 'ENOENT' }),
      );
    }
    expect(openFdCount()).toBe(before);
    await expect.poll(() => r.received.length, { timeout: 10_000 }).toBe(delivered);
    r.child.stdin!.end();
    await once(r.child, 'exit');
  });
});
