// The takeover rehearsal (takeover-rehearsal.ts) on real socketpairs, a real
// memfd and real fd passing: it plays a predecessor's deposit and live
// cut-over through, resolves false when the line wire cannot answer or its
// deadline passes, and never leaves an fd or a timer behind. A daemon
// started under a broker rehearses before it attaches, and neither its store
// nor its counters see the rehearsal.
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { rehearseTakeover } from '../src/takeover-rehearsal.js';
import { LineClient, openFds, startTestDaemon, tempDir } from './harness.js';

const tmp = tempDir('takeover-rehearsal');
afterAll(() => tmp.remove());

const LIMITS = { maxLineBytes: 64 * 1024, maxQueuedAnswerBytes: 1024 * 1024 };
/** receiveCutover waits up to 300 ms for a calm event loop: past that, nothing of a rehearsal is left. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 400));
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('rehearseTakeover', () => {
  it('plays a takeover through, again and again, leaving no fd or timer behind', async () => {
    // The first run may open what this process keeps for good (the native addon's).
    expect(await rehearseTakeover(LIMITS)).toBe(true);
    await settle();
    const before = { fds: openFds(), timers: timers() };
    for (let i = 0; i < 3; i++) expect(await rehearseTakeover(LIMITS)).toBe(true);
    await settle();
    expect(openFds()).toBe(before.fds);
    expect(timers()).toBeLessThanOrEqual(before.timers);
  });

  it('resolves false when the line wire cannot answer (a line limit below every command)', async () => {
    const before = openFds();
    // The first command gets an ERROR and the connection ends: no answer to the rest.
    expect(await rehearseTakeover({ ...LIMITS, maxLineBytes: 4, timeoutMs: 300 })).toBe(false);
    await settle();
    expect(openFds()).toBe(before);
  });

  it('gives up at its deadline, wherever it is, and still cleans up', async () => {
    const before = { fds: openFds(), timers: timers() };
    for (const timeoutMs of [0, 1, 3, 8]) {
      expect(await rehearseTakeover({ ...LIMITS, timeoutMs })).toBe(false);
    }
    await settle();
    expect(openFds()).toBe(before.fds);
    expect(timers()).toBeLessThanOrEqual(before.timers);
  });
});

describe('a daemon under a broker', () => {
  function capture() {
    const logs: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _encoding, done) {
        logs.push(JSON.parse(String(chunk)));
        done();
      },
    });
    return { logs, logger: pino({ level: 'debug' }, stream) };
  }

  it('rehearses a takeover before it attaches; its store and counters never see it', async () => {
    const { logs, logger } = capture();
    const daemon = await startTestDaemon(tmp.path('d1.sock'), {
      // Nobody listens there: the attachment keeps retrying, which is all this needs.
      brokerControlPath: tmp.path('no-broker.sock'),
      logger,
    });
    try {
      const rehearsed = logs.find((l) => l.msg === 'takeover rehearsed');
      expect(rehearsed).toMatchObject({ ok: true });
      const client = await LineClient.connect(daemon.endpoint);
      try {
        expect(await client.ask('GET kept')).toBe('NOT_FOUND');
        expect(await client.ask('GET rehearsal')).toBe('NOT_FOUND');
        expect(await client.ask('STATS')).toMatch(
          /^STATS entries=0 bytes=0 .* hits=0 misses=2 sets=0 deletes=0 .* connections=1 handoffs=0 /,
        );
      } finally {
        client.close();
      }
    } finally {
      await daemon.close();
    }
  });

  it('does not rehearse with rehearseTakeover: false, nor without the fd store or a broker', async () => {
    for (const options of [
      { brokerControlPath: tmp.path('no-broker.sock'), rehearseTakeover: false },
      { brokerControlPath: tmp.path('no-broker.sock'), fdStore: false },
      {},
    ]) {
      const { logs, logger } = capture();
      const daemon = await startTestDaemon(tmp.path('d2.sock'), { ...options, logger });
      await daemon.close();
      expect(logs.some((l) => l.msg === 'takeover rehearsed')).toBe(false);
      expect(logs.some((l) => l.msg === 'listening')).toBe(true);
    }
  });
});
