// Rolling restarts with real daemons (lifecycle/rolling-restart.ts): new
// Hellos reach the replacement while the old daemon's sessions keep working
// until it drains, no Hello is refused on the way; a replacement that fails
// (its probe, or at start) leaves the old one serving; a daemon that ignores
// SIGTERM is killed at the drain deadline; single flight; NOT_RUNNING; the
// replacement boots at a lower CPU weight and has it back before promotion.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { alive, processesMentioning } from '@handoff/testkit';
import { describe, expect, it, vi } from 'vitest';
import type { Backend, BackendRegistry } from '../src/backend-registry.js';
import type { Broker } from '../src/broker-api.js';
import { startBroker } from '../src/broker-launch.js';
import { connectService } from '../src/client/connect-service.js';
import { autogroupOf } from '../src/lifecycle/boot-priority.js';
import { liveBrokers, P } from './broker-session.js';
import { echoService, str, tempDir, text } from './harness.js';
import { autogroups } from './lifecycle/autogroups.js';

const { broker, dirs, cleanups } = liveBrokers();

async function startWith(flags: string[], extra: Record<string, unknown> = {}) {
  const b = await broker([echoService('echo', extra, ['--pid-prefix', ...flags])]);
  return { b, registry: b.registry as unknown as BackendRegistry };
}

/** One Hello and one request; the pid of the daemon that answered. */
async function ask(brokerPath: string, payload: string) {
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 30_000,
  });
  const client = new FrameClient(socket);
  try {
    const answer = str((await client.request(P, text(payload))).payload);
    const [pid, echoed] = answer.split(':');
    expect(echoed).toBe(payload);
    return Number(pid);
  } finally {
    client.close();
  }
}

function marker() {
  const dir = tempDir('restart');
  dirs.push(dir);
  return dir.path('marker');
}

describe('rolling restart', () => {
  it('routes new Hellos to the replacement under continuous load, the old sessions serving until the drain', async () => {
    const { b, registry } = await startWith(['--linger-ms', '3000'], { drainMs: 8000 });
    const first = await connectService('echo', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    });
    expect(first.route).toBe('handoff');
    const session = new FrameClient(first.socket);
    const oldPid = Number(str((await session.request(P, text('a'))).payload).split(':')[0]);

    let running = true;
    const failures: unknown[] = [];
    const seen = new Set<number>();
    const loops = Array.from({ length: 8 }, async (_, i) => {
      while (running) {
        try {
          seen.add(await ask(b.socketPath, `loop${i}`));
        } catch (error) {
          failures.push(error);
        }
      }
    });
    await vi.waitFor(() => expect(seen.size).toBeGreaterThan(0));
    const outcome = await registry.restart('echo@1.0.0');
    expect(outcome.oldPid).toBe(oldPid);
    expect(outcome.newPid).not.toBe(oldPid);
    expect(outcome.endpoint).toMatch(/echo_1\.0\.0\.sock$/);
    // The live session still reaches the old daemon (it lingers 3 s after SIGTERM)...
    expect(str((await session.request(P, text('b'))).payload)).toBe(`${oldPid}:b`);
    // ...while every new Hello reaches the replacement.
    expect(await ask(b.socketPath, 'new')).toBe(outcome.newPid);
    await outcome.retired;
    running = false;
    await Promise.all(loops);
    session.close();
    expect(failures).toEqual([]);
    expect(seen.has(outcome.newPid!)).toBe(true);
    expect(alive(oldPid)).toBe(false);
    expect(registry.list().map((x: Backend) => x.pid)).toEqual([outcome.newPid]);
    // A second restart goes back to the first slot, the first replacement drains in turn.
    const again = await registry.restart('echo@1.0.0', { drainMs: 2000 });
    expect(again.oldPid).toBe(outcome.newPid);
    expect(again.endpoint).toMatch(/echo-1\.0\.0\.sock$/);
    expect(await ask(b.socketPath, 'again')).toBe(again.newPid);
  });

  it('keeps the old daemon serving when the replacement fails its probe', async () => {
    const bad = marker();
    const { b, registry } = await startWith(['--bad-identity-if', bad]);
    const oldPid = await ask(b.socketPath, 'x');
    writeFileSync(bad, '');
    const error = await registry.restart('echo@1.0.0', { readyDeadlineMs: 20_000 }).catch((e) => e);
    expect(error).toMatchObject({
      name: 'RestartError',
      code: 'PROBE_FAILED',
      service: 'echo@1.0.0',
    });
    expect(error.message).toContain('the old daemon keeps serving');
    expect(await ask(b.socketPath, 'still')).toBe(oldPid);
    // The replacement is gone: the old daemon is the only one this broker's directory names.
    await vi.waitFor(() => expect(processesMentioning(dirname(b.socketPath))).toEqual([oldPid]), {
      timeout: 20_000,
    });
    expect(registry.list().map((x: Backend) => x.pid)).toEqual([oldPid]);
  });

  it('keeps the old daemon serving when the replacement exits at start, with its output', async () => {
    const failing = marker();
    const { b, registry } = await startWith(['--fail-start-if', failing]);
    const oldPid = await ask(b.socketPath, 'x');
    writeFileSync(failing, '');
    const error = await registry.restart('echo@1.0.0').catch((e) => e);
    expect(error).toMatchObject({ name: 'RestartError', code: 'REPLACEMENT_EXITED' });
    expect(error.outputTail).toContain('refusing to start');
    expect(await ask(b.socketPath, 'still')).toBe(oldPid);
    expect(registry.list().map((x: Backend) => x.pid)).toEqual([oldPid]);
    expect(existsSync(failing)).toBe(true);
  });

  it('keeps the old daemon serving when the replacement misses its ready deadline', async () => {
    const hang = marker();
    const { b, registry } = await startWith(['--hang-if', hang]);
    const oldPid = await ask(b.socketPath, 'x');
    writeFileSync(hang, '');
    const error = await registry.restart('echo@1.0.0', { readyDeadlineMs: 1500 }).catch((e) => e);
    expect(error).toMatchObject({ name: 'RestartError', code: 'READY_TIMEOUT' });
    expect(error.message).toContain('not ready within 1500 ms');
    expect(await ask(b.socketPath, 'still')).toBe(oldPid);
    await vi.waitFor(() => expect(processesMentioning(dirname(b.socketPath))).toEqual([oldPid]), {
      timeout: 20_000,
    });
  });

  it('kills an old daemon that ignores SIGTERM at the drain deadline', async () => {
    const { b, registry } = await startWith(['--ignore-sigterm']);
    const oldPid = await ask(b.socketPath, 'x');
    const gone = new Promise<string>((resolve) =>
      registry.on('gone', (backend: Backend, reason: string) => {
        if (backend.pid === oldPid) resolve(reason);
      }),
    );
    const outcome = await registry.restart('echo@1.0.0', { drainMs: 800 });
    const signalled = performance.now();
    await outcome.retired;
    expect(performance.now() - signalled).toBeGreaterThanOrEqual(700);
    expect(await gone).toContain('SIGKILL');
    expect(alive(oldPid)).toBe(false);
    expect(await ask(b.socketPath, 'y')).toBe(outcome.newPid);
  });

  describe.skipIf(!autogroups)('the replacement boot priority', () => {
    /** The replacement's autogroup nice, read `afterMs` after it was spawned (while it warms up). */
    function sampleReplacement(registry: BackendRegistry, oldPid: number, afterMs: number[]) {
      return new Promise<{ pid: number; nice: number[] }>((resolve) => {
        const onSpawned = (backend: Backend) => {
          if (backend.pid === oldPid || backend.pid === null) return;
          registry.off('spawned', onSpawned);
          const pid = backend.pid;
          const nice: number[] = [];
          for (const ms of afterMs)
            setTimeout(() => {
              expect(backend.state).toBe('starting');
              nice.push(autogroupOf(readFileSync(`/proc/${pid}/autogroup`, 'utf8'))!.nice);
              if (nice.length === afterMs.length) resolve({ pid, nice });
            }, ms);
        };
        registry.on('spawned', onSpawned);
      });
    }

    it('boots at nice 10 in its own autogroup, at full weight from before it takes a client', async () => {
      const { b, registry } = await startWith(['--warmup-ms', '3500']);
      const oldPid = await ask(b.socketPath, 'x');
      const sampled = sampleReplacement(registry, oldPid, [700]);
      const outcome = await registry.restart('echo@1.0.0', { drainMs: 1000 });
      const { pid, nice } = await sampled;
      expect(pid).toBe(outcome.newPid);
      expect(nice).toEqual([10]);
      // Given back before the promotion that routes it clients.
      expect(readFileSync(`/proc/${pid}/autogroup`, 'utf8')).toMatch(/ nice 0\n$/);
      expect(readFileSync(`/proc/${oldPid}/autogroup`, 'utf8')).toMatch(/ nice 0\n$/);
      expect(await ask(b.socketPath, 'y')).toBe(pid);
    });

    it('gives the weight back at half the ready deadline, and not at all with replacementNice 0', async () => {
      const slow = await startWith(['--warmup-ms', '3500']);
      const oldPid = await ask(slow.b.socketPath, 'x');
      // Deadline 6 s: restored at 3 s, while it still warms up.
      const sampled = sampleReplacement(slow.registry, oldPid, [700, 3200]);
      const restart = slow.registry.restart('echo@1.0.0', { readyDeadlineMs: 6000, drainMs: 1000 });
      expect((await sampled).nice).toEqual([10, 0]);
      await restart;

      const off = await startWith(['--warmup-ms', '2000'], { replacementNice: 0 });
      const offPid = await ask(off.b.socketPath, 'x');
      const unlowered = sampleReplacement(off.registry, offPid, [700]);
      await off.registry.restart('echo@1.0.0', { drainMs: 1000 });
      expect((await unlowered).nice).toEqual([0]);
    });

    it('gives the weight back after three times the last boot at full weight, on a slow replacement', async () => {
      const slow = marker();
      const { b, registry } = await startWith(['--slow-start-if', slow]);
      // The first boot, at full weight, as the registry times it: spawned → ready.
      const spawned = new Promise<number>((resolve) =>
        registry.once('spawned', () => resolve(performance.now())),
      );
      const ready = new Promise<number>((resolve) =>
        registry.once('ready', () => resolve(performance.now())),
      );
      const oldPid = await ask(b.socketPath, 'x');
      const firstBootMs = (await ready) - (await spawned);
      writeFileSync(slow, '');
      const budgetMs = Math.max(1000, 3 * firstBootMs);
      expect(budgetMs).toBeLessThan(6000);
      const sampled = sampleReplacement(registry, oldPid, [500, budgetMs + 700]);
      const restart = registry.restart('echo@1.0.0', { readyDeadlineMs: 30_000, drainMs: 1000 });
      // Half the deadline would be 15 s: this is the boot budget's doing.
      expect((await sampled).nice).toEqual([10, 0]);
      await restart;
    });
  });

  it('runs one restart per key at a time, and refuses NOT_RUNNING when nothing runs', async () => {
    const { b, registry } = await startWith([]);
    await expect(registry.restart('echo@1.0.0')).rejects.toMatchObject({ code: 'NOT_RUNNING' });
    await ask(b.socketPath, 'x');
    const one = registry.restart('echo@1.0.0', { drainMs: 1000 });
    const two = registry.restart('echo@1.0.0', { drainMs: 1000 });
    expect(two).toBe(one);
    const outcome = await one;
    await outcome.retired;
    expect(registry.list()).toHaveLength(1);
  });

  it('a new broker rediscovers the replacement on the second slot', async () => {
    const dir = tempDir('rediscover');
    dirs.push(dir);
    const options = {
      socketPath: dir.path('run', 'broker.sock'),
      services: [echoService('echo', {}, ['--pid-prefix'])],
      watchConfig: false,
    };
    const started: Broker[] = [];
    cleanups.push(async () => {
      for (const x of started) await x.close({ deadlineMs: 500 });
    });
    const first = await startBroker({ ...options, stopBackendsOnClose: false });
    started.push(first);
    const oldPid = await ask(first.socketPath, 'x');
    const outcome = await (first.registry as unknown as BackendRegistry).restart('echo@1.0.0', {
      drainMs: 1000,
    });
    await outcome.retired;
    expect(alive(oldPid)).toBe(false);
    await first.close({ deadlineMs: 500 });
    // Its daemon keeps serving on the second slot, for the next broker to find.
    const second = await startBroker(options);
    started.push(second);
    expect(second.registry.list().map((x) => [x.pid, x.endpoint])).toEqual([
      [outcome.newPid, expect.stringMatching(/echo_1\.0\.0\.sock$/)],
    ]);
    expect(await ask(second.socketPath, 'y')).toBe(outcome.newPid);
  });
});
