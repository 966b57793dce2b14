// The Node built-in baseline: child.send(msg, socket, { keepOpen: true }) over
// the spawn IPC channel, one handle per message, sent as one burst. Node
// sends a handle only after the previous one was acknowledged and replays
// its whole pending queue on every ack, so a burst degrades with its size;
// that is the behaviour the issue asks us to compare against.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { BuiltinMessage, BuiltinReply } from './builtin-ipc-child.ts';
import { benchRoot, childExecArgv } from './paths.ts';

export interface BuiltinRound {
  /** Handles the child destroyed and acknowledged. */
  handles: number;
  seconds: number;
  /** True when the burst hit the time cap; handles/seconds are then partial. */
  capped: boolean;
}

export interface BuiltinIpc {
  /** Sends `burst` handles and resolves when the child acknowledged all. */
  round(burst: number, capMs: number): Promise<BuiltinRound>;
  close(): Promise<void>;
}

const childPath = join(benchRoot, 'src', 'fdpass', 'builtin-ipc-child.ts');

export async function startBuiltinIpc(dir: string): Promise<BuiltinIpc> {
  // The handle we pass: one end of a connected Unix socket, kept open by
  // the parent (keepOpen), dup'ed into the child by Node on every send.
  const server: Server = createServer();
  const path = join(dir, 'builtin.sock');
  server.listen(path);
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const handle: Socket = netConnect(path);
  await once(handle, 'connect');
  const [peer] = (await accepted) as [Socket];

  let child = spawnChild();
  await waitReply(child, 'ready', Number.POSITIVE_INFINITY);

  return {
    async round(burst, capMs) {
      if (child.exitCode !== null || child.signalCode !== null) {
        child = spawnChild();
        await waitReply(child, 'ready', Number.POSITIVE_INFINITY);
      }
      let progress = { count: 0, at: process.hrtime.bigint() };
      const onProgress = (reply: BuiltinReply) => {
        if (reply.kind === 'progress')
          progress = { count: reply.count, at: process.hrtime.bigint() };
      };
      child.on('message', onProgress);
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < burst; i++) {
        const message: BuiltinMessage = { last: i === burst - 1 };
        child.send(message, handle, { keepOpen: true });
      }
      try {
        const done = await waitReply(child, 'done', capMs);
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        if (done.count !== burst) {
          throw new Error(`built-in IPC child counted ${done.count} handles, expected ${burst}`);
        }
        return { handles: burst, seconds, capped: false };
      } catch (err) {
        if (!(err instanceof CapError)) throw err;
        // The queued sends cannot be withdrawn; the child is discarded and a
        // fresh one serves the next round.
        child.kill('SIGKILL');
        await once(child, 'exit');
        return {
          handles: progress.count,
          seconds: Number(progress.at - t0) / 1e9,
          capped: true,
        };
      } finally {
        child.off('message', onProgress);
      }
    },
    async close() {
      if (child.connected) child.disconnect();
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
      handle.destroy();
      peer.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

class CapError extends Error {}

function spawnChild(): ChildProcess {
  return fork(childPath, [], {
    cwd: benchRoot,
    execArgv: childExecArgv,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
}

function waitReply(
  child: ChildProcess,
  kind: BuiltinReply['kind'],
  timeoutMs: number,
): Promise<BuiltinReply> {
  return new Promise((resolve, reject) => {
    const timer = Number.isFinite(timeoutMs)
      ? setTimeout(() => finish(new CapError(`no '${kind}' within ${timeoutMs} ms`)), timeoutMs)
      : undefined;
    const onMessage = (reply: BuiltinReply) => {
      if (reply.kind === kind) finish(undefined, reply);
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`built-in IPC child exited (${signal ?? code}) before '${kind}'`));
    function finish(err: Error | undefined, reply?: BuiltinReply) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err !== undefined) reject(err);
      else resolve(reply!);
    }
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}
