// The channel a dispatcher master gives each worker process at spawn, both
// ends of the handover: spawning a worker with its end as fd 3 (the
// environment variable names it), and taking that fd over in the worker.
// What travels on it is wire.ts; the rest of a worker's life is
// worker-pool.ts (master side) and worker.ts (worker side).
import { type ChildProcess, spawn } from 'node:child_process';
import { closeFd, duplicateFd, FdSocket } from '@handoff/fdpass';
import { DispatchError } from './errors.js';
import { MAX_FDS_PER_DISPATCH } from './wire.js';

/** Set by the master in each worker's environment: the fd number of its channel. */
export const DISPATCH_CHANNEL_ENV = 'HANDOFF_DISPATCH_FD';

/**
 * Takes the channel fd named in the environment: moves it to a
 * close-on-exec duplicate (a process this worker spawns must not inherit
 * it, or the master would never see the channel close when we die) and
 * forgets the variable, so a child of ours is not mistaken for a worker.
 */
export function channelFromEnvironment(): FdSocket {
  const raw = process.env[DISPATCH_CHANNEL_ENV];
  if (raw === undefined || !/^\d{1,9}$/.test(raw)) {
    throw new DispatchError(
      'NOT_A_WORKER',
      `serveDispatched: ${DISPATCH_CHANNEL_ENV} is ${raw === undefined ? 'not set' : `"${raw}"`}; this process was not spawned by a dispatcher`,
    );
  }
  const inherited = Number(raw);
  let fd: number;
  try {
    fd = duplicateFd(inherited);
  } catch (err) {
    throw DispatchError.from(
      'NOT_A_WORKER',
      `serveDispatched: the channel fd ${inherited} is not usable`,
      err,
    );
  }
  closeFd(inherited);
  delete process.env[DISPATCH_CHANNEL_ENV];
  try {
    return FdSocket.adopt(fd, { maxFdsPerMessage: 253 });
  } catch (err) {
    closeFd(fd);
    throw DispatchError.from(
      'NOT_A_WORKER',
      `serveDispatched: fd ${inherited} is not a channel`,
      err,
    );
  }
}

/** How a worker process is started (Settings, as options.ts resolves them). */
export interface SpawnCommand {
  command: string;
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  silent: boolean;
}

/**
 * Spawns worker `index` with a fresh channel; returns the master's end.
 * Throws DispatchError (CHANNEL_FAILED / SPAWN_FAILED, naming the errno)
 * having released everything it created. A child without a pid failed to
 * exec: libuv says why in its 'error' event, on the next tick.
 */
export function spawnWithChannel(
  s: SpawnCommand,
  index: number,
): { mine: FdSocket; child: ChildProcess } {
  let mine: FdSocket;
  let theirs: FdSocket;
  try {
    [mine, theirs] = FdSocket.pair('seqpacket', { maxFdsPerMessage: MAX_FDS_PER_DISPATCH });
  } catch (err) {
    throw DispatchError.from('CHANNEL_FAILED', `cannot open the channel for worker ${index}`, err);
  }
  let child: ChildProcess;
  try {
    // The channel is a socketpair handed over at spawn, as the child's
    // fd 3 (stdio[3]; the env var names it), rather than a Unix path the
    // worker would connect to: no file to secure or clean up, no accept
    // step that could pair the wrong peer, and each end exists in exactly
    // the two processes that own it from the first instant.
    child = spawn(s.command, s.argv, {
      stdio: [
        'ignore',
        s.silent ? 'ignore' : 'inherit',
        s.silent ? 'ignore' : 'inherit',
        theirs.fd,
      ],
      env: { ...s.env, [DISPATCH_CHANNEL_ENV]: '3' },
    });
  } catch (err) {
    mine.close();
    theirs.close();
    throw DispatchError.from('SPAWN_FAILED', `cannot spawn worker ${index}`, err);
  } finally {
    // The child has its own copy (or none, if spawn failed). Ours must go
    // now: an end left open here would keep the channel alive after the
    // worker dies, and its death would go unseen.
    theirs.close();
  }
  return { mine, child };
}
