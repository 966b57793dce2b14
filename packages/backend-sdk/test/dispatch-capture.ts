// Captures the dispatch wire as the real master and worker speak it: a
// DispatchScheduler and serveDispatched joined through a recording relay
// (two seqpacket pairs; the relay records each message and forwards it
// with its fds). Nothing is mocked; the steps are paced so every capture
// holds the same messages.

import type { Socket } from 'node:net';
import { closeFds, FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { DispatchScheduler } from '../src/dispatch/scheduler.js';
import { type DispatchEndpoint, MessageType } from '../src/dispatch/wire.js';
import { serveDispatched } from '../src/dispatch/worker.js';
import { connectionPair } from './dispatch-helpers.js';

export const corpusDir = new URL('./fixtures/corpus/', import.meta.url);

export const CAPTURE_ENDPOINTS: DispatchEndpoint[] = [
  { index: 0, transport: 'unix', family: 'unix', path: '/run/fuzz/dispatch.sock' },
  { index: 1, transport: 'tcp', family: 'inet', address: '127.0.0.1', port: 7001, noDelay: true },
];

/** The fds a captured message came with: one per record for a dispatch, none otherwise. */
export function capturedFdCount(bytes: Uint8Array): number {
  return bytes[0] === MessageType.DISPATCH && bytes.length >= 4 ? bytes[2]! | (bytes[3]! << 8) : 0;
}

/**
 * One worker's life: hello/READY, a dispatch of 1 and one of 3 on listener
 * 0, one on a listener the worker does not know (FAILED), connections
 * closing one at a time, then STOP. Entries are `master-N-…` (what the
 * scheduler wrote) and `worker-N-…` (what serveDispatched wrote).
 */
export async function captureDispatchTraffic(): Promise<Record<string, Uint8Array>> {
  const silent = () => {};
  const scheduler = new DispatchScheduler(
    CAPTURE_ENDPOINTS,
    { maxQueuePerWorker: 64, maxConnectionsPerWorker: 1024, shutdownDeadlineMs: 1500 },
    silent,
    silent,
  );
  const opts = { maxFdsPerMessage: 253 };
  const [masterEnd, relayUp] = FdSocket.pair('seqpacket', opts);
  const [relayDown, workerEnd] = FdSocket.pair('seqpacket', opts);
  const fromMaster: Uint8Array[] = [];
  const fromWorker: Uint8Array[] = [];
  const relay = (from: FdSocket, to: FdSocket, log: Uint8Array[]) => {
    from.on('message', ({ data, fds }: ReceivedMessage) => {
      log.push(new Uint8Array(data));
      if (!to.closed) to.write(data, fds);
      // write() sent (or duplicated) them: the relay's copies are its own to close.
      if (fds.length > 0) closeFds(fds);
    });
    from.on('end', () => to.end());
    from.on('close', () => to.close());
  };
  relay(relayUp, relayDown, fromMaster);
  relay(relayDown, relayUp, fromWorker);

  const held: Socket[] = [];
  const clients: Socket[] = [];
  const submit = (n: number, listener: number) => {
    const fds: number[] = [];
    for (let i = 0; i < n; i++) {
      const { client, fd } = connectionPair();
      client.on('error', () => {});
      clients.push(client);
      fds.push(fd);
    }
    scheduler.submit(fds, listener);
  };
  try {
    const ready = new Promise((resolve) => scheduler.once('ready', resolve));
    const link = scheduler.attach(masterEnd, 0, 0, process.pid);
    const worker = await serveDispatched(({ socket }) => held.push(socket), {
      channel: workerEnd,
      log: silent,
    });
    await ready;
    submit(1, 0);
    await waitFor(() => held.length === 1 && fromWorker.length === 2);
    submit(3, 0);
    await waitFor(() => held.length === 4 && fromWorker.length === 3);
    // Listener 2 is not in the hello: the worker closes it and reports FAILED.
    submit(1, 2);
    await waitFor(() => fromWorker.length === 5);
    for (const socket of held.splice(0)) {
      const before = fromWorker.length;
      socket.destroy();
      await waitFor(() => fromWorker.length === before + 1);
    }
    scheduler.stop(link);
    await worker.drained;
    await waitFor(() => masterEnd.closed || link.state === 'lost');
  } finally {
    scheduler.closeAll();
    for (const c of clients) c.destroy();
    for (const s of [masterEnd, relayUp, relayDown, workerEnd]) s.close();
  }
  const out: Record<string, Uint8Array> = {};
  const name = (bytes: Uint8Array) =>
    ({ 1: 'hello', 2: 'dispatch', 3: 'stop', 129: 'ready', 130: 'report' })[bytes[0]!] ?? 'unknown';
  fromMaster.forEach((m, i) => {
    out[`master-${i}-${name(m)}`] = m;
  });
  fromWorker.forEach((m, i) => {
    out[`worker-${i}-${name(m)}`] = m;
  });
  return out;
}

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error('dispatch capture: condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
