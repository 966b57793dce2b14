// Plumbing for the FdSocket tests: pairs closed after each test, a pair
// whose receiving end has its own options, raw fds for fs I/O, collecting
// messages, and the fd count checked after each test. No mocks.
import { afterEach, beforeEach } from 'vitest';
import { duplicateFd, FdSocket, type ReceivedMessage, type SocketKind } from '../src/index.js';
import { expectFdCount, openFdCount } from './helpers.js';

/** Run after each test, before the fd count is checked. */
export const cleanup: Array<() => void> = [];

/** Registers the hooks: each test must leave the process's fd count as it found it. */
export function checkFdsAfterEachTest(): void {
  let baseline = 0;
  beforeEach(() => {
    baseline = openFdCount();
  });
  afterEach(async () => {
    for (const fn of cleanup.splice(0)) fn();
    await expectFdCount(baseline);
  });
}

/**
 * Two connected raw stream fds (the sockets' own, duplicated), for fs I/O.
 * The addon made them, not fs: the caller owns them and closes them with closeFds.
 */
export function rawStreamPair(): [number, number] {
  const [a, b] = FdSocket.pair('stream');
  const raw: [number, number] = [duplicateFd(a.fd), duplicateFd(b.fd)];
  a.close();
  b.close();
  return raw;
}

/** A pair whose receiving end was adopted with its own options. */
export function pairWithReceiver(
  kind: SocketKind,
  receiverOpts: Parameters<typeof FdSocket.adopt>[1],
) {
  const [tx, rxRaw] = FdSocket.pair(kind);
  const rx = FdSocket.adopt(duplicateFd(rxRaw.fd), receiverOpts);
  rxRaw.close();
  cleanup.push(() => {
    tx.close();
    rx.close();
  });
  return [tx, rx] as const;
}

export function collect(socket: FdSocket, count: number): Promise<ReceivedMessage[]> {
  return new Promise((resolve, reject) => {
    const got: ReceivedMessage[] = [];
    const onMessage = (m: ReceivedMessage) => {
      got.push(m);
      if (got.length === count) {
        socket.off('message', onMessage);
        socket.off('error', reject);
        resolve(got);
      }
    };
    socket.on('message', onMessage);
    socket.on('error', reject);
  });
}

export function pair(kind?: SocketKind, opts?: Parameters<typeof FdSocket.pair>[1]) {
  const [a, b] = FdSocket.pair(kind, opts);
  cleanup.push(() => {
    a.close();
    b.close();
  });
  return [a, b] as const;
}
