// idleTimeoutSecs with a real broker and daemon: every routed Hello puts
// the countdown back to its start, and a daemon nobody is routed to for
// that long is stopped.
import { describe, expect, it } from 'vitest';
import { connectService } from '../../src/client/connect-service.js';
import { liveBrokers } from '../broker-session.js';
import { alive, echoService } from '../harness.js';

const { broker } = liveBrokers();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idle stop', () => {
  it('keeps a daemon that is routed to within its idle timeout, and stops it once it is not', async () => {
    const b = await broker([echoService('echo', { idleTimeoutSecs: 1 })]);
    const connect = async () =>
      (
        await connectService('echo', {
          version: '1.0.0',
          brokerPath: b.socketPath,
          timeoutMs: 30_000,
        })
      ).socket.destroy();
    await connect();
    const [daemon] = b.registry.list();
    expect(daemon?.pid).toBeGreaterThan(0);
    const pid = daemon!.pid!;
    // Five Hellos 400 ms apart: 2 s in all, twice the timeout, and never
    // 1 s without one. A countdown that was not re-armed would have run out.
    for (let i = 0; i < 5; i++) {
      await sleep(400);
      await connect();
      expect(b.registry.list().map((backend) => backend.pid)).toEqual([pid]);
    }
    const lastHello = performance.now();
    while (b.registry.list().length > 0 && performance.now() - lastHello < 10_000) await sleep(50);
    const stoppedAfter = performance.now() - lastHello;
    expect(b.registry.list()).toEqual([]);
    // Not before its second was up, and not long after (the daemon's stop grace is 2 s).
    expect(stoppedAfter).toBeGreaterThanOrEqual(950);
    expect(stoppedAfter).toBeLessThan(5000);
    while (alive(pid) && performance.now() - lastHello < 10_000) await sleep(50);
    expect(alive(pid)).toBe(false);
  });
});
