// The demo daemon and its broker's fd store, for real: a demo-kv daemon
// stopped by SIGTERM leaves its idle line-wire connections and its store's
// contents with the broker; the daemon respawned for the next Hello takes
// them back, so a line client stays connected and finds what was stored.
// A busy line connection drains as before; with the fd store off
// (fdStoreMax 0) nothing is kept.
import { once } from 'node:events';
import { adminRequest, type Broker, startBroker } from '@handoff/broker';
import { AdminVerb } from '@handoff/protocol';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../src/cli/run.js';
import { type DemoKvServiceOptions, demoKvServiceDefinition } from '../src/service-definition.js';
import { alive, childPids, LineClient, openFds, str, tempDir } from './harness.js';

const tmp = tempDir('demo-fd-store');
const brokers: Broker[] = [];
const cleanups: (() => void)[] = [];
let n = 0;
let baseline: { fds: number; children: number[] };

beforeAll(() => {
  baseline = { fds: openFds(), children: childPids() };
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) cleanup();
  await Promise.all(brokers.splice(0).map((b) => b.close({ deadlineMs: 1000 })));
});
afterAll(() => tmp.remove());

async function broker(options: DemoKvServiceOptions = {}): Promise<Broker> {
  const b = await startBroker({
    socketPath: tmp.path(`broker${++n}/broker.sock`),
    services: [demoKvServiceDefinition({ drainMs: 3000, ...options })],
    watchConfig: false,
    logger: pino({ level: 'silent' }),
  });
  brokers.push(b);
  return b;
}

async function cli(b: Broker, argv: string[]) {
  let stdout = '';
  const code = await runCli([...argv, '--socket', b.socketPath, '--timeout', '60000'], {
    stdout: (data) => {
      stdout += typeof data === 'string' ? data : str(data);
    },
    stderr: () => {},
    env: {},
  });
  return { code, stdout };
}

function onlyBackend(b: Broker) {
  const backends = b.registry.list();
  expect(backends).toHaveLength(1);
  return backends[0]!;
}

async function line(path: string): Promise<LineClient> {
  const client = await LineClient.connect(path);
  cleanups.push(() => client.close());
  return client;
}

describe('demo-kv and the fd store', () => {
  it('SIGTERM: idle line clients stay connected and are served by the respawned daemon, with the store’s contents', async () => {
    const b = await broker();
    expect((await cli(b, ['set', 'kept', 'across', '--ttl', '600000'])).code).toBe(0);
    const first = onlyBackend(b);
    const idle = [await line(first.endpoint), await line(first.endpoint)];
    for (const client of idle) expect(await client.ask('GET kept')).toBe('VALUE across');
    const exited = once(first.child!, 'exit');
    process.kill(first.pid!, 'SIGTERM');
    expect(await exited).toEqual([0, null]);

    // The next Hello respawns the daemon; it takes the store and the clients back.
    expect(await cli(b, ['get', 'kept'])).toEqual({ code: 0, stdout: 'across\n' });
    const second = onlyBackend(b);
    expect(second.pid).not.toBe(first.pid);
    expect((await cli(b, ['set', 'fresh', 'new-daemon'])).code).toBe(0);
    // The same connections, answered by the new daemon (the old one is gone).
    for (const client of idle) {
      expect(await client.ask('GET fresh')).toBe('VALUE new-daemon');
      expect(await client.ask('GET kept')).toBe('VALUE across');
    }
    const stats = await idle[0]!.ask('STATS');
    expect(stats).toMatch(/ connections=\d+/);
  });

  it('`restart demo-kv` keeps idle line clients connected and keeps the store', async () => {
    const b = await broker();
    expect((await cli(b, ['set', 'kept', 'across-restart'])).code).toBe(0);
    const first = onlyBackend(b);
    const idle = await line(first.endpoint);
    expect(await idle.ask('GET kept')).toBe('VALUE across-restart');
    const reply = await adminRequest(
      b.socketPath,
      { verb: AdminVerb.RESTART, serviceName: 'demo-kv', json: true },
      { timeoutMs: 60_000 },
    );
    expect(JSON.parse(reply.body)).toMatchObject({ ok: true });
    // The old daemon drains and exits; its idle client went to the replacement.
    await vi.waitFor(() => expect(alive(first.pid!)).toBe(false), { timeout: 20_000 });
    await vi.waitFor(() => expect(b.registry.list()).toHaveLength(1));
    const second = onlyBackend(b);
    expect(second.pid).not.toBe(first.pid);
    expect((await cli(b, ['set', 'fresh', 'replacement'])).code).toBe(0);
    expect(await idle.ask('GET fresh')).toBe('VALUE replacement');
    expect(await idle.ask('GET kept')).toBe('VALUE across-restart');
    expect(await cli(b, ['get', 'kept'])).toEqual({ code: 0, stdout: 'across-restart\n' });
  });

  it('with the fd store off (fdStoreMax 0), SIGTERM ends the line clients and the store starts empty', async () => {
    const b = await broker({ fdStoreMax: 0 });
    expect((await cli(b, ['set', 'gone', 'soon'])).code).toBe(0);
    const first = onlyBackend(b);
    const client = await line(first.endpoint);
    expect(await client.ask('GET gone')).toBe('VALUE soon');
    const exited = once(first.child!, 'exit');
    process.kill(first.pid!, 'SIGTERM');
    await client.closed;
    expect(await exited).toEqual([0, null]);
    expect((await cli(b, ['get', 'gone'])).code).toBe(1);
  });
});

describe('after all of the above', () => {
  it('no fd and no child process is left behind', async () => {
    await expect.poll(() => openFds()).toBe(baseline.fds);
    expect(childPids()).toEqual(baseline.children);
  });
});
