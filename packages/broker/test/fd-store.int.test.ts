// The fd store end to end, with real daemons under a real broker (the
// fd-store-daemon fixture): a daemon stopped by SIGTERM deposits a live
// client connection and a memfd, and the daemon respawned for the next
// Hello gets them back and talks on that same connection; fds nobody
// collects are closed after fdStoreMaxAgeSecs and counted in status; a
// deposit over fdStoreMax is refused and closed while the daemon serves on.
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { AdminVerb } from '@handoff/protocol';
import { processesMentioning } from '@handoff/testkit';
import pino from 'pino';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../src/client/admin-client.js';
import { type Broker, connectService, startBroker } from '../src/index.js';
import { fixtures, openFds, tempDir, tsxArgs } from './harness.js';

const cleanups: (() => unknown)[] = [];
let baseline = 0;
beforeAll(() => {
  baseline = openFds();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function fdService(extra: Record<string, unknown>, flags: string[] = []) {
  return {
    name: 'fds',
    version: '1.0.0',
    command: process.execPath,
    args: [...tsxArgs, join(fixtures, 'fd-store-daemon.ts'), ...flags],
    readyTimeoutMs: 30_000,
    stopGraceMs: 3000,
    ...extra,
  };
}

async function brokerWith(service: Record<string, unknown>): Promise<Broker> {
  const dir = tempDir('fd-store');
  cleanups.push(() => dir.remove());
  const broker = await startBroker({
    socketPath: dir.path('broker.sock'),
    services: [service],
    watchConfig: false,
    logger: pino({ level: process.env.FD_STORE_TEST_LOG ?? 'silent' }),
  });
  cleanups.push(() => broker.close({ deadlineMs: 1000 }));
  return broker;
}

/** One Hello (a spawn when no daemon runs); the handed-off connection is closed again. */
async function hello(broker: Broker): Promise<void> {
  const conn = await connectService('fds', {
    version: '1.0.0',
    brokerPath: broker.socketPath,
    timeoutMs: 60_000,
  });
  conn.socket.destroy();
}

function backend(broker: Broker) {
  const [only] = broker.registry.list();
  expect(only).toBeDefined();
  return only!;
}

/** The fixture's memfds this process (the broker) holds: the store's, precisely. */
function heldMemfds(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('/memfd:fd-store-daemon')) n++;
    } catch {
      // Closed while we looked.
    }
  }
  return n;
}

async function fdStoreStatus(broker: Broker) {
  const reply = await adminRequest(broker.socketPath, { verb: AdminVerb.STATUS, json: true });
  return JSON.parse(reply.body).fd_store as {
    service: string;
    stored: number;
    expired: number;
    refused: number;
  }[];
}

describe('the fd store under a real broker', () => {
  it('a daemon stopped by SIGTERM deposits a live connection; the respawned one gets it and talks on it', async () => {
    const dir = tempDir('fd-store-client');
    cleanups.push(() => dir.remove());
    // The "client": the daemon connects to us, so we hold the other end.
    const listener: Server = createServer();
    listener.listen(dir.path('client.sock'));
    await once(listener, 'listening');
    cleanups.push(() => listener.close());
    const broker = await brokerWith(
      fdService({ fdStoreMax: 4 }, ['--connect', dir.path('client.sock')]),
    );
    const accepted = once(listener, 'connection') as Promise<[Socket]>;
    await hello(broker);
    const [client] = await accepted;
    cleanups.push(() => client.destroy());
    let received = '';
    let ended = false;
    client.on('data', (chunk: Buffer) => {
      received += chunk;
    });
    client.on('end', () => {
      ended = true;
    });
    const first = backend(broker);
    const exited = once(first.child!, 'exit');
    process.kill(first.pid!, 'SIGTERM');
    await exited;
    // The broker holds the connection and the note now.
    await expect
      .poll(() => fdStoreStatus(broker))
      .toEqual([{ service: 'fds@1.0.0', stored: 2, expired: 0, refused: 0 }]);
    expect(ended).toBe(false);

    // The next Hello respawns the daemon; it gets both back at attach.
    await hello(broker);
    const second = backend(broker);
    expect(second.pid).not.toBe(first.pid);
    await expect
      .poll(() => received)
      .toBe(`${second.pid} got conn,note note=deposited by ${first.pid}\n`);
    expect(ended).toBe(false);
    // Collected: nothing left to report.
    await expect.poll(() => fdStoreStatus(broker)).toEqual([]);
  });

  it('a daemon that never collects: with fdStoreMaxAgeSecs 1 the broker closes the fds, counts them, and its fd count is back', async () => {
    const broker = await brokerWith(
      fdService({ fdStoreMax: 4, fdStoreMaxAgeSecs: 1 }, ['--deposit', '3']),
    );
    const before = openFds();
    await hello(broker);
    const daemon = backend(broker);
    // Deposited: the broker (this process) holds the three memfds, and status says so.
    await expect
      .poll(() => fdStoreStatus(broker))
      .toEqual([{ service: 'fds@1.0.0', stored: 3, expired: 0, refused: 0 }]);
    expect(heldMemfds()).toBe(3);
    // Nobody collects: the daemon that deposited runs on, no other attaches.
    await expect
      .poll(() => fdStoreStatus(broker), { timeout: 5000, interval: 100 })
      .toEqual([{ service: 'fds@1.0.0', stored: 0, expired: 3, refused: 0 }]);
    expect(heldMemfds()).toBe(0);
    expect(daemon.state).toBe('ready');
    const exited = once(daemon.child!, 'exit');
    process.kill(daemon.pid!, 'SIGTERM');
    await exited;
    await expect.poll(() => openFds()).toBeLessThanOrEqual(before);
    const text = await adminRequest(broker.socketPath, { verb: AdminVerb.STATUS });
    expect(text.body).toMatch(/fd store:\s+fds@1\.0\.0 0 stored, 3 expired, 0 refused/);
  });

  it('a deposit over fdStoreMax is refused and closed; the daemon keeps its channel and serves on', async () => {
    const broker = await brokerWith(fdService({ fdStoreMax: 2 }, ['--deposit', '3']));
    await hello(broker);
    const before = openFds();
    await expect
      .poll(() => fdStoreStatus(broker))
      .toEqual([{ service: 'fds@1.0.0', stored: 0, expired: 0, refused: 1 }]);
    // Nothing held for it: the refused fds were closed.
    expect(heldMemfds()).toBe(0);
    await expect.poll(() => openFds()).toBeLessThanOrEqual(before);
    const daemon = backend(broker);
    expect(daemon.state).toBe('ready');
    // Still attached: a Hello is handed over on the same channel.
    await hello(broker);
    expect(backend(broker).pid).toBe(daemon.pid);
  });
});

describe('after all of the above', () => {
  it('no fd and no daemon is left behind', async () => {
    await expect.poll(() => openFds()).toBe(baseline);
    // The brokers' temp dirs are in each daemon's environment (HANDOFF_ENDPOINT).
    expect(processesMentioning('handoff-fd-store-')).toEqual([]);
  });
});
