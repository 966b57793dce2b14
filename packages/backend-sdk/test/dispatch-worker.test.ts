// The worker side over a real channel, with the master played by the test
// through the wire codec: what it reports, and when; what it does with a
// dispatch it cannot use; how it stops.
import { once } from 'node:events';
import { closeFd, FdSocket } from '@handoff/fdpass';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  decodeWorkerMessage,
  dispatchMessageLength,
  encodeHello,
  encodeStop,
  putDispatchHeader,
  putDispatchRecord,
  type ReportEntry,
  type WorkerHello,
} from '../src/dispatch/wire.js';
import { type DispatchedConnection, serveDispatched } from '../src/dispatch/worker.js';
import { DISPATCH_CHANNEL_ENV } from '../src/dispatch/worker-channel.js';
import { connectionPair, memoryLog, openFdCount, readAll } from './dispatch-helpers.js';

const hello: WorkerHello = {
  slot: 3,
  generation: 1,
  drainDeadlineMs: 500,
  endpoints: [
    { index: 0, transport: 'tcp', family: 'inet', address: '127.0.0.1', port: 1, noDelay: false },
    { index: 1, transport: 'unix', family: 'unix', path: '/x.sock' },
  ],
};

function dispatch(records: [id: number, listener: number][]): Uint8Array {
  const out = new Uint8Array(dispatchMessageLength(records.length));
  putDispatchHeader(out, records.length);
  for (const [i, [id, l]] of records.entries()) putDispatchRecord(out, i, id, l);
  return out;
}

/** The master's end: collects every report entry the worker sends. */
function master(channel: FdSocket): { entries: ReportEntry[]; pids: number[] } {
  const seen = { entries: [] as ReportEntry[], pids: [] as number[] };
  channel.on('message', ({ data, fds }) => {
    const m = decodeWorkerMessage(data, fds.length);
    if (m.type === 'ready') seen.pids.push(m.pid);
    else seen.entries.push(...m.entries);
  });
  return seen;
}

const total = (entries: ReportEntry[], kind: number) =>
  entries.filter((e) => e.kind === kind).reduce((n, e) => n + e.count, 0);

let baseline = 0;
const cleanups: (() => void)[] = [];
beforeEach(() => {
  baseline = openFdCount();
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) c();
  await vi.waitFor(() => expect(openFdCount()).toBe(baseline), { timeout: 5000 });
});

async function start(handler: (c: DispatchedConnection) => void) {
  const [ours, theirs] = FdSocket.pair('seqpacket');
  cleanups.push(() => ours.close());
  const seen = master(ours);
  ours.write(encodeHello(hello));
  const { log, lines } = memoryLog();
  const worker = await serveDispatched(handler, { channel: theirs, log });
  await vi.waitFor(() => expect(seen.pids).toEqual([process.pid]));
  return { ours, worker, seen, lines };
}

describe('serveDispatched', () => {
  it('answers the hello with READY, hands each connection over with its id and endpoint, reports adoption then completion', async () => {
    const got: { id: number; endpoint: string }[] = [];
    const { ours, worker, seen } = await start(({ id, endpoint, socket }) => {
      got.push({ id, endpoint: endpoint.transport });
      socket.end(`served ${id}\n`);
    });
    expect(worker).toMatchObject({ slot: 3, generation: 1, role: 'worker' });
    expect(worker.endpoints).toEqual(hello.endpoints);
    const a = connectionPair();
    const b = connectionPair();
    ours.write(
      dispatch([
        [2 ** 40 + 7, 0],
        [9, 1],
      ]),
      [a.fd, b.fd],
    );
    closeFd(a.fd);
    closeFd(b.fd);
    expect(await readAll(a.client)).toBe(`served ${2 ** 40 + 7}\n`);
    expect(await readAll(b.client)).toBe('served 9\n');
    expect(got).toEqual([
      { id: 2 ** 40 + 7, endpoint: 'tcp' },
      { id: 9, endpoint: 'unix' },
    ]);
    await vi.waitFor(() => expect(total(seen.entries, 3)).toBe(2));
    // One ADOPTED entry for the one dispatch, and it came before any CLOSED.
    expect(seen.entries[0]).toEqual({ kind: 1, reason: 0, count: 1 });
    expect(total(seen.entries, 1)).toBe(1);
    expect(worker.activeConnections).toBe(0);
  });

  it('a dispatch that does not decode is reported DROPPED (MALFORMED) and its fds are closed', async () => {
    const handler = vi.fn();
    const { ours, seen, lines } = await start(handler);
    const a = connectionPair();
    // Two records announced, one fd sent.
    ours.write(
      dispatch([
        [1, 0],
        [2, 0],
      ]),
      [a.fd],
    );
    closeFd(a.fd);
    // The worker's copy is closed, so the client sees the end.
    expect(await readAll(a.client)).toBe('');
    await vi.waitFor(() => expect(seen.entries).toContainEqual({ kind: 2, reason: 4, count: 1 }));
    expect(handler).not.toHaveBeenCalled();
    expect(lines.some((l) => l.includes('did not decode (FD_COUNT)'))).toBe(true);
  });

  it('an unknown listener index fails just that connection (FAILED), the rest are served', async () => {
    const { ours, seen } = await start(({ socket }) => socket.end('ok\n'));
    const a = connectionPair();
    const b = connectionPair();
    ours.write(
      dispatch([
        [1, 7],
        [2, 0],
      ]),
      [a.fd, b.fd],
    );
    closeFd(a.fd);
    closeFd(b.fd);
    expect(await readAll(a.client)).toBe('');
    expect(await readAll(b.client)).toBe('ok\n');
    await vi.waitFor(() => expect(total(seen.entries, 4)).toBe(1));
    await vi.waitFor(() => expect(total(seen.entries, 3)).toBe(1));
  });

  it('STOP: emits stop, lets open connections finish, reports them, ends the channel, resolves drained', async () => {
    const held: import('node:net').Socket[] = [];
    const { ours, worker, seen } = await start(({ socket }) => held.push(socket));
    const a = connectionPair();
    ours.write(dispatch([[1, 0]]), [a.fd]);
    closeFd(a.fd);
    await vi.waitFor(() => expect(held).toHaveLength(1));
    const stop = once(worker, 'stop');
    const ended = once(ours, 'end');
    ours.write(encodeStop(5000));
    expect((await stop)[0]).toEqual({ reason: 'master', deadlineMs: 5000 });
    expect(worker.stopping).toBe(true);
    held[0]!.end('bye\n');
    expect(await readAll(a.client)).toBe('bye\n');
    await worker.drained;
    await ended;
    expect(total(seen.entries, 3)).toBe(1);
  });

  it('destroys what is still open at the STOP deadline', async () => {
    const { ours, worker } = await start(() => {});
    const a = connectionPair();
    const answer = readAll(a.client);
    ours.write(dispatch([[1, 0]]), [a.fd]);
    closeFd(a.fd);
    await vi.waitFor(() => expect(worker.activeConnections).toBe(1));
    const t0 = performance.now();
    ours.write(encodeStop(100));
    await worker.drained;
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
    expect(await answer).toBe('');
  });

  it('when the master goes away it stops with reason "channel" and the hello\'s drain deadline', async () => {
    const { ours, worker } = await start(() => {});
    const stop = once(worker, 'stop');
    ours.close();
    expect((await stop)[0]).toEqual({ reason: 'channel', deadlineMs: 500 });
    await worker.drained;
  });

  it('refuses to run where no dispatcher spawned it, and gives up when no hello comes', async () => {
    expect(process.env[DISPATCH_CHANNEL_ENV]).toBeUndefined();
    await expect(serveDispatched(() => {})).rejects.toMatchObject({ code: 'NOT_A_WORKER' });
    const [ours, theirs] = FdSocket.pair('seqpacket');
    cleanups.push(() => ours.close());
    await expect(
      serveDispatched(() => {}, { channel: theirs, helloTimeoutMs: 50 }),
    ).rejects.toMatchObject({ code: 'START_TIMEOUT' });
    expect(theirs.closed).toBe(true);
  });
});
