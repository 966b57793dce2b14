// What the demo daemon leaves its successor through the broker's fd store,
// and takes back from its predecessor: idle line-wire connections (as
// `line:<n>`: the client stays connected, the next daemon answers it) and
// the store's contents (a memfd `kv-state`, format in kv-snapshot.ts).
// Busy line connections and every framed connection drain as before.
import { fstatSync, readSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import {
  type BrokerAttachment,
  closeFd,
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

export const KV_STATE_FD_NAME = 'kv-state';
const LINE_PREFIX = 'line:';

/**
 * The broker keeps 16 fds per service unless its definition says otherwise
 * (fdStoreMax): the state and 15 connections fit; the rest drain.
 */
export const DEFAULT_MAX_HANDED_OVER_LINES = 15;

/**
 * Deposits the state and the idle line connections. Synchronous up to the
 * send, so no byte a client sends meanwhile is read by this daemon: it
 * waits in the kernel for the next one. Resolves once the deposit left.
 */
export async function depositForSuccessor(
  attachment: BrokerAttachment,
  lines: Iterable<LineConnection>,
  store: KvStore,
  options: { maxLines: number; log: Logger },
): Promise<void> {
  const state = memfdCreate(KV_STATE_FD_NAME);
  const sockets: Socket[] = [];
  let sent: Promise<void>;
  try {
    writeAll(state, encodeKvSnapshot(store));
    const entries: FdToStore[] = [];
    for (const line of lines) {
      if (sockets.length >= options.maxLines) break;
      const socket = line.handOver();
      if (!socket) continue;
      sockets.push(socket);
      entries.push({ name: `${LINE_PREFIX}${sockets.length}`, fd: fdOf(socket) });
    }
    // The state alone first: a broker that refuses the connections (over
    // its limit) still keeps it.
    sent = attachment.storeFds([{ name: KV_STATE_FD_NAME, fd: state }]);
    if (entries.length > 0) {
      const more = attachment.storeFds(entries);
      sent = Promise.all([sent, more]).then(() => {});
    }
  } finally {
    // The kernel (or the channel's queue) holds its own copies by now: ours
    // close without ending anything for the clients.
    closeFd(state);
    for (const socket of sockets) socket.destroy();
  }
  await sent;
  options.log.info(
    { lines: sockets.length },
    'deposited state and idle line connections with the broker',
  );
}

/**
 * Takes a predecessor's deposit: `line:*` fds become line connections (via
 * `adoptLine`), `kv-state` is loaded (keys this daemon already has win).
 * Every fd is consumed: adopted or closed.
 */
export function adoptFromPredecessor(
  entries: readonly StoredFdEntry[],
  store: KvStore,
  adoptLine: (socket: Socket) => void,
  log: Logger,
): void {
  let lines = 0;
  for (const { name, fd } of entries) {
    if (name.startsWith(LINE_PREFIX)) {
      let socket: Socket;
      try {
        socket = socketFromFd(fd);
      } catch (error) {
        log.warn({ err: error, name }, 'a stored line connection is not a stream socket; closed');
        closeFd(fd);
        continue;
      }
      adoptLine(socket);
      lines++;
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
  if (lines > 0) log.info({ lines }, 'adopted line connections from the predecessor');
}

function writeAll(fd: number, bytes: Uint8Array): void {
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
