// The sd_notify messages an upgrade adds (src/systemd/notify.ts): the
// successor's MAINPID=<pid> + READY=1, and the address a predecessor passes
// on, to a real datagram socket in another process.
import { randomBytes } from 'node:crypto';
import { startDatagramReceiver } from '@handoff/testkit';
import { describe, expect, it } from 'vitest';
import { SystemdNotifier } from '../src/systemd/notify.js';

describe('SystemdNotifier for upgrades', () => {
  it('sends MAINPID=<pid> with READY=1 and a one-line STATUS', async () => {
    const address = `@handoff-notify-upgrade-${process.pid}-${randomBytes(6).toString('hex')}`;
    const manager = await startDatagramReceiver(address);
    try {
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: address };
      const notifier = SystemdNotifier.fromEnv(env);
      expect(notifier.address).toBe(address);
      expect(env.NOTIFY_SOCKET).toBeUndefined();
      notifier.readyAsMain('serving\n2 services', 4242);
      notifier.readyAsMain();
      await expect.poll(() => manager.received.length).toBe(2);
      expect(manager.received.map(String)).toEqual([
        'MAINPID=4242\nREADY=1\nSTATUS=serving 2 services',
        `MAINPID=${process.pid}\nREADY=1`,
      ]);
    } finally {
      manager.close();
    }
  });

  it('has no address without NOTIFY_SOCKET', () => {
    expect(SystemdNotifier.fromEnv({}).address).toBeNull();
  });
});
