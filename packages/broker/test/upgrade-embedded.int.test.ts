// Broker.upgrade() for an embedder (startBroker in this process, the
// successor given by BrokerOptions.successor): the old broker is the test
// process itself, so its fds are counted exactly — after a failed upgrade
// it holds what it held before, and after a successful one it holds
// nothing of the broker's any more (listeners, channels, pipes, store).
import { writeFileSync } from 'node:fs';
import { openFds, processesMentioning, quietFdCount } from '@handoff/testkit';
import { fdTargetsAdded, openFdTargets } from '@handoff/testkit/fds';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../src/broker-api.js';
import { startBroker } from '../src/broker-launch.js';
import { UpgradeError } from '../src/upgrade/errors.js';
import { echoService, tempDir, tsxArgs } from './harness.js';
import { brokerPid, daemonPids, echoOnce, gone, main } from './upgrade-harness.js';

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Paths {
  socketPath: string;
  configFile: string;
  stateDir: string;
}

/** `successor` may name a marker: it goes in the successor's environment, where processesMentioning finds it. */
async function embedded(
  successor: (paths: Paths) => { command: string; args: string[]; marker?: string },
) {
  const tmp = tempDir('upgrade-embedded');
  cleanups.push(() => tmp.remove());
  const configFile = tmp.path('services.json');
  writeFileSync(configFile, JSON.stringify({ services: [echoService('echo')] }));
  const socketPath = tmp.path('run/broker.sock');
  process.env.HANDOFF_TEST_DIR = tmp.dir;
  cleanups.push(() => {
    delete process.env.HANDOFF_TEST_DIR;
    for (const pid of processesMentioning(tmp.dir)) process.kill(pid, 'SIGKILL');
  });
  const command = successor({ socketPath, configFile, stateDir: tmp.path('state') });
  const broker: Broker = await startBroker({
    socketPath,
    configFile,
    watchConfig: false,
    logger: pino({ level: 'silent' }),
    successor: {
      ...command,
      env: {
        ...process.env,
        HANDOFF_TEST_DIR: tmp.dir,
        HANDOFF_LOG_LEVEL: 'silent',
        HANDOFF_TEST_MARKER: command.marker ?? '',
      },
    },
  });
  cleanups.push(() => broker.close({ deadlineMs: 1000 }));
  return { broker, socketPath, configFile, dir: tmp.dir };
}

describe('Broker.upgrade (embedded)', () => {
  it('fails at the deadline, kills the successor, and keeps serving with the same fds', async () => {
    expect.hasAssertions();
    const marker = `hang-${process.pid}-${Date.now()}`;
    const { broker, socketPath } = await embedded(() => ({
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      marker,
    }));
    await echoOnce(socketPath, 'warm-up');
    await quietFdCount();
    const fds = openFdTargets();
    const events: string[] = [];
    broker.on('upgrading', () => events.push('upgrading'));
    broker.on('upgrade-failed', (e: UpgradeError) => events.push(`failed ${e.code}`));
    const upgrading = broker.upgrade({ readyDeadlineMs: 1500 }).then(
      () => null,
      (e: unknown) => e,
    );
    // The successor runs while the upgrade waits for it...
    await expect.poll(() => processesMentioning(marker).length).toBe(1);
    const failure = await upgrading;
    expect(failure).toBeInstanceOf(UpgradeError);
    expect((failure as UpgradeError).code).toBe('SUCCESSOR_TIMEOUT');
    expect(events).toEqual(['upgrading', 'failed SUCCESSOR_TIMEOUT']);
    // ...and is gone (killed and reaped) when it failed.
    expect(processesMentioning(marker)).toEqual([]);
    // Nothing the upgrade opened is left, and nothing the broker held is gone.
    const now = openFdTargets();
    expect(fdTargetsAdded(fds, now)).toEqual([]);
    expect(fdTargetsAdded(now, fds)).toEqual([]);
    await echoOnce(socketPath, 'after');
  });

  it('close() during an upgrade calls it off (successor killed) and shuts down as usual', async () => {
    expect.hasAssertions();
    const marker = `hang-close-${process.pid}-${Date.now()}`;
    const { broker, socketPath } = await embedded(() => ({
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      marker,
    }));
    await echoOnce(socketPath, 'warm-up');
    const [daemon] = await daemonPids(socketPath);
    const upgrading = broker.upgrade({ readyDeadlineMs: 60_000 }).then(
      () => null,
      (e: UpgradeError) => e.code,
    );
    await expect.poll(() => processesMentioning(marker).length).toBe(1);
    const started = performance.now();
    await broker.close({ deadlineMs: 1000 });
    expect(await upgrading).toBe('NOT_SERVING');
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(processesMentioning(marker)).toEqual([]);
    // A plain shutdown after all: its daemon stopped.
    expect(await gone(daemon!)).toBe(true);
  });

  it('joins a second call, hands over to a serve successor, and lets go of everything', async () => {
    expect.hasAssertions();
    // The successor serves the same socket and config as this broker.
    const { broker, socketPath } = await embedded((paths) => ({
      command: process.execPath,
      args: [
        ...tsxArgs,
        main,
        'serve',
        '--socket',
        paths.socketPath,
        '--config-file',
        paths.configFile,
        '--state-dir',
        paths.stateDir,
      ],
    }));
    const fdsBefore = openFds();
    await echoOnce(socketPath, 'warm-up');
    const [daemon] = await daemonPids(socketPath);
    const closed = new Promise<void>((resolve) => broker.once('close', () => resolve()));
    const first = broker.upgrade({ readyDeadlineMs: 30_000 });
    const second = broker.upgrade();
    const [a, b] = await Promise.all([first, second]);
    expect(b).toBe(a);
    expect(a.oldPid).toBe(process.pid);
    await closed;
    expect(await brokerPid(socketPath)).toBe(a.newPid);
    expect(await daemonPids(socketPath)).toEqual([daemon]);
    await echoOnce(socketPath, 'served by the successor');
    // Everything the broker held here is closed; the daemon was not stopped.
    expect(openFds()).toBeLessThanOrEqual(fdsBefore);
    expect(await gone(daemon!, 500)).toBe(false);
    await expect(broker.upgrade()).rejects.toMatchObject({ code: 'NOT_SERVING' });
  });
});
