// Our case: @handoff/fdpass between the bench process (sender) and a child
// Node process (receiver) over a SOCK_SEQPACKET path in a private temp dir.
// The sender pipelines writes and waits for 'drain' only on backpressure.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { closeFd, FdServer, type FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { benchRoot, childExecArgv } from './paths.ts';
import { readCount, roundMessage } from './round-protocol.ts';

/** Distinct open files the sender cycles through, as in c/fdbench.c. */
const BASE_FDS = 4;
const receiverPath = join(benchRoot, 'src', 'fdpass', 'ours-receiver.ts');

export interface OursPair {
  /** Sends `messages` messages of `fdsPerMessage` fds; seconds until acked. */
  round(messages: number, fdsPerMessage: number): Promise<number>;
  close(): Promise<void>;
}

export async function startOursPair(dir: string): Promise<OursPair> {
  const path = join(dir, 'fdpass.sock');
  const server = await FdServer.listen(path, { kind: 'seqpacket' });
  const child = spawn(process.execPath, [...childExecArgv, receiverPath, path], {
    cwd: benchRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = once(child, 'exit').then(([code, signal]) => {
    throw new Error(`fdpass receiver exited (${signal ?? code})`);
  });
  exited.catch(() => {});
  const [sock] = (await Promise.race([once(server, 'connection'), exited])) as [FdSocket];
  sock.on('error', (err: Error) => console.error(`# fdpass sender socket: ${err.message}`));

  // libuv opens files with O_CLOEXEC, as c/fdbench.c does.
  const base = Array.from({ length: BASE_FDS }, () => openSync('/dev/null', 'r'));
  const middle = roundMessage(false);
  const last = roundMessage(true);

  return {
    async round(messages, fdsPerMessage) {
      const fds = Array.from({ length: fdsPerMessage }, (_, i) => base[i % BASE_FDS]!);
      const acked = new Promise<number>((resolve) => {
        sock.once('message', ({ data, fds: stray }: ReceivedMessage) => {
          for (const fd of stray) closeFd(fd);
          resolve(readCount(data));
        });
      });
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < messages; i++) {
        if (!sock.write(i === messages - 1 ? last : middle, fds)) {
          await Promise.race([once(sock, 'drain'), exited]);
        }
      }
      const count = await Promise.race([acked, exited]);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (count !== messages * fdsPerMessage) {
        throw new Error(
          `fdpass receiver counted ${count} fds, expected ${messages * fdsPerMessage}`,
        );
      }
      return seconds;
    },
    async close() {
      sock.close();
      await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(r, 2000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (const fd of base) closeSync(fd);
      server.close();
    },
  };
}
