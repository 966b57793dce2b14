// Starting one daemon process: its command line, the environment a broker
// gives it (where to attach, which endpoint to serve, under which name),
// its own process group, and what becomes of its stdout and stderr. The
// registry (backend-registry.ts) decides when to spawn and what readiness
// means; this file owns only the process's birth and its output.
//
// fdpass's spawnProcessAsync, not child_process.spawn: the latter forks, and
// a fork of the broker stalled its event loop (every client in flight) for
// 4-12 ms per daemon start. posix_spawn copies nothing, and on a pool thread
// it does not pause the event loop even for the child's exec.
import { BROKER_ENV } from '@handoff/backend-sdk';
import { type SpawnedProcess, spawnProcessAsync } from '@handoff/fdpass';
import type { ServiceDefinition } from './config/definition.js';
import { DAEMON_LISTEN_FD } from './lifecycle/owned-socket.js';
import {
  captureOutput,
  type DaemonOutput,
  type OutputFds,
  streamsFromFds,
} from './logs/capture.js';
import { acquireLogFile, type LogFile, type LogNotice } from './logs/log-file.js';
import { logFilePath } from './logs/record.js';
import { withoutManagerEnv } from './systemd/manager-env.js';

export interface LaunchOptions extends OutputOptions {
  /** The socket the daemon serves (HANDOFF_ENDPOINT). */
  endpoint: string;
  /** The broker's control socket (HANDOFF_BROKER_CONTROL). */
  controlPath: string;
  /**
   * The endpoint's listening socket, bound by the broker (see
   * lifecycle/owned-socket.ts): the child gets it as fd 3, named by
   * HANDOFF_LISTEN_FD. Without it the daemon binds its own.
   */
  listenFd?: number;
}

/** Where a daemon's output goes (stdout and stderr are always captured). */
export interface OutputOptions {
  /** `<stateDir>/logs/<service>-<version>.log`; absent: output is kept for tail() only. */
  stateDir?: string | undefined;
  /** Where a log file's write failures are reported (once per episode). */
  logNotice?: LogNotice | undefined;
}

export type { DaemonOutput, OutputFds };

export interface LaunchedDaemon {
  child: SpawnedProcess;
  output: DaemonOutput;
}

/**
 * Spawns `definition`'s command in its own session and process group (a
 * daemon outlives a broker restart), detached from the broker's event loop.
 * Rejects with FdPassError when nothing could be started (ENOENT: no such
 * command or cwd; EACCES: not executable). `listenFd` may be closed once
 * this returns its promise.
 */
export async function launchDaemon(
  definition: ServiceDefinition,
  options: LaunchOptions,
): Promise<LaunchedDaemon> {
  const child = await spawnProcessAsync(definition.command, definition.args, {
    cwd: definition.cwd,
    env: {
      // What systemd handed the broker (NOTIFY_SOCKET, LISTEN_*) is not for daemons.
      ...withoutManagerEnv(process.env),
      ...definition.env,
      [BROKER_ENV.control]: options.controlPath,
      [BROKER_ENV.endpoint]: options.endpoint,
      [BROKER_ENV.service]: definition.name,
      [BROKER_ENV.version]: definition.version,
      // Where the daemon's crash reports go (@handoff/backend-sdk crash-report.ts).
      ...(options.stateDir === undefined ? {} : { [BROKER_ENV.stateDir]: options.stateDir }),
      ...(options.listenFd === undefined
        ? {}
        : { [BROKER_ENV.listenFd]: String(DAEMON_LISTEN_FD) }),
    },
    stdio: [
      'ignore',
      'pipe',
      'pipe',
      ...(options.listenFd === undefined ? [] : [options.listenFd]),
    ],
    detached: true,
  });
  const output = captureOutput(
    child.pid ?? 0,
    { stdout: child.stdout, stderr: child.stderr },
    openLog(definition, options),
  );
  child.unref();
  return { child, output };
}

/**
 * Upgrade, successor broker: captures the pipes a predecessor read for
 * daemon `pid` of `definition` (fds received over fdpass; they become the
 * returned object's, closed by its close()), into the same log file.
 */
export function adoptDaemonOutput(
  definition: ServiceDefinition,
  pid: number,
  fds: OutputFds,
  options: OutputOptions,
): DaemonOutput {
  return captureOutput(pid, streamsFromFds(fds), openLog(definition, options));
}

function openLog(definition: ServiceDefinition, options: OutputOptions): LogFile | null {
  if (options.stateDir === undefined) return null;
  return acquireLogFile(
    logFilePath(options.stateDir, definition.name, definition.version),
    { maxBytes: definition.logMaxBytes, files: definition.logFiles },
    options.logNotice ?? (() => {}),
  );
}
