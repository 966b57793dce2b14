// Issue 12, case 2 for the prefork dispatcher: a worker's handler that
// throws or rejects on one connection must not take the worker process —
// and every other connection it serves — down with it. One real worker
// process (test/fixtures/dispatch-fault-worker.ts) is handed, in order: a
// connection it holds open, one whose handler throws, one whose handler
// rejects, and a fresh one.
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDispatcher, type Dispatcher, type WorkerExitEvent } from '../src/index.js';
import { childPids, memoryLog, openFdCount, readAll } from './dispatch-helpers.js';
import { tempDir } from './harness.js';

const workerScript = join(import.meta.dirname, 'fixtures', 'dispatch-fault-worker.ts');

let tmp: ReturnType<typeof tempDir>;
let baseline = 0;
let open: Dispatcher[] = [];
beforeEach(() => {
  tmp = tempDir('dispatch-faults');
  baseline = openFdCount();
});
afterEach(async () => {
  try {
    await Promise.all(open.map((d) => d.close()));
    open = [];
    await vi.waitFor(() => expect(childPids()).toEqual([]), { timeout: 10_000 });
    await vi.waitFor(() => expect(openFdCount()).toBe(baseline), { timeout: 5_000 });
  } finally {
    tmp.remove();
  }
});

/** The next line the peer sends. */
async function line(socket: Socket): Promise<string> {
  let text = '';
  while (!text.includes('\n')) text += String((await once(socket, 'data'))[0]);
  return text;
}

describe('serveDispatched: a handler that fails on one connection', () => {
  it('a throwing or rejecting handler loses only its own connection: the worker and its other connections go on', async () => {
    const exits: WorkerExitEvent[] = [];
    const d = await createDispatcher({
      listen: { path: tmp.path('d.sock') },
      workers: 1,
      workerScript,
      execArgv: ['--conditions=@handoff/source', '--import', 'tsx'],
      env: { ...process.env, DISPATCH_FAULT_PLAN: 'hold,throw,reject' },
      maxQueuePerWorker: 64,
      maxConnectionsPerWorker: 64,
      spawnBackoff: { initialMs: 50, maxMs: 1000 },
      shutdownDeadline: 2000,
      log: memoryLog().log,
    });
    open.push(d);
    d.on('workerExit', (e: WorkerExitEvent) => exits.push(e));
    const path = tmp.path('d.sock');
    const [pid] = d.stats().perWorker.map((w) => w.pid);

    const held = connect({ path });
    held.on('error', () => {});
    held.write('x');
    expect(await line(held)).toBe(`${pid} held\n`);

    // What the requester observes: what the handler wrote before failing,
    // then the end of the stream.
    const thrown = connect({ path });
    expect(await readAll(thrown)).toBe('partial\n');
    const rejected = connect({ path });
    rejected.write('x');
    expect(await readAll(rejected)).toBe('partial\n');

    // The same worker process still serves the held connection and a new one.
    held.write('y');
    expect(await line(held)).toBe(`${pid} held\n`);
    const fresh = connect({ path });
    fresh.write('z');
    expect(await readAll(fresh)).toBe(`${pid} served\n`);
    expect(exits).toEqual([]);
    expect(d.stats().perWorker.map((w) => w.pid)).toEqual([pid]);
    held.destroy();
  }, 60_000);
});
