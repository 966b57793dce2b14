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
import { DEFAULT_MAX_HANDED_OVER_LINES } from '../src/fd-handover.js';
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

async function broker(
  options: DemoKvServiceOptions = {},
  env: Record<string, string> = {},
): Promise<Broker> {
  const definition = demoKvServiceDefinition({ drainMs: 3000, ...options });
  const b = await startBroker({
    socketPath: tmp.path(`broker${++n}/broker.sock`),
    services: [{ ...definition, env: { ...definition.env, ...env } }],
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

async function restart(b: Broker): Promise<void> {
  const reply = await adminRequest(
    b.socketPath,
    { verb: AdminVerb.RESTART, serviceName: 'demo-kv', json: true },
    { timeoutMs: 60_000 },
  );
  expect(JSON.parse(reply.body)).toMatchObject({ ok: true });
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

  it('`restart demo-kv` with pipelined requests in flight: each is answered once, in order, across the cut-over', async () => {
    const b = await broker();
    expect((await cli(b, ['set', 'a', '1'])).code).toBe(0);
    expect((await cli(b, ['set', 'b', '2'])).code).toBe(0);
    const first = onlyBackend(b);
    const client = await line(first.endpoint);
    let running = true;
    let rounds = 0;
    const wrong: string[] = [];
    const loop = (async () => {
      while (running) {
        client.send('GET a\nGET b\n');
        const answers = [await client.line(), await client.line()];
        if (answers[0] !== 'VALUE 1' || answers[1] !== 'VALUE 2') {
          wrong.push(answers.join('|'));
          if (answers.includes(null)) return;
        }
        rounds++;
      }
    })();
    const reply = await adminRequest(
      b.socketPath,
      { verb: AdminVerb.RESTART, serviceName: 'demo-kv', json: true },
      { timeoutMs: 60_000 },
    );
    expect(JSON.parse(reply.body)).toMatchObject({ ok: true });
    await vi.waitFor(() => expect(alive(first.pid!)).toBe(false), { timeout: 20_000 });
    // Answered by the replacement now, on the same connection.
    const after = rounds;
    await vi.waitFor(() => expect(rounds).toBeGreaterThan(after + 10), { timeout: 10_000 });
    running = false;
    await loop;
    expect(wrong).toEqual([]);
    expect(await client.ask('STATS')).toMatch(/^STATS /);
  });

  it('`restart demo-kv` in the middle of a client’s line: the client stays connected and the replacement answers the whole line', async () => {
    const b = await broker();
    expect((await cli(b, ['set', 'half', 'whole'])).code).toBe(0);
    const first = onlyBackend(b);
    const client = await line(first.endpoint);
    expect(await client.ask('GET half')).toBe('VALUE whole');
    // Read by the old daemon long before its SIGTERM (the replacement boots first).
    client.send('GET ha');
    await restart(b);
    await vi.waitFor(() => expect(alive(first.pid!)).toBe(false), { timeout: 20_000 });
    client.send('lf\n');
    expect(await client.line()).toBe('VALUE whole');
  });

  it('with more line clients than a deposit takes, `restart demo-kv` keeps the oldest connected and lets the newest drain', async () => {
    const b = await broker();
    expect((await cli(b, ['set', 'k', 'v'])).code).toBe(0);
    const first = onlyBackend(b);
    // Three short clients take the daemon's first connection slots and leave
    // them free; then as many long clients as a deposit takes; then three
    // new ones, which reuse the low slots. The deposit must go by age, not slot.
    const short = await Promise.all([0, 1, 2].map(() => line(first.endpoint)));
    for (const c of short) expect(await c.ask('GET k')).toBe('VALUE v');
    const long: LineClient[] = [];
    for (let i = 0; i < DEFAULT_MAX_HANDED_OVER_LINES; i++) {
      const c = await line(first.endpoint);
      expect(await c.ask('GET k')).toBe('VALUE v');
      long.push(c);
    }
    for (const c of short) {
      c.close();
      await c.closed;
    }
    const fresh: LineClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await line(first.endpoint);
      expect(await c.ask('GET k')).toBe('VALUE v');
      fresh.push(c);
    }
    await restart(b);
    await vi.waitFor(() => expect(alive(first.pid!)).toBe(false), { timeout: 20_000 });
    expect((await cli(b, ['set', 'k', 'replacement'])).code).toBe(0);
    for (const c of long) expect(await c.ask('GET k')).toBe('VALUE replacement');
    // The newest were not deposited: the old daemon ended them as it drained.
    await Promise.all(fresh.map((c) => c.closed));
  });

  it('with HANDOFF_LINE_CUTOVER=off, only idle lines are handed over: one in the middle of a line drains', async () => {
    const b = await broker({}, { HANDOFF_LINE_CUTOVER: 'off' });
    expect((await cli(b, ['set', 'half', 'whole'])).code).toBe(0);
    const first = onlyBackend(b);
    const idle = await line(first.endpoint);
    const busy = await line(first.endpoint);
    // Both known as line clients (a connection that never sent a byte is not yet).
    expect(await idle.ask('GET half')).toBe('VALUE whole');
    expect(await busy.ask('GET half')).toBe('VALUE whole');
    busy.send('GET ha');
    await restart(b);
    await busy.closed;
    await vi.waitFor(() => expect(alive(first.pid!)).toBe(false), { timeout: 20_000 });
    expect(await idle.ask('GET half')).toBe('VALUE whole');
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
