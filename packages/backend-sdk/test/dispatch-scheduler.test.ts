// The master's dispatch engine over real channels, in one process: real
// seqpacket socket pairs, real connections (AF_UNIX stream pairs), real
// workers (serveDispatched on the other end of each channel) or, where a
// test needs a worker to misbehave, a hand-driven peer speaking the wire.
// Every test ends with the fd count back where it started.
import { once } from 'node:events';
import { closeFd, closeFds, FdSocket } from '@handoff/fdpass';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DispatchScheduler } from '../src/dispatch/scheduler.js';
import type { SchedulerLimits, WorkerLink } from '../src/dispatch/scheduler-link.js';
import {
  type DispatchEndpoint,
  DropReason,
  decodeMasterMessage,
  dispatchRecordId,
  encodeReady,
  encodeReport,
  ReportKind,
} from '../src/dispatch/wire.js';
import { type DispatchWorker, serveDispatched } from '../src/dispatch/worker.js';
import {
  connectionPair,
  memoryLog,
  nextMessage,
  openFdCount,
  readAll,
} from './dispatch-helpers.js';

const endpoint: DispatchEndpoint = { index: 0, transport: 'unix', family: 'unix', path: '/test' };

interface Rig {
  scheduler: DispatchScheduler;
  logs: string[];
  capacity: number[];
  /** What each in-process worker was handed, by worker index: connection ids. */
  served: number[][];
  workers: DispatchWorker[];
  /** Adds a real worker; `hold` keeps its connections open until release(). */
  addWorker(opts?: { hold?: boolean }): Promise<{ worker: DispatchWorker; link: WorkerLink }>;
  /** Adds a peer driven by the test: it answers READY, then does nothing unless told. */
  addRawPeer(): Promise<{ peer: FdSocket; link: WorkerLink }>;
  /** Hands `n` fresh connections to the scheduler; returns their clients' answers. */
  submit(n: number): Promise<string>[];
  release(workerIndex: number): void;
}

let rigs: Rig[] = [];
let baseline = 0;
beforeEach(() => {
  baseline = openFdCount();
});
afterEach(async () => {
  for (const r of rigs) {
    r.scheduler.closeAll();
    await Promise.all(r.workers.map((w) => w.drained));
  }
  rigs = [];
  await vi.waitFor(() => expect(openFdCount()).toBe(baseline), { timeout: 5000 });
});

function rig(limits: Partial<SchedulerLimits> = {}): Rig {
  const { log, lines: logs } = memoryLog();
  const capacity: number[] = [];
  const scheduler = new DispatchScheduler(
    [endpoint],
    {
      maxQueuePerWorker: 64,
      maxConnectionsPerWorker: 1024,
      shutdownDeadlineMs: 2000,
      ...limits,
    },
    log,
    (free) => capacity.push(free),
  );
  const served: number[][] = [];
  const held: import('node:net').Socket[][] = [];
  const workers: DispatchWorker[] = [];
  let slot = 0;
  const r: Rig = {
    scheduler,
    logs,
    capacity,
    served,
    workers,
    async addWorker({ hold = false } = {}) {
      const index = slot++;
      served[index] = [];
      held[index] = [];
      const [master, theirs] = FdSocket.pair('seqpacket', { maxFdsPerMessage: 253 });
      const ready = once(scheduler, 'ready');
      const link = scheduler.attach(master, index, 0, process.pid);
      const worker = await serveDispatched(
        ({ id, socket }) => {
          served[index]!.push(id);
          if (hold) held[index]!.push(socket);
          else socket.end(`w${index} ${id}\n`);
        },
        { channel: theirs, log },
      );
      workers.push(worker);
      await ready;
      return { worker, link };
    },
    async addRawPeer() {
      const index = slot++;
      served[index] = [];
      const [master, peer] = FdSocket.pair('seqpacket', { maxFdsPerMessage: 253 });
      const ready = once(scheduler, 'ready');
      const link = scheduler.attach(master, index, 0, process.pid);
      const hello = await nextMessage(peer);
      expect(decodeMasterMessage(hello.data, hello.fds.length).type).toBe('hello');
      peer.pause();
      peer.write(encodeReady(process.pid));
      await ready;
      return { peer, link };
    },
    submit(n) {
      const answers: Promise<string>[] = [];
      const fds: number[] = [];
      for (let i = 0; i < n; i++) {
        const { client, fd } = connectionPair();
        answers.push(readAll(client));
        fds.push(fd);
      }
      scheduler.submit(fds, 0);
      return answers;
    },
    release(index) {
      for (const s of held[index]!.splice(0)) s.end(`w${index} held\n`);
    },
  };
  rigs.push(r);
  return r;
}

describe('DispatchScheduler', () => {
  it('sends each connection to the least-loaded worker, ties in turn', async () => {
    const r = rig();
    await r.addWorker({ hold: true });
    const { link: second } = await r.addWorker({ hold: true });
    const first = r.submit(4);
    await vi.waitFor(() => expect(r.served.flat()).toHaveLength(4));
    expect(r.served[0]).toHaveLength(2);
    expect(r.served[1]).toHaveLength(2);
    // Worker 1 finishes its two; worker 0 still holds two: the next two go to 1.
    r.release(1);
    await vi.waitFor(() => expect(second.open).toBe(0));
    const next = r.submit(2);
    await vi.waitFor(() => expect(r.served[1]).toHaveLength(4));
    expect(r.served[0]).toHaveLength(2);
    r.release(0);
    r.release(1);
    const answers = await Promise.all([...first, ...next]);
    expect(answers.every((a) => a.endsWith(' held\n'))).toBe(true);
    // Completions arrive with the workers' next reports.
    await vi.waitFor(() =>
      expect(r.scheduler.counters).toMatchObject({ accepted: 6, dispatched: 6, completed: 6 }),
    );
  });

  it('carries a burst in messages of up to 253 connections', async () => {
    const r = rig({ maxQueuePerWorker: 1000 });
    await r.addWorker();
    const answers = await Promise.all(r.submit(600));
    expect(answers).toHaveLength(600);
    expect(new Set(answers).size).toBe(600);
    // 253 + 253 + 94: three sendmsg calls for 600 connections.
    expect(r.scheduler.counters.messages).toBe(3);
    expect(r.scheduler.counters.dispatched).toBe(600);
  });

  it('reports no room once every queue is full, keeps the overflow, and sends it when room returns', async () => {
    const r = rig({ maxQueuePerWorker: 3 });
    const { peer, link } = await r.addRawPeer();
    const answers = r.submit(5);
    expect(link.queued).toBe(3);
    expect(r.scheduler.overflow).toBe(2);
    expect(r.scheduler.freeCapacity()).toBeLessThanOrEqual(0);
    expect(r.capacity.at(-1)).toBeLessThanOrEqual(0);
    // The stalled worker wakes up: it adopts what it got and serves it.
    const ids: number[] = [];
    const serveBatch = async () => {
      const m = await nextMessage(peer);
      const d = decodeMasterMessage(m.data, m.fds.length);
      if (d.type !== 'dispatch') throw new Error(`expected a dispatch, got ${d.type}`);
      for (let i = 0; i < d.count; i++) ids.push(dispatchRecordId(d.data, i));
      peer.write(encodeReport([{ kind: ReportKind.ADOPTED, reason: DropReason.NONE, count: 1 }]));
      for (const fd of m.fds) closeFd(fd);
      peer.write(
        encodeReport([{ kind: ReportKind.CLOSED, reason: DropReason.NONE, count: d.count }]),
      );
    };
    peer.resume();
    await serveBatch();
    await serveBatch();
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect(r.capacity.at(-1)).toBeGreaterThan(0);
    // The clients see the server side close (the worker closed its fds).
    expect(await Promise.all(answers)).toEqual(['', '', '', '', '']);
    peer.close();
  });

  it('a sendmsg that fails on a dead channel (EPIPE) is caught: the connection goes to another worker, and the log names EPIPE', async () => {
    const r = rig();
    const { peer } = await r.addRawPeer();
    await r.addWorker();
    // The raw worker dies; the master has not read its EOF yet when the
    // next connections arrive, so it still picks it for one of them.
    peer.close();
    const answers = await Promise.all(r.submit(2));
    expect(answers.sort()).toEqual(r.served[1]!.map((id) => `w1 ${id}\n`).sort());
    expect(r.served[1]).toHaveLength(2);
    expect(r.logs.some((l) => /channel to worker 0 \(pid \d+\) failed: EPIPE/.test(l))).toBe(true);
    expect(r.scheduler.counters.redispatched).toBe(1);
    expect(r.scheduler.counters.errors.closed).toBe(0);
  });

  it('a sendmsg the kernel refuses (EBADF: an fd closed behind our back) drops only that one, with EBADF in the log', async () => {
    const r = rig();
    await r.addWorker();
    const pairs = [connectionPair(), connectionPair(), connectionPair()];
    const answers = pairs.map((p) => readAll(p.client));
    // Someone closes the middle connection's fd after handing it over.
    closeFd(pairs[1]!.fd);
    r.scheduler.submit(
      pairs.map((p) => p.fd),
      0,
    );
    const settled = await Promise.allSettled(answers);
    expect(settled[0]).toMatchObject({
      status: 'fulfilled',
      value: expect.stringMatching(/^w0 1\n$/),
    });
    expect(settled[2]).toMatchObject({
      status: 'fulfilled',
      value: expect.stringMatching(/^w0 3\n$/),
    });
    // The client whose server end vanished just sees it close.
    expect(settled[1]).toMatchObject({ status: 'fulfilled', value: '' });
    expect(
      r.logs.some(
        (l) => l.includes('sendmsg of 3 connection(s) to worker 0') && l.includes('EBADF'),
      ),
    ).toBe(true);
    expect(r.logs.some((l) => /closed before they could be sent \(EBADF; ids 2\)/.test(l))).toBe(
      true,
    );
    expect(r.scheduler.counters.errors.send).toBe(3);
    expect(r.scheduler.counters.dispatched).toBe(2);
  });

  it('takes back what a vanished worker had not adopted and sends it to another', async () => {
    const r = rig();
    const { peer } = await r.addRawPeer();
    const answers = r.submit(3);
    await vi.waitFor(() => expect(r.scheduler.links[0]!.inFlight).toHaveLength(1));
    await r.addWorker();
    // The stalled worker goes away without ever reading its channel.
    peer.close();
    const got = await Promise.all(answers);
    expect(got).toEqual(['w1 1\n', 'w1 2\n', 'w1 3\n']);
    expect(r.scheduler.counters.redispatched).toBe(3);
    expect(r.logs.some((l) => l.includes('is gone with 3 connection(s) it had not adopted'))).toBe(
      true,
    );
  });

  it('rotates a worker after maxRequestsPerWorker: STOP after its last connection, it drains, the channel closes', async () => {
    const r = rig({ maxRequestsPerWorker: 3 });
    const { worker, link } = await r.addWorker();
    const retired = once(r.scheduler, 'retire');
    const stopped = once(worker, 'stop');
    const lost = once(r.scheduler, 'lost');
    const firstThree = r.submit(3);
    expect(await retired).toEqual([link]);
    expect((await stopped)[0]).toMatchObject({ reason: 'master', deadlineMs: 2000 });
    expect(await Promise.all(firstThree)).toEqual(['w0 1\n', 'w0 2\n', 'w0 3\n']);
    await worker.drained;
    await lost;
    // No worker left: the next connection waits in the master, unrefused.
    const fourth = r.submit(1);
    expect(r.scheduler.overflow).toBe(1);
    await r.addWorker();
    expect(await Promise.all(fourth)).toEqual(['w1 4\n']);
    expect(r.scheduler.counters.errors).toMatchObject({ closed: 0, abandoned: 0, protocol: 0 });
  });

  it('cuts off a worker that reports adoptions it was never sent', async () => {
    const r = rig();
    const { peer, link } = await r.addRawPeer();
    const lost = once(r.scheduler, 'lost');
    peer.write(encodeReport([{ kind: ReportKind.ADOPTED, reason: DropReason.NONE, count: 1 }]));
    expect(await lost).toEqual([link]);
    expect(r.scheduler.counters.errors.protocol).toBe(1);
    expect(r.logs.some((l) => l.includes('reported 1 adoptions, 0 in flight'))).toBe(true);
    peer.close();
  });

  it('a worker that could not receive a dispatch (DROPPED) gets it again, or another worker does', async () => {
    const r = rig();
    const { peer } = await r.addRawPeer();
    const answers = r.submit(1);
    peer.resume();
    const m = await nextMessage(peer);
    closeFds(m.fds); // as if the kernel had dropped them (MSG_CTRUNC)
    await r.addWorker();
    peer.write(
      encodeReport([{ kind: ReportKind.DROPPED, reason: DropReason.CONTROL_TRUNCATED, count: 1 }]),
    );
    expect(await Promise.all(answers)).toEqual(['w1 1\n']);
    expect(r.scheduler.counters.errors.dropped).toBe(1);
    expect(r.logs.some((l) => l.includes('ERR_CONTROL_TRUNCATED'))).toBe(true);
    peer.close();
  });

  it('gives a connection up after maxAttempts, closing it with a log line', async () => {
    const r = rig({ maxAttempts: 2 });
    const { peer } = await r.addRawPeer();
    const answers = r.submit(1);
    peer.resume();
    for (let attempt = 0; attempt < 2; attempt++) {
      const m = await nextMessage(peer);
      closeFds(m.fds);
      peer.write(
        encodeReport([
          { kind: ReportKind.DROPPED, reason: DropReason.CONTROL_TRUNCATED, count: 1 },
        ]),
      );
    }
    expect(await Promise.all(answers)).toEqual(['']);
    await vi.waitFor(() => expect(r.scheduler.counters.errors.closed).toBe(1));
    expect(
      r.logs.some((l) => /closed 1 connection\(s\) no worker took: .*after 2 attempts/.test(l)),
    ).toBe(true);
    peer.close();
  });
});
