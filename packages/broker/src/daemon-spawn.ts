// Starting one daemon process: its command line, the environment a broker
// gives it (where to attach, which endpoint to serve, under which name),
// its own process group, and what becomes of its stdout and stderr. The
// registry (backend-registry.ts) decides when to spawn and what readiness
// means; this file owns only the process's birth and its output.
import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { BROKER_ENV } from '@handoff/backend-sdk';
import type { ServiceDefinition } from './config/definition.js';
import { withoutManagerEnv } from './systemd/manager-env.js';

export interface LaunchOptions {
  /** The socket the daemon serves (HANDOFF_ENDPOINT). */
  endpoint: string;
  /** The broker's control socket (HANDOFF_BROKER_CONTROL). */
  controlPath: string;
}

/** A spawned daemon's output streams, while the broker holds them. */
export interface DaemonOutput {
  /** The last bytes it wrote to stderr, as text, for a spawn failure's report. */
  tail(): string;
  /** Lets the broker's event loop end while the daemon still writes. */
  unref(): void;
  /** Stops reading and closes the broker's ends of the pipes. */
  close(): void;
}

export interface LaunchedDaemon {
  child: ChildProcess;
  output: DaemonOutput;
}

/** How much of a daemon's stderr a spawn failure reports. */
const STDERR_TAIL_BYTES = 4096;

/**
 * Spawns `definition`'s command in its own process group (a daemon
 * outlives a broker restart), detached from the broker's event loop.
 * Throws what spawn() throws synchronously (a bad cwd, say); an exec
 * failure arrives later as the child's 'error'.
 */
export function launchDaemon(
  definition: ServiceDefinition,
  options: LaunchOptions,
): LaunchedDaemon {
  const child = spawn(definition.command, definition.args, {
    cwd: definition.cwd,
    env: {
      // What systemd handed the broker (NOTIFY_SOCKET, LISTEN_*) is not for daemons.
      ...withoutManagerEnv(process.env),
      ...definition.env,
      [BROKER_ENV.control]: options.controlPath,
      [BROKER_ENV.endpoint]: options.endpoint,
      [BROKER_ENV.service]: definition.name,
      [BROKER_ENV.version]: definition.version,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
  const output = stderrTail(child.stderr!);
  child.unref();
  return { child, output };
}

/** Keeps the last STDERR_TAIL_BYTES of a stream. */
function stderrTail(stderr: Readable): DaemonOutput {
  let kept = Buffer.alloc(0);
  stderr.on('data', (chunk: Buffer) => {
    kept = Buffer.concat([kept, chunk]);
    if (kept.length > STDERR_TAIL_BYTES) kept = kept.subarray(kept.length - STDERR_TAIL_BYTES);
  });
  return {
    tail: () => kept.toString('utf8'),
    unref: () => (stderr as Readable & { unref?: () => void }).unref?.(),
    close: () => stderr.destroy(),
  };
}
