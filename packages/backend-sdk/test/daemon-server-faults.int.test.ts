// Issue 12, case 2: a request serveDaemon cannot answer fails alone. The
// daemon runs in a child process (a crash shows as that process exiting)
// and serves two clients: A sends an answerable request and then the bad
// one in the same write; B is a bystander. A must get the answer produced
// before the fault, then the end of the stream, and nothing for the bad
// request; the daemon reports a typed connectionError; the child lives on
// and B is still served.
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from '@handoff/protocol';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type DaemonChild, FramedPeer, startDaemonChild } from './framed-peer.js';
import { openFds, tempDir } from './harness.js';

const tmp = tempDir('faults');
let child: DaemonChild | null = null;
const peers: FramedPeer[] = [];

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

let counter = 0;
async function setUp(): Promise<{ daemon: DaemonChild; endpoint: string }> {
  const endpoint = tmp.path(`f${++counter}.sock`);
  child = await startDaemonChild(endpoint);
  return { daemon: child, endpoint };
}

/** The daemon is alive and has reported exactly these connectionError codes. */
const reported = (daemon: DaemonChild, ...codes: string[]) =>
  vi.waitFor(
    () =>
      expect({
        alive: daemon.alive(),
        errors: daemon.lines.filter((l) => l.startsWith('error ')).map((l) => l.split(' ')[1]),
      }).toEqual({ alive: true, errors: codes }),
    { timeout: 5000 },
  );

async function peer(path: string): Promise<FramedPeer> {
  const p = await FramedPeer.connect(path);
  peers.push(p);
  return p;
}

/** A request whose frame body is exactly MAX_FRAME_BYTES: its echo does not fit a frame. */
function maxSizeEcho(requestId: number): Uint8Array {
  const probe = FramedPeer.frame(requestId, new Uint8Array(MAX_FRAME_BYTES - 64));
  const overhead = probe.length - FRAME_HEADER_BYTES - (MAX_FRAME_BYTES - 64);
  const frame = FramedPeer.frame(requestId, new Uint8Array(MAX_FRAME_BYTES - overhead).fill(0x65));
  expect(frame.length - FRAME_HEADER_BYTES).toBe(MAX_FRAME_BYTES);
  return frame;
}

const cases: [name: string, bad: () => Uint8Array, code: string][] = [
  [
    'the echo of a 16 MiB request (answer over the frame cap)',
    () => maxSizeEcho(2),
    'ANSWER_TOO_LARGE',
  ],
  ['a handler that throws', () => FramedPeer.frame(2, 't:'), 'HANDLER'],
  ['a handler that rejects', () => FramedPeer.frame(2, 'r:'), 'HANDLER'],
  ['a handler that returns a string', () => FramedPeer.frame(2, 's:'), 'BAD_ANSWER'],
  ['a handler that returns a number', () => FramedPeer.frame(2, 'n:'), 'BAD_ANSWER'],
  ['a handler that returns a plain object', () => FramedPeer.frame(2, 'o:'), 'BAD_ANSWER'],
  ['a handler that resolves to a string', () => FramedPeer.frame(2, 'p:'), 'BAD_ANSWER'],
  [
    'a handler that returns a thenable whose then is not a function',
    () => FramedPeer.frame(2, 'j:'),
    'BAD_ANSWER',
  ],
  ['sendEvent with a 16 MiB payload', () => FramedPeer.frame(2, 'v:'), 'ANSWER_TOO_LARGE'],
  ['sendEvent with a string, from a timer', () => FramedPeer.frame(2, 'w:'), 'BAD_ANSWER'],
];

describe('serveDaemon: a request that cannot be answered fails alone', () => {
  it.each(cases)(
    '%s: the requester gets the answers made before it, then the end; the daemon and other clients go on',
    async (_name, bad, code) => {
      const { daemon, endpoint } = await setUp();
      const b = await peer(endpoint);
      expect(await b.request(1, 'b-before')).toBe('b-before');
      const a = await peer(endpoint);
      a.send(FramedPeer.frame(1, 'e-first'), bad());
      // Bounded, so that a daemon which answers garbage and keeps the
      // connection open fails on what A received, not on a timeout.
      await Promise.race([a.closed, new Promise((r) => setTimeout(r, 15_000).unref())]);

      // What A observes: the answer produced before the fault, flushed; no
      // frame at all for the bad request; a clean end of the stream.
      expect(a.frames.map((f) => [f.requestId, Buffer.from(f.payload).toString()])).toEqual([
        [1n, 'e-first'],
      ]);
      expect(a.framesFor(2)).toEqual([]);
      expect(a.error).toBeNull();
      expect(a.ended).toBe(true);

      await reported(daemon, code);
      // The daemon lives, and B (connected all along) and a newcomer are served.
      expect(daemon.alive()).toBe(true);
      expect(await b.request(2, 'b-after')).toBe('b-after');
      const c = await peer(endpoint);
      expect(await c.request(7, 'c')).toBe('c');
      expect(daemon.alive()).toBe(true);
    },
    60_000,
  );

  it('a legacy handler that throws loses only its connection', async () => {
    const { daemon, endpoint } = await setUp();
    const b = await peer(endpoint);
    const legacy = await peer(endpoint);
    legacy.socket.write('LHELLO\n');
    await legacy.closed;
    await reported(daemon, 'HANDLER');
    expect(daemon.alive()).toBe(true);
    expect(await b.request(3, 'still')).toBe('still');
  }, 60_000);

  it('a fault aborts the other requests running on that connection and drops their answers', async () => {
    const { daemon, endpoint } = await setUp();
    const a = await peer(endpoint);
    // 1 answers after a macrotask, 2 throws at once: 1 is still running
    // when the connection fails, so it is aborted and never answered.
    a.send(FramedPeer.frame(1, 'a:slow'), FramedPeer.frame(2, 't:'));
    await a.closed;
    expect(a.frames).toEqual([]);
    expect(a.error).toBeNull();
    await reported(daemon, 'HANDLER');
    expect(daemon.alive()).toBe(true);
  }, 60_000);
});
