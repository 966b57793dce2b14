// Issue 12, case 3: a client that does not read must not make a serveDaemon
// process grow without bound. The daemon runs in a child process; its peak
// resident set (VmHWM, reset before each measurement) must stay within the
// documented per-connection bound — maxQueuedAnswerBytes plus one answer
// per request already running plus the input buffer — and once the slow
// reader reads, it gets every answer, in order.
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type DaemonChild, FramedPeer, startDaemonChild } from './framed-peer.js';
import { openFds, tempDir } from './harness.js';

const MiB = 1024 * 1024;
const ANSWER = MiB;
const REQUESTS = 200;
/** The default maxQueuedAnswerBytes. */
const MARK = MiB;
/**
 * What the runtime itself may add while serving (heap growth, a GC that
 * has not run yet, code): measured at 2-6 MiB on one connection; the old
 * behaviour grew by over 200 MiB.
 */
const SLACK = 24 * MiB;

const tmp = tempDir('backpressure');
let child: DaemonChild | null = null;
const peers: FramedPeer[] = [];
let counter = 0;

let fdsBefore = 0;
afterAll(() => tmp.remove());
beforeEach(() => {
  fdsBefore = openFds();
});
afterEach(async () => {
  for (const p of peers.splice(0)) p.destroy();
  await child?.kill();
  child = null;
  // Every client socket and the child's pipes are closed again.
  await vi.waitFor(() => expect(openFds()).toBe(fdsBefore), { timeout: 5000 });
});

async function setUp(): Promise<{ daemon: DaemonChild; endpoint: string }> {
  const endpoint = tmp.path(`b${++counter}.sock`);
  child = await startDaemonChild(endpoint);
  return { daemon: child, endpoint };
}

const bigRequest = (i: number) => FramedPeer.frame(i, `b:${ANSWER}:#${i}`);

/**
 * Waits until the daemon's peak RSS has not moved for `quietMs`, failing
 * (and killing the daemon, so a regression cannot eat the machine) as soon
 * as the growth passes `limit`. Returns the growth over `base`.
 */
async function settledGrowth(daemon: DaemonChild, base: number, limit: number): Promise<number> {
  const quietMs = 1500;
  let last = daemon.memory().hwm;
  let since = performance.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 25));
    const { hwm } = daemon.memory();
    if (hwm - base > limit) {
      daemon.child.kill('SIGKILL');
      throw new Error(
        `daemon grew by ${((hwm - base) / MiB).toFixed(1)} MiB, over ${(limit / MiB).toFixed(1)} MiB`,
      );
    }
    if (hwm !== last) {
      last = hwm;
      since = performance.now();
    } else if (performance.now() - since >= quietMs) return hwm - base;
  }
}

/** Warm the daemon's answer path so the baseline is not its first big answer. */
async function warm(endpoint: string): Promise<void> {
  const w = await FramedPeer.connect(endpoint);
  for (let i = 1; i <= 8; i++) w.send(bigRequest(i));
  while (w.frames.length < 8) await new Promise((r) => setTimeout(r, 10));
  w.destroy();
  await w.closed;
}

describe('serveDaemon: a client that does not read', () => {
  it('200 pipelined requests for 1 MiB answers, never read: the daemon grows by at most mark + one answer; reading later gets every answer in order', async () => {
    const { daemon, endpoint } = await setUp();
    await warm(endpoint);
    const slow = await FramedPeer.connect(endpoint, false);
    peers.push(slow);
    await new Promise((r) => setTimeout(r, 200));
    daemon.resetPeak();
    const base = daemon.memory().rss;
    // All 200 requests (~4 KiB) in one write: one read holds them all.
    slow.send(...Array.from({ length: REQUESTS }, (_, i) => bigRequest(i + 1)));
    // Per connection: the mark, one answer for the request that crossed it
    // (the handler answers synchronously), and the 4 KiB of input.
    const bound = MARK + ANSWER + 64 * 1024;
    const growth = await settledGrowth(daemon, base, bound + SLACK);
    console.log(
      `one slow reader: +${(growth / MiB).toFixed(1)} MiB peak RSS (bound ${(bound / MiB).toFixed(1)} MiB + slack)`,
    );
    expect(growth).toBeLessThanOrEqual(bound + SLACK);

    // The slow reader reads now: every answer, in request order, whole.
    slow.read();
    while (slow.frames.length < REQUESTS && !slow.socket.destroyed)
      await new Promise((r) => setTimeout(r, 20));
    expect(slow.frames.map((f) => Number(f.requestId))).toEqual(
      Array.from({ length: REQUESTS }, (_, i) => i + 1),
    );
    for (const [i, f] of slow.frames.entries()) {
      expect(f.payload.length).toBe(ANSWER);
      expect(Buffer.from(f.payload.subarray(0, 16)).toString()).toContain(`#${i + 1}`);
    }
    expect(daemon.alive()).toBe(true);
  }, 120_000);

  it('50 slow readers at once: growth stays within 50 per-connection bounds, and a reading client is still served', async () => {
    const { daemon, endpoint } = await setUp();
    await warm(endpoint);
    const slow = await Promise.all(
      Array.from({ length: 50 }, () => FramedPeer.connect(endpoint, false)),
    );
    peers.push(...slow);
    const fast = await FramedPeer.connect(endpoint);
    peers.push(fast);
    await new Promise((r) => setTimeout(r, 200));
    daemon.resetPeak();
    const base = daemon.memory().rss;
    for (const s of slow) s.send(...Array.from({ length: REQUESTS }, (_, i) => bigRequest(i + 1)));
    const bound = 50 * (MARK + ANSWER + 64 * 1024);
    const growth = await settledGrowth(daemon, base, bound + SLACK);
    console.log(
      `50 slow readers: +${(growth / MiB).toFixed(1)} MiB peak RSS (bound ${(bound / MiB).toFixed(1)} MiB + slack)`,
    );
    expect(growth).toBeLessThanOrEqual(bound + SLACK);
    expect(await fast.request(1, 'still served')).toBe('still served');
    expect(daemon.alive()).toBe(true);
  }, 120_000);
});
