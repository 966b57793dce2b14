// The live cut-over of line connections from a stopping daemon to its
// successor (a rolling restart), so live sessions wait one hop, not the whole
// deposit → broker → successor chain. The old daemon deposits its line
// connections with one end of a socketpair (`cutover`) and goes on answering
// them; the successor takes the fds without reading them and says so (A); the
// old one then stops answering at a line boundary, lets its answers leave,
// sends each connection's read-but-unanswered bytes (L) and the names it
// handed over (G), and only then does the successor read. No byte is read by
// both, none is lost, no request is answered twice, and the order is kept.
import { Socket, type SocketConstructorOpts } from 'node:net';
import { closeFd, FdSocket, type ReceivedMessage } from '@handoff/backend-sdk';
import type { Logger } from 'pino';
import type { LineConnection } from './line-connection.js';

/** The fd store name of the successor's end of the cut-over pair. */
export const CUTOVER_FD_NAME = 'cutover';

const ADOPTED = 0x41; // 'A': successor → old, it holds the fds
const REST = 0x4c; // 'L' + name length + name + bytes: read and not answered
const GO = 0x47; // 'G' + JSON names: read them now; any other line fd is closed
/** Bytes of a connection's rest per L message, well under a seqpacket message's limit. */
const REST_CHUNK_BYTES = 32 * 1024;

export interface CutoverOptions {
  /** How long the old daemon waits for a successor to say it holds the fds; then idle lines are left in the store. */
  waitMs: number;
  /** How long answers already written may take to leave; a line still sending then is closed. */
  flushMs: number;
  log: Logger;
}

export interface CutoverResult {
  /** A successor said it holds the fds before waitMs. */
  confirmed: boolean;
  /** Lines handed over (named in G). */
  handed: number;
  /** Lines that could not be handed over (busy with no successor, or not flushed): drained or closed. */
  kept: number;
}

/**
 * The old daemon's side: `channel` is its end of the pair (the other end
 * went into the deposit with `lines`). Serves on until the successor's A
 * (or waitMs, or the pair closing); then cuts every line over, as above.
 * Without a successor, only idle lines are left in the store (as G for
 * whoever comes next) and busy ones drain. Resolves when every line is
 * handed over or drained, and the pair closed.
 */
export async function cutOver(
  channel: FdSocket,
  lines: ReadonlyMap<string, LineConnection>,
  options: CutoverOptions,
): Promise<CutoverResult> {
  const confirmed = await successorHolds(channel, options.waitMs);
  const messages: Uint8Array[] = [];
  const handed: string[] = [];
  let kept = 0;
  if (confirmed) {
    const released: { name: string; socket: Socket; rest: Uint8Array }[] = [];
    for (const [name, line] of lines) {
      const r = line.release();
      if (r) released.push({ name, ...r });
    }
    await flushed(
      released.map((r) => r.socket),
      options.flushMs,
    );
    for (const { name, socket, rest } of released) {
      if (socket.destroyed || socket.writableLength > 0) {
        kept++;
        socket.destroy();
        continue;
      }
      // Taken and closed in one turn: from here on only the successor reads.
      const unread = takeUnread(socket);
      socket.destroy();
      const all = unread.length === 0 ? rest : Buffer.concat([rest, unread]);
      for (let at = 0; at < all.length; at += REST_CHUNK_BYTES)
        messages.push(restMessage(name, all.subarray(at, at + REST_CHUNK_BYTES)));
      handed.push(name);
    }
  } else {
    // Nobody took them yet: what is idle waits in the store for the next
    // daemon; what is half-done drains here, as without a cut-over.
    for (const [name, line] of lines) {
      const socket = line.handOver();
      if (socket) {
        socket.destroy();
        handed.push(name);
      } else {
        kept++;
        line.drain();
      }
    }
  }
  messages.push(Buffer.concat([Buffer.of(GO), Buffer.from(JSON.stringify(handed))]));
  await send(channel, messages, options.flushMs);
  channel.close();
  options.log.info({ confirmed, handed: handed.length, kept }, 'line connections cut over');
  return { confirmed, handed: handed.length, kept };
}

/**
 * The successor's side: `pairFd` and the line fds came in one delivery. The
 * fds are held unread until the old daemon's G; then the lines it named are
 * served (`adopt`, with the bytes it read and did not answer) and the others
 * closed. If the old daemon is gone without a G (it crashed), every line is
 * served as it stands. Owns every fd passed.
 */
export function receiveCutover(
  pairFd: number,
  lines: readonly { name: string; fd: number }[],
  adopt: (socket: Socket, rest: Uint8Array) => void,
  log: Logger,
  options: { settleMaxMs?: number } = {},
): void {
  // Made now, not reading (pauseOnCreate) until G: little is left to do
  // between G and the first read.
  const held: { name: string; socket: Socket }[] = [];
  for (const { name, fd } of lines) {
    const socket = unreadSocket(fd, log);
    if (socket) held.push({ name, socket });
  }
  let channel: FdSocket;
  try {
    channel = FdSocket.adopt(pairFd);
  } catch (error) {
    closeFd(pairFd);
    log.warn({ err: error }, 'the cut-over pair is not a socket; serving the lines at once');
    for (const { socket } of held) adopt(socket, new Uint8Array(0));
    return;
  }
  const rests = new Map<string, Uint8Array[]>();
  let settled = false;
  const finish = (go: readonly string[] | null) => {
    if (settled) return;
    settled = true;
    channel.close();
    const named = go === null ? null : new Set(go);
    for (const { name, socket } of held) {
      if (named !== null && !named.has(name)) {
        socket.destroy();
        continue;
      }
      const parts = rests.get(name) ?? [];
      adopt(socket, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
    }
    if (go === null) log.warn({ lines: held.length }, 'the predecessor left without a cut-over');
    else log.info({ lines: go.length }, 'line connections taken over from the predecessor');
  };
  channel.on('message', ({ data, fds }: ReceivedMessage) => {
    for (const fd of fds) closeFd(fd);
    if (settled) return;
    try {
      if (data[0] === REST) {
        const length = data[1] ?? 0;
        const name = Buffer.from(data.subarray(2, 2 + length)).toString('latin1');
        const list = rests.get(name) ?? [];
        list.push(Uint8Array.from(data.subarray(2 + length)));
        rests.set(name, list);
      } else if (data[0] === GO) {
        const names: unknown = JSON.parse(Buffer.from(data.subarray(1)).toString('utf8'));
        if (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))
          throw new TypeError('G does not list names');
        finish(names as string[]);
      }
    } catch (error) {
      // Our own predecessor's bytes: a bad one is a bug, and the safe side
      // is to serve nothing twice: close every line.
      log.error({ err: error }, 'unreadable cut-over message; the lines are closed');
      finish([]);
    }
  });
  channel.on('error', () => {});
  channel.once('end', () => finish(null));
  channel.once('close', () => finish(null));
  // The old daemon serves on meanwhile: say A only once this process's
  // event loop is calm (a fresh daemon's first moments under load are not),
  // so that G is acted on at once.
  void calm(options.settleMaxMs ?? DEFAULT_SETTLE_MAX_MS).then(() => {
    if (settled) return;
    try {
      channel.write(Buffer.of(ADOPTED));
    } catch {
      finish(null);
    }
  });
}

/** The longest a successor waits for a calm event loop before it says A. */
export const DEFAULT_SETTLE_MAX_MS = 300;
const CALM_TICK_MS = 5;
const CALM_LAG_MS = 2;

/** Resolves once two timer ticks in a row came within CALM_LAG_MS of due, or after maxMs. */
async function calm(maxMs: number): Promise<void> {
  const until = performance.now() + maxMs;
  let calmTicks = 0;
  while (calmTicks < 2 && performance.now() < until) {
    const t = performance.now();
    await new Promise((resolve) => setTimeout(resolve, CALM_TICK_MS));
    calmTicks = performance.now() - t - CALM_TICK_MS < CALM_LAG_MS ? calmTicks + 1 : 0;
  }
}

/** A net.Socket on a received fd that does not read until resumed; null (fd closed) if it is not a stream socket. */
function unreadSocket(fd: number, log: Logger): Socket | null {
  try {
    // pauseOnCreate: Node's own option (net.Server's pauseOnConnect uses it).
    return new Socket({
      fd,
      readable: true,
      writable: true,
      allowHalfOpen: false,
      pauseOnCreate: true,
    } as SocketConstructorOpts);
  } catch (error) {
    log.warn({ err: error }, 'a stored line connection is not a stream socket; closed');
    closeFd(fd);
    return null;
  }
}

/** True once the successor's A arrives; false after `waitMs` or when the pair closes first. */
function successorHolds(channel: FdSocket, waitMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (value: boolean) => {
      clearTimeout(timer);
      channel.off('message', onMessage);
      channel.off('end', onGone);
      channel.off('close', onGone);
      resolve(value);
    };
    const onMessage = ({ data, fds }: ReceivedMessage) => {
      for (const fd of fds) closeFd(fd);
      if (data[0] === ADOPTED) done(true);
    };
    const onGone = () => done(false);
    const timer = setTimeout(() => done(false), waitMs);
    channel.on('message', onMessage);
    channel.on('error', () => {});
    channel.once('end', onGone);
    channel.once('close', onGone);
  });
}

/** Resolves once every socket's queued answers left (or it closed), or after `ms`. */
async function flushed(sockets: readonly Socket[], ms: number): Promise<void> {
  const pending = sockets.filter((s) => !s.destroyed && s.writableLength > 0);
  if (pending.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all(
      pending.map(
        (s) =>
          new Promise<void>((resolve) => {
            const check = () => {
              if (s.destroyed || s.writableLength === 0) {
                s.off('drain', check);
                s.off('close', check);
                resolve();
              }
            };
            s.on('drain', check);
            s.on('close', check);
          }),
      ),
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** What the stream read and did not emit (it is paused): ours to pass on. */
function takeUnread(socket: Socket): Buffer {
  const parts: Buffer[] = [];
  for (
    let chunk = socket.read() as Buffer | null;
    chunk !== null;
    chunk = socket.read() as Buffer | null
  )
    parts.push(chunk);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function restMessage(name: string, bytes: Uint8Array): Uint8Array {
  const n = Buffer.from(name, 'latin1');
  return Buffer.concat([Buffer.of(REST, n.length), n, bytes]);
}

/** Writes `messages` in order; resolves once the kernel has them (or after `ms`, or the pair closed). */
async function send(channel: FdSocket, messages: readonly Uint8Array[], ms: number): Promise<void> {
  try {
    for (const m of messages) channel.write(m);
  } catch {
    return;
  }
  const deadline = Date.now() + ms;
  while (channel.writableLength > 0 && !channel.closed && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 2));
}
