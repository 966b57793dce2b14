// Starting a broker — fresh, or as an upgrade's successor — and the CLI's
// last resort against one whose shutdown overran. What is checked before
// anything opens (root, an inherited listener) lives here; the running
// broker itself is broker-server.ts's.
import { FdServer } from '@handoff/fdpass';
import type { Broker, BrokerOptions } from './broker-api.js';
import { BrokerImpl } from './broker-server.js';
import { CLIENT_SOCKET_OPTIONS } from './hello-router.js';
import { refuseRoot } from './root-refusal.js';
import { adoptListener } from './systemd/listen-fds.js';
import type { UpgradeTakeover } from './upgrade/takeover.js';

export function startBroker(options: BrokerOptions = {}): Promise<Broker> {
  return launchBroker(options, null);
}

/**
 * Starts a broker as an upgrade's successor: it takes the old broker's
 * listeners, channels and daemons from `takeover` instead of binding
 * (`serve` does, given HANDOFF_UPGRADE_FD; not part of the public API).
 */
export function startSuccessorBroker(
  options: BrokerOptions,
  takeover: UpgradeTakeover,
): Promise<Broker> {
  return launchBroker(options, takeover);
}

async function launchBroker(
  options: BrokerOptions,
  takeover: UpgradeTakeover | null,
): Promise<Broker> {
  refuseRoot(options.allowRoot);
  // Adopted first: its bound path says where the broker lives (the control
  // socket goes beside it).
  const adopted =
    options.listenFd === undefined
      ? null
      : adoptListener({ fd: options.listenFd, name: '' }, (fd) => {
          const server = FdServer.fromFd(fd, { reserveFd: true, ...CLIENT_SOCKET_OPTIONS });
          // Clients already queued (systemd accepts on our behalf until we
          // start) wait in the backlog until start() is ready to serve them.
          server.pause();
          return server;
        });
  let broker: BrokerImpl;
  try {
    broker = new BrokerImpl(options, adopted, takeover);
  } catch (error) {
    adopted?.close();
    throw error;
  }
  try {
    await broker.start();
  } catch (error) {
    adopted?.close();
    throw error;
  }
  return broker;
}

/**
 * SIGKILLs every daemon the broker spawned, at once: the CLI's last resort
 * when a shutdown overruns, so that no daemon outlives its broker.
 */
export function killBackendsNow(broker: Broker): void {
  if (broker instanceof BrokerImpl) broker.registry.killAll();
}
