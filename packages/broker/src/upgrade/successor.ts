// Starting a successor broker for an upgrade: its command line (by default
// this very process's, so a newer install at the same path is picked up),
// its own process group, and one end of a seqpacket pair as an extra stdio
// fd named by HANDOFF_UPGRADE_FD. What is said on that pair is handover.ts's.
// Started by fdpass's spawnProcess (posix_spawn), like daemons: a fork would
// stall this broker, which keeps serving until the successor is ready.
import { fstatSync } from 'node:fs';
import { FdSocket, type SpawnedProcess, spawnProcess } from '@handoff/fdpass';
import { MAX_UPGRADE_MESSAGE_BYTES } from './wire.js';

/** The environment variable naming the successor's end of the upgrade channel. */
export const UPGRADE_FD_ENV = 'HANDOFF_UPGRADE_FD';
/** The fd number the successor finds it at (the first after stdio). */
const SUCCESSOR_FD = 3;

/** How to start a successor broker (BrokerOptions.successor). */
export interface SuccessorCommand {
  command: string;
  args: readonly string[];
  /** Its environment; defaults to this process's (HANDOFF_UPGRADE_FD is added). */
  env?: NodeJS.ProcessEnv;
}

/** This process again: node, its flags (loaders, conditions) and its script with its arguments. */
export function defaultSuccessorCommand(): SuccessorCommand {
  return { command: process.execPath, args: [...process.execArgv, ...process.argv.slice(1)] };
}

export interface LaunchedSuccessor {
  child: SpawnedProcess;
  /** Our end of the upgrade channel. */
  channel: FdSocket;
}

/**
 * Spawns the successor detached (it outlives us), with our stdout and
 * stderr. Throws FdPassError when it cannot start (ENOENT, EACCES). Our
 * copy of its end is closed here.
 */
export function launchSuccessor(successor: SuccessorCommand): LaunchedSuccessor {
  const [ours, theirs] = FdSocket.pair('seqpacket', {
    maxMessageSize: MAX_UPGRADE_MESSAGE_BYTES,
  });
  try {
    const child = spawnProcess(successor.command, [...successor.args], {
      env: { ...(successor.env ?? process.env), [UPGRADE_FD_ENV]: String(SUCCESSOR_FD) },
      stdio: ['ignore', inherited(1), inherited(2), theirs.fd],
      detached: true,
    });
    return { child, channel: ours };
  } catch (error) {
    ours.close();
    throw error;
  } finally {
    theirs.close();
  }
}

/** Our fd `fd` for the child's same fd, or /dev/null when we have none open there. */
function inherited(fd: number): number | 'ignore' {
  try {
    fstatSync(fd);
    return fd;
  } catch {
    return 'ignore';
  }
}
