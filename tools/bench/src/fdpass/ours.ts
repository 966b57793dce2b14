// Our case: @handoff/fdpass between the sender (ours-sender.ts) and a child
// Node process (receiver) over a SOCK_SEQPACKET path in a private temp dir.
// The sender pipelines writes and waits for 'drain' only on backpressure.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { closeFd, FdServer, type FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { type NativeRound, runRoundProgram } from './native-baselines.ts';
import { benchRoot, childExecArgv } from './paths.ts';
import { readCount, roundMessage } from './round-protocol.ts';

/**
 * Messages per writeBatch() (one sendmmsg each); BENCH_FDPASS_BATCH=1 writes
 * them one write() at a time, for an A/B of the batching.
 */
const WRITE_BATCH = Number(process.env.BENCH_FDPASS_BATCH ?? 64);

/** Distinct open files the sender cycles through, as in c/fdbench.c. */
const BASE_FDS = 4;
const receiverPath = join(benchRoot, 'src', 'fdpass', 'ours-receiver.ts');
const senderPath = join(benchRoot, 'src', 'fdpass', 'ours-sender.ts');

/** One timed round in a fresh sender and receiver (ours-sender.ts says why). */
export function runOursRound(
  dir: string,
  messages: number,
  fdsPerMessage: number,
): Promise<NativeRound> {
  return runRoundProgram(process.execPath, [
    ...childExecArgv,
    senderPath,
    dir,
    String(messages),
    String(fdsPerMessage),
  ]);
}

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
      // Whole batches of the same message objects; only the round's last
      // message differs.
      const batch = Array.from({ length: WRITE_BATCH }, () => ({ data: middle, fds }));
      const t0 = process.hrtime.bigint();
      if (WRITE_BATCH <= 1) {
        for (let i = 0; i < messages; i++) {
          if (!sock.write(i === messages - 1 ? last : middle, fds)) {
            await Promise.race([once(sock, 'drain'), exited]);
          }
        }
      } else {
        for (let i = 0; i < messages; i += WRITE_BATCH) {
          const size = Math.min(WRITE_BATCH, messages - i);
          const slice = size === WRITE_BATCH ? batch : batch.slice(0, size);
          const isLastBatch = i + size === messages;
          if (isLastBatch) slice[size - 1] = { data: last, fds };
          const ok = sock.writeBatch(slice);
          if (isLastBatch) slice[size - 1] = { data: middle, fds };
          if (!ok) await Promise.race([once(sock, 'drain'), exited]);
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
