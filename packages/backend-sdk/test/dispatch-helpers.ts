// Plumbing for the dispatcher tests: real connections as raw fds, clients
// that read a whole answer, a log that remembers, and a hand-driven peer
// that speaks the dispatch wire for the side not under test.
import { once } from 'node:events';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { duplicateFd, FdSocket, type ReceivedMessage, socketFromFd } from '@handoff/fdpass';
import type { DispatchLogger } from '../src/dispatch/log.js';

/** A connected AF_UNIX stream pair: the client as a net.Socket, the server end as a raw fd we own. */
export function connectionPair(): { client: Socket; fd: number } {
  const [a, b] = FdSocket.pair('stream');
  const client = duplicateFd(a.fd);
  const fd = duplicateFd(b.fd);
  a.close();
  b.close();
  return { client: socketFromFd(client), fd };
}

/** Everything the peer sends until it ends; rejects on a reset or error. */
export function readAll(socket: Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end after ${timeoutMs} ms (got ${JSON.stringify(text)})`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      text += d;
    });
    socket.once('end', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(text);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/** Connects, sends a line, returns the whole answer. */
export async function ask(
  target: { path: string } | { port: number; host: string },
  line = 'hi\n',
): Promise<string> {
  const socket = connect(target);
  socket.write(line);
  return readAll(socket);
}

export interface LoadResult {
  ok: number;
  answers: string[];
  failures: string[];
}

/** `total` connections, `concurrency` at a time; every failure is recorded, never retried. */
export async function load(
  target: { path: string } | { port: number; host: string },
  total: number,
  concurrency: number,
  keepAnswers = true,
): Promise<LoadResult> {
  const result: LoadResult = { ok: 0, answers: [], failures: [] };
  let started = 0;
  const lane = async () => {
    while (started < total) {
      started++;
      try {
        const answer = await ask(target);
        if (!answer.endsWith('\n')) throw new Error(`short answer ${JSON.stringify(answer)}`);
        result.ok++;
        if (keepAnswers) result.answers.push(answer);
      } catch (err) {
        result.failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return result;
}

export function memoryLog(): { log: DispatchLogger; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: (level, message) => lines.push(`${level}: ${message}`) };
}

export const openFdCount = () => readdirSync('/proc/self/fd').length;

/** Socket inodes open in a process (`socket:[inode]` links in /proc/<pid>/fd). */
export function socketInodes(pid: number | 'self'): Set<number> {
  const out = new Set<number>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(Number(m[1]));
    } catch {
      // closed while we looked
    }
  }
  return out;
}

/** /proc/net/unix: inode → { type (1 stream, 5 seqpacket), path }. */
export function unixSockets(): Map<number, { type: number; path: string }> {
  const out = new Map<number, { type: number; path: string }>();
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    out.set(Number(f[6]), { type: Number.parseInt(f[4]!, 16), path: f[7] ?? '' });
  }
  return out;
}

/** Child pids of a process, from /proc. */
export function childPids(pid = process.pid): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // gone
    }
  }
  return out;
}

/** The next message on a channel. */
export async function nextMessage(channel: FdSocket): Promise<ReceivedMessage> {
  const [m] = (await once(channel, 'message')) as [ReceivedMessage];
  return m;
}
