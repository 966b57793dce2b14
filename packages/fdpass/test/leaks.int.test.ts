// The no-leak guarantee as an ordinary test: 100,000 send/receive cycles that
// go through every error path, then the process has exactly the fds it had.
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  closeFd,
  duplicateFd,
  type FdPassError,
  FdSocket,
  type ReceivedMessage,
  type SocketKind,
} from '../src/index.js';
import { expectFdCount, openFdCount } from './helpers.js';

const TOTAL_CYCLES = 100_000;
const BURST = 500;

interface Counters {
  messages: number;
  errors: Map<string, number>;
  bytes: number;
}

/** A pair whose receiver caps fds at 2 and (SEQPACKET) messages at 64 bytes. */
function strictPair(kind: SocketKind): { tx: FdSocket; rx: FdSocket; counters: Counters } {
  const [tx, raw] = FdSocket.pair(kind);
  const rx = FdSocket.adopt(duplicateFd(raw.fd), { maxFdsPerMessage: 2, maxMessageSize: 64 });
  raw.close();
  const counters: Counters = { messages: 0, errors: new Map(), bytes: 0 };
  rx.on('message', (m: ReceivedMessage) => {
    counters.messages++;
    counters.bytes += m.data.length;
    for (const fd of m.fds) closeFd(fd);
  });
  rx.on('error', (e: FdPassError) => {
    counters.errors.set(e.code, (counters.errors.get(e.code) ?? 0) + 1);
  });
  return { tx, rx, counters };
}

function until(predicate: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (predicate() ? resolve() : setImmediate(check));
    check();
  });
}

/** Writes a burst that mixes good messages with ones the receiver must reject. */
function burst(tx: FdSocket, file: number, kind: SocketKind, start: number): number {
  let bytes = 0;
  for (let i = start; i < start + BURST; i++) {
    let data = Buffer.alloc(8, i & 0xff);
    let fds = [file];
    if (i % 10 === 0) fds = [file, file, file]; // over the receiver's cap
    // More than the control buffer holds: the kernel truncates (MSG_CTRUNC)
    // and the receiver must close the ones that did arrive.
    if (i % 50 === 0) fds = new Array<number>(40).fill(file);
    if (kind === 'seqpacket' && i % 15 === 0) data = Buffer.alloc(100); // MSG_TRUNC
    bytes += data.length;
    // EAGAIN storms: the burst outruns the receiver, so most of it queues
    // (with duplicated fds) and drains as the receiver catches up.
    tx.write(data, fds);
  }
  return bytes;
}

describe('no fd leaks', () => {
  it(`keeps /proc/self/fd identical across ${TOTAL_CYCLES} cycles with every error path`, async () => {
    const before = openFdCount();
    const file = openSync('/dev/null', 'r');
    const seen = new Map<string, number>();
    let cycles = 0;
    let round = 0;
    const steady = {
      seqpacket: strictPair('seqpacket'),
      stream: strictPair('stream'),
    };
    while (cycles < TOTAL_CYCLES) {
      round++;
      const kind: SocketKind = round % 2 === 0 ? 'seqpacket' : 'stream';
      if (round % 10 === 0) {
        // Disruption: a fresh pair, a burst that queues, then one side goes
        // away with fds queued (receiver closes mid-send, or sender closes).
        const { tx, rx } = strictPair(kind);
        tx.on('error', (e: FdPassError) => seen.set(e.code, (seen.get(e.code) ?? 0) + 1));
        burst(tx, file, kind, 0);
        expect(tx.writableFds).toBeGreaterThan(0);
        if (round % 20 === 0) {
          rx.close();
          // The sender notices at its next flush: EPIPE/ECONNRESET, then close.
          await until(() => tx.closed);
        } else {
          tx.close();
          rx.close();
        }
        cycles += BURST;
        continue;
      }
      const { tx, counters } = steady[kind];
      const bytesBefore = counters.bytes;
      const errorsBefore = [...counters.errors.values()].reduce((a, b) => a + b, 0);
      const messagesBefore = counters.messages;
      const expectedBytes = burst(tx, file, kind, cycles);
      if (kind === 'seqpacket') {
        await until(() => {
          const errs = [...counters.errors.values()].reduce((a, b) => a + b, 0) - errorsBefore;
          return counters.messages - messagesBefore + errs === BURST;
        });
      } else {
        // Stream: bytes are never dropped (rejected fds are), so count bytes.
        await until(() => counters.bytes - bytesBefore === expectedBytes);
      }
      cycles += BURST;
    }
    for (const { tx, rx, counters } of Object.values(steady)) {
      for (const [code, n] of counters.errors) seen.set(code, (seen.get(code) ?? 0) + n);
      tx.close();
      rx.close();
    }
    closeSync(file);
    expect(seen.get('ERR_TOO_MANY_FDS')).toBeGreaterThan(0);
    expect(seen.get('ERR_DATA_TRUNCATED')).toBeGreaterThan(0);
    expect((seen.get('EPIPE') ?? 0) + (seen.get('ECONNRESET') ?? 0)).toBeGreaterThan(0);
    await expectFdCount(before);
    expect(openFdCount()).toBe(before);
  }, 120_000);
});
