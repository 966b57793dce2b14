// What `handoff-broker serve` adds around upgrades: the successor's command
// (this process again, or HANDOFF_UPGRADE_SUCCESSOR for tests and unusual
// installs, with the manager's NOTIFY_SOCKET passed on), SIGHUP as a
// trigger, the sd_notify messages around an upgrade, and the exit of a
// broker that handed over — without stopping its daemons.
import type { Broker } from '../broker-api.js';
import type { SystemdNotifier } from '../systemd/notify.js';
import { UpgradeError } from './errors.js';
import type { UpgradeResult } from './handover.js';
import { defaultSuccessorCommand, type SuccessorCommand } from './successor.js';
import type { UpgradeTakeover } from './takeover.js';

/** A JSON array `[command, ...args]` replacing the default successor command line. */
export const SUCCESSOR_ENV = 'HANDOFF_UPGRADE_SUCCESSOR';
/** How long past its close a broker that handed over may take to exit on its own. */
const RETIRE_EXIT_GRACE_MS = 5000;

/**
 * The successor's command: $HANDOFF_UPGRADE_SUCCESSOR (removed from `env`:
 * no daemon and no successor inherits it) or this process's own; its
 * environment is ours plus what the manager gave us and we unset.
 */
export function successorCommand(
  env: NodeJS.ProcessEnv,
  notifier: SystemdNotifier,
): SuccessorCommand {
  const raw = env[SUCCESSOR_ENV];
  delete env[SUCCESSOR_ENV];
  let command = defaultSuccessorCommand();
  if (raw !== undefined && raw !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      parsed = null;
    }
    if (
      !Array.isArray(parsed) ||
      parsed.length === 0 ||
      !parsed.every((word): word is string => typeof word === 'string')
    )
      throw new UpgradeError(
        'SUCCESSOR_SPAWN_FAILED',
        `${SUCCESSOR_ENV} must be a JSON array of strings [command, ...args]`,
      );
    command = { command: parsed[0] as string, args: parsed.slice(1) };
  }
  return {
    ...command,
    // Read at spawn time: the environment as it is then.
    get env() {
      const address = notifier.address;
      const usec = notifier.watchdogIntervalUsec;
      return {
        ...env,
        ...(address === null ? {} : { NOTIFY_SOCKET: address }),
        ...(usec === null ? {} : { WATCHDOG_USEC: String(usec) }),
      };
    },
  };
}

/**
 * SIGHUP upgrades (a failure is logged by the broker and it keeps
 * serving); RELOADING=1 when one starts, READY=1 again when it fails. Once
 * handed over, the watchdog stops (the successor's is the main pid now)
 * and the process exits 0 once the broker closed (at the latest a grace
 * later), its daemons left running. Returns a function that removes the handler.
 */
export function serveUpgrades(
  broker: Broker,
  notifier: SystemdNotifier,
  serving: () => string,
  io: { stderr(text: string): void },
): () => void {
  const onHangup = () => {
    broker.upgrade().catch(() => {
      // Reported by 'upgrade-failed'.
    });
  };
  process.on('SIGHUP', onHangup);
  broker.on('upgrading', () => notifier.reloading('upgrading: starting a successor broker'));
  broker.on('upgrade-failed', (error: Error) => {
    io.stderr(`handoff-broker serve: upgrade failed, still serving: ${error.message}\n`);
    notifier.ready(serving());
  });
  broker.on('upgraded', (result: UpgradeResult) => {
    notifier.close();
    io.stderr(
      `handoff-broker serve: handed over to pid ${result.newPid} (clients waited ${result.switchMs.toFixed(1)} ms); exiting\n`,
    );
    // Armed at 'close' (retire ends by itself: its drain and its stops are
    // bounded): whatever handle lingers then, the process ends, daemons untouched.
    broker.once('close', () => setTimeout(() => process.exit(0), RETIRE_EXIT_GRACE_MS).unref());
  });
  return () => process.off('SIGHUP', onHangup);
}

/**
 * A successor whose start failed: tell the old broker why (it reports it
 * and keeps serving) and exit now — what was adopted (listeners, channels)
 * must not keep this process alive, and its daemons are not ours to stop.
 */
export function abandonTakeover(
  takeover: UpgradeTakeover,
  error: unknown,
  io: { stderr(text: string): void },
): never {
  const reason = error instanceof Error ? error.message : String(error);
  io.stderr(`handoff-broker serve: cannot take over: ${reason}\n`);
  takeover.fail(reason);
  process.exit(1);
}
