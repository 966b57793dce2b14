// A broker upgrade in place, end to end with real processes: `serve`, then
// `handoff-broker upgrade` (and SIGHUP) while 16 client loops do Hello + a
// request back to back. No connect fails, the daemon keeps its pid and is
// reused by each successor (no respawn), a session opened before keeps
// working, every old broker exits, and nothing leaks in any process.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { FdServer } from '@handoff/fdpass';
import { openFds, startDatagramReceiver } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { echoService, fixtures, tsxArgs } from './harness.js';
import {
  brokerPid,
  clientLoops,
  cliJson,
  daemonPids,
  echoOnce,
  gone,
  openSession,
  type UpgradeSetup,
  upgradeSetup,
} from './upgrade-harness.js';

let setup: UpgradeSetup | null = null;
afterEach(() => {
  setup?.cleanup();
  setup = null;
});

/** Fds of `pid` once it is quiet (client connections closed): polled until two reads agree. */
async function quietFds(pid: number): Promise<number> {
  let last = -1;
  for (let i = 0; i < 40; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = openFds(pid) ?? -1;
    if (now === last) return now;
    last = now;
  }
  return last;
}

describe('handoff-broker upgrade', () => {
  it('hands over 3 times under 16 client loops: 0 failed connects, same daemon, old brokers gone', async () => {
    expect.hasAssertions();
    setup = upgradeSetup('loops');
    const { socket } = setup;
    const first = await setup.serve();
    await echoOnce(socket, 'warm-up');
    const daemons = await daemonPids(socket);
    expect(daemons).toHaveLength(1);
    const daemon = daemons[0]!;
    const session = await openSession(socket);
    expect(await session.echo('before')).toBe('before');
    const testFds = openFds();
    const brokerFds = await quietFds(first.child.pid!);
    const daemonFds = await quietFds(daemon);

    const loops = clientLoops(socket, 16);
    const brokers = [first.child.pid!];
    for (let round = 0; round < 3; round++) {
      // Let the loops run against this broker for a while first.
      const okBefore = loops.ok();
      await expect.poll(() => loops.ok(), { timeout: 20_000 }).toBeGreaterThan(okBefore + 32);
      const { code, doc } = await cliJson(socket, ['upgrade']);
      expect(code, JSON.stringify(doc)).toBe(0);
      expect(doc).toMatchObject({ ok: true, code: 'UPGRADED', old_pid: brokers.at(-1) });
      const newPid = doc.new_pid as number;
      expect(newPid).not.toBe(brokers.at(-1));
      expect(await gone(brokers.at(-1)!), 'the old broker exits').toBe(true);
      brokers.push(newPid);
      expect(await session.echo(`after ${round}`)).toBe(`after ${round}`);
    }
    const okBefore = loops.ok();
    await expect.poll(() => loops.ok(), { timeout: 20_000 }).toBeGreaterThan(okBefore + 32);
    await loops.stop();

    expect(loops.failures()).toEqual([]);
    const [exitCode] = await first.exited;
    expect(exitCode, first.stderr()).toBe(0);
    expect(await brokerPid(socket)).toBe(brokers.at(-1));
    // The same daemon throughout: adopted by each successor, never respawned.
    expect(await daemonPids(socket)).toEqual([daemon]);
    expect(await session.echo('at the end')).toBe('at the end');
    session.close();
    // Leaks: in the test (client sockets), the final broker (against the
    // first: each successor holds the same things) and the daemon.
    expect(openFds()).toBeLessThanOrEqual(testFds);
    expect(await quietFds(brokers.at(-1)!)).toBeLessThanOrEqual(brokerFds);
    expect(await quietFds(daemon)).toBeLessThanOrEqual(daemonFds);
    // Processes: one broker and one daemon, nothing else from this test.
    for (const pid of brokers.slice(0, -1)) expect(await gone(pid)).toBe(true);

    // The final broker still shuts down as any does: daemon stopped, files gone.
    const { code } = await cliJson(socket, ['shutdown']);
    expect(code).toBe(0);
    expect(await gone(brokers.at(-1)!)).toBe(true);
    expect(await gone(daemon)).toBe(true);
    // The successor took the socket files over: it removes them, as their owner.
    expect(existsSync(socket)).toBe(false);
    expect(existsSync(join(dirname(socket), 'control.sock'))).toBe(false);
  });

  it('tells systemd: RELOADING=1 from the old broker, then MAINPID=<new> and READY=1 from the successor', async () => {
    expect.hasAssertions();
    setup = upgradeSetup('notify');
    const address = `@handoff-upgrade-test-${process.pid}-${randomBytes(6).toString('hex')}`;
    const manager = await startDatagramReceiver(address);
    try {
      const notes = () => manager.received.map((d) => d.toString());
      const first = await setup.serve({ NOTIFY_SOCKET: address });
      await expect.poll(notes).toContainEqual(expect.stringMatching(/^READY=1/));
      const { code, doc } = await cliJson(setup.socket, ['upgrade']);
      expect(code, JSON.stringify(doc)).toBe(0);
      const successor = doc.new_pid as number;
      await expect
        .poll(notes)
        .toContainEqual(expect.stringMatching(new RegExp(`^MAINPID=${successor}\nREADY=1`)));
      const sequence = notes();
      const reloading = sequence.findIndex((n) => /^RELOADING=1\nMONOTONIC_USEC=\d+/.test(n));
      const mainPid = sequence.findIndex((n) => n.startsWith(`MAINPID=${successor}\n`));
      expect(reloading).toBeGreaterThan(0);
      expect(mainPid).toBeGreaterThan(reloading);
      // The old broker never says STOPPING=1: the service is not stopping.
      expect(sequence.some((n) => n.startsWith('STOPPING=1'))).toBe(false);
      const [exitCode] = await first.exited;
      expect(exitCode).toBe(0);
    } finally {
      manager.close();
    }
  });

  it("under socket activation, hands over the manager's listener and never removes its file", async () => {
    expect.hasAssertions();
    setup = upgradeSetup('activated');
    const { socket } = setup;
    // The manager's socket: bound by the test, never accepted on here.
    const manager = await FdServer.listen(socket, { kind: 'stream', mode: 0o600 });
    manager.pause();
    try {
      const first = await setup.serve({}, manager.fd);
      await echoOnce(socket, 'warm-up');
      const { code, doc } = await cliJson(socket, ['upgrade']);
      expect(code, JSON.stringify(doc)).toBe(0);
      const [exitCode] = await first.exited;
      expect(exitCode, first.stderr()).toBe(0);
      expect(existsSync(socket)).toBe(true);
      await echoOnce(socket, 'after');
      // The successor shuts down as an activated broker does: the file stays the manager's.
      const shutdown = await cliJson(socket, ['shutdown']);
      expect(shutdown.code).toBe(0);
      expect(await gone(doc.new_pid as number)).toBe(true);
      expect(existsSync(socket)).toBe(true);
      expect(existsSync(join(dirname(socket), 'control.sock'))).toBe(false);
    } finally {
      manager.close();
    }
  });

  it('waits for a spawn in progress and hands its daemon over (no second spawn)', async () => {
    expect.hasAssertions();
    // A daemon slow to start: the upgrade's hello comes while it is spawning.
    const slow = echoService('echo', {
      command: 'sh',
      args: [
        '-c',
        'sleep 4; exec "$0" "$@"',
        process.execPath,
        ...tsxArgs,
        join(fixtures, 'echo-daemon.ts'),
      ],
    });
    setup = upgradeSetup('spawning', [slow]);
    const { socket } = setup;
    const first = await setup.serve();
    const connecting = echoOnce(socket, 'while spawning');
    const upgrade = await cliJson(socket, ['upgrade', '--ready-timeout', '30000']);
    expect(upgrade.code, JSON.stringify(upgrade.doc)).toBe(0);
    await connecting;
    const daemons = await daemonPids(socket);
    expect(daemons).toHaveLength(1);
    await echoOnce(socket, 'after');
    expect(await daemonPids(socket)).toEqual(daemons);
    const [exitCode] = await first.exited;
    expect(exitCode, first.stderr()).toBe(0);
    // The handover did begin while the daemon was still starting.
    const log = first.stderr();
    expect(log.indexOf('upgrade: successor loaded')).toBeGreaterThan(-1);
    expect(log.indexOf('upgrade: successor loaded')).toBeLessThan(log.indexOf('"backend ready"'));
  });

  it('upgrades on SIGHUP to serve', async () => {
    expect.hasAssertions();
    setup = upgradeSetup('sighup');
    const { socket } = setup;
    const first = await setup.serve();
    await echoOnce(socket, 'warm-up');
    const [daemon] = await daemonPids(socket);
    first.child.kill('SIGHUP');
    const [exitCode] = await first.exited;
    expect(exitCode, first.stderr()).toBe(0);
    expect(first.stderr()).toMatch(/handed over to pid \d+/);
    const successor = await brokerPid(socket);
    expect(successor).not.toBe(first.child.pid);
    await echoOnce(socket, 'after');
    expect(await daemonPids(socket)).toEqual([daemon]);
  });
});
