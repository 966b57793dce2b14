// What the demo daemon leaves its successor through the broker's fd store,
// and takes back from its predecessor: line-wire connections (as
// `line:<n>`: the client stays connected, the next daemon answers it, after
// a live cut-over: line-cutover.ts) and the store's contents (a memfd
// `kv-state`, format in kv-snapshot.ts). Framed connections drain as before.
import { fstatSync, readSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import {
  type BrokerAttachment,
  closeFd,
  FdSocket,
  type FdToStore,
  fdOf,
  memfdCreate,
  type StoredFdEntry,
  socketFromFd,
} from '@handoff/backend-sdk';
import type { Logger } from 'pino';
import { encodeKvSnapshot, loadKvSnapshot, maxSnapshotBytes } from './kv-snapshot.js';
import type { KvStore } from './kv-store.js';
import type { LineConnection } from './line-connection.js';
import { CUTOVER_FD_NAME, type CutoverResult, cutOver, receiveCutover } from './line-cutover.js';

export const KV_STATE_FD_NAME = 'kv-state';
const LINE_PREFIX = 'line:';

/**
 * The broker keeps 16 fds per service unless its definition says otherwise
 * (fdStoreMax): the state, the cut-over pair and 14 connections fit; the
 * rest drain.
 */
export const DEFAULT_MAX_HANDED_OVER_LINES = 14;

/** How long a stopping daemon serves on while it waits for a successor to hold its lines. */
export const DEFAULT_CUTOVER_WAIT_MS = 1000;

export interface DepositOptions {
  maxLines: number;
  log: Logger;
  /** See CutoverOptions.waitMs (default DEFAULT_CUTOVER_WAIT_MS). */
  cutoverWaitMs?: number;
  /** See CutoverOptions.flushMs (default: cutoverWaitMs). */
  flushMs?: number;
  /**
   * false: no live cut-over; only idle lines are deposited, let go of at
   * once, and busy ones drain (the behaviour before line-cutover.ts).
   */
  cutover?: boolean;
}

export interface Deposit {
  /** The line connections in the deposit: the cut-over ends them here; do not drain them. */
  lines: ReadonlySet<LineConnection>;
  /** Settles once they are cut over (line-cutover.ts). */
  cutover: Promise<CutoverResult | null>;
}

/**
 * Deposits the state and the line connections that are not draining, with
 * one end of a cut-over pair, and goes on serving those lines until the
 * successor holds them (line-cutover.ts): a rolling restart then costs the
 * live sessions one hop. `lines` come in order of preference: past
 * `maxLines` they drain. Resolves once the deposit left.
 */
export async function depositForSuccessor(
  attachment: BrokerAttachment,
  lines: Iterable<LineConnection>,
  store: KvStore,
  options: DepositOptions,
): Promise<Deposit> {
  const state = memfdCreate(KV_STATE_FD_NAME);
  const handed = new Map<string, LineConnection>();
  let pair: [FdSocket, FdSocket] | null = null;
  /** Without a cut-over: the sockets handed over, whose fds the deposit copied. */
  const released: Socket[] = [];
  let sent: Promise<void>;
  try {
    writeAll(state, encodeKvSnapshot(store));
    // The state alone first: a broker that refuses the connections (over
    // its limit) still keeps it.
    sent = attachment.storeFds([{ name: KV_STATE_FD_NAME, fd: state }]);
    if (options.cutover === false) {
      // Idle lines only, let go of at once: the successor reads them as
      // soon as it has them (the chain's whole length a client may wait).
      const entries: FdToStore[] = [];
      for (const line of lines) {
        if (entries.length >= options.maxLines) break;
        const socket = line.handOver();
        if (!socket) continue;
        released.push(socket);
        handed.set(`${LINE_PREFIX}${entries.length + 1}`, line);
        entries.push({ name: `${LINE_PREFIX}${entries.length + 1}`, fd: fdOf(socket) });
      }
      if (entries.length > 0)
        sent = Promise.all([sent, attachment.storeFds(entries)]).then(() => {});
    } else {
      for (const line of lines) {
        if (handed.size >= options.maxLines) break;
        if (line.servable) handed.set(`${LINE_PREFIX}${handed.size + 1}`, line);
      }
    }
    if (handed.size > 0 && options.cutover !== false) {
      pair = FdSocket.pair('seqpacket');
      const entries: FdToStore[] = [{ name: CUTOVER_FD_NAME, fd: pair[1].fd }];
      for (const [name, line] of handed) entries.push({ name, fd: line.fd });
      const more = attachment.storeFds(entries);
      sent = Promise.all([sent, more]).then(() => {});
    }
  } catch (error) {
    pair?.[0].close();
    throw error;
  } finally {
    // The kernel (or the channel's queue) holds its own copies by now.
    closeFd(state);
    pair?.[1].close();
    for (const socket of released) socket.destroy();
  }
  try {
    await sent;
  } catch (error) {
    pair?.[0].close();
    throw error;
  }
  options.log.info({ lines: handed.size }, 'deposited state and line connections with the broker');
  const waitMs = options.cutoverWaitMs ?? DEFAULT_CUTOVER_WAIT_MS;
  return {
    lines: new Set(handed.values()),
    cutover:
      pair === null
        ? Promise.resolve(null)
        : cutOver(pair[0], handed, {
            waitMs,
            flushMs: options.flushMs ?? waitMs,
            log: options.log,
          }).catch((error: unknown) => {
            options.log.error({ err: error }, 'line cut-over failed');
            return null;
          }),
  };
}

/**
 * Takes a predecessor's deposit: `line:*` fds become line connections (via
 * `adoptLine`; with a `cutover` pair in the same delivery, only once the
 * predecessor let go of them), `kv-state` is loaded (keys this daemon
 * already has win). Every fd is consumed: adopted or closed.
 */
export function adoptFromPredecessor(
  entries: readonly StoredFdEntry[],
  store: KvStore,
  adoptLine: (socket: Socket, rest: Uint8Array) => void,
  log: Logger,
): void {
  const lines: { name: string; fd: number }[] = [];
  let pairFd: number | null = null;
  for (const { name, fd } of entries) {
    if (name.startsWith(LINE_PREFIX)) {
      lines.push({ name, fd });
      continue;
    }
    if (name === CUTOVER_FD_NAME && pairFd === null) {
      pairFd = fd;
      continue;
    }
    try {
      if (name === KV_STATE_FD_NAME) {
        const result = loadKvSnapshot(store, readAll(fd, maxSnapshotBytes(store)));
        log.info(result, 'loaded the predecessor’s store');
      } else log.warn({ name }, 'unknown fd from the fd store; closed');
    } catch (error) {
      log.warn({ err: error, name }, 'could not load a stored fd');
    } finally {
      closeFd(fd);
    }
  }
  if (pairFd !== null) {
    receiveCutover(pairFd, lines, adoptLine, log);
    return;
  }
  for (const { name, fd } of lines) {
    let socket: Socket;
    try {
      socket = socketFromFd(fd);
    } catch (error) {
      log.warn({ err: error, name }, 'a stored line connection is not a stream socket; closed');
      closeFd(fd);
      continue;
    }
    adoptLine(socket, new Uint8Array(0));
  }
  if (lines.length > 0)
    log.info({ lines: lines.length }, 'adopted line connections from the predecessor');
}

/** Writes all of `bytes` to the start of the file `fd` (a fresh memfd). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at, at);
}

/** A stored memfd's bytes, refusing one over `max` (it came from another process). */
function readAll(fd: number, max: number): Uint8Array {
  const { size } = fstatSync(fd);
  if (size > max) throw new RangeError(`kv-state is ${size} bytes, over ${max}`);
  const out = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    const n = readSync(fd, out, at, size - at, at);
    if (n === 0) break;
    at += n;
  }
  return out.subarray(0, at);
}
