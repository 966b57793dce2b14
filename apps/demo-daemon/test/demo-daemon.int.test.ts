// The demo daemon as it runs for real: spawned by a real broker from its
// service definition, reached by demo-kv (its logic and its executable)
// through handed-off connections, on the line wire, by probes; stopped by
// SIGTERM with a request in flight, by its idle timeout, and left running
// when its broker dies. Nothing may be left behind: fds and child processes
// are counted at the end.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { probeDaemon } from '@handoff/backend-sdk';
import { type Broker, connectService, startBroker } from '@handoff/broker';
import { encodeFramed, FrameDecoder, requestFrame } from '@handoff/protocol';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../src/cli/run.js';
import { DemoKvClient } from '../src/client.js';
import { decodeResponse, encodeRequest, KV_PAYLOAD_PROTOCOL } from '../src/kv-protocol.js';
import { type DemoKvServiceOptions, demoKvServiceDefinition } from '../src/service-definition.js';
import {
  alive,
  app,
  childPids,
  LineClient,
  openFds,
  str,
  tempDir,
  text,
  tsxArgs,
} from './harness.js';

const tmp = tempDir('demo-int');
const brokers: Broker[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
let n = 0;
let baseline: { fds: number; children: number[] };

beforeAll(() => {
  baseline = { fds: openFds(), children: childPids() };
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
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

/** demo-kv's logic in this process, against `b`. */
async function cli(b: Broker, argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...argv, '--socket', b.socketPath, '--timeout', '60000'], {
    stdout: (data) => {
      stdout += typeof data === 'string' ? data : str(data);
    },
    stderr: (text) => {
      stderr += text;
    },
    env: {},
  });
  return { code, stdout, stderr };
}

/** The demo-kv executable, as a user runs it. */
async function demoKv(argv: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [...tsxArgs, join(app, 'src', 'cli', 'main.ts'), ...argv], {
    cwd: app,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'close');
  return { code, stdout, stderr };
}

const HANDOFF_NOTE =
  'demo-kv: connected by handoff (the broker passed this connection to the daemon)\n';

function onlyBackend(b: Broker) {
  const backends = b.registry.list();
  expect(backends).toHaveLength(1);
  return backends[0]!;
}

describe('through a broker', () => {
  let b: Broker;
  beforeAll(async () => {
    b = await startBroker({
      socketPath: tmp.path('shared/broker.sock'),
      services: [demoKvServiceDefinition()],
      watchConfig: false,
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(() => b.close({ deadlineMs: 1000 }));

  it('demo-kv sets, gets and deletes over handed-off connections', async () => {
    const set = await cli(b, ['set', 'greeting', 'hello world', '--ttl', '600000']);
    expect(set).toEqual({
      code: 0,
      stdout: 'stored greeting (expires in 600000 ms)\n',
      stderr: HANDOFF_NOTE,
    });
    expect(await cli(b, ['get', 'greeting'])).toEqual({
      code: 0,
      stdout: 'hello world\n',
      stderr: HANDOFF_NOTE,
    });
    const json = await cli(b, ['get', 'greeting', '--json']);
    expect(json.code).toBe(0);
    expect(json.stderr).toBe('');
    const parsed = JSON.parse(json.stdout);
    expect(parsed).toMatchObject({
      schema_version: 1,
      command: 'get',
      route: 'handoff',
      ok: true,
      key: 'greeting',
      found: true,
      value: 'hello world',
    });
    expect(parsed.ttl_remaining_ms).toBeGreaterThan(590_000);
    const miss = await cli(b, ['get', 'nobody']);
    expect(miss).toEqual({
      code: 1,
      stdout: '',
      stderr: `${HANDOFF_NOTE}demo-kv: nobody: not found\n`,
    });
    expect((await cli(b, ['del', 'greeting'])).stdout).toBe('deleted greeting\n');
    expect((await cli(b, ['del', 'greeting', '--json'])).stdout).toContain('"deleted":false');
    const stats = JSON.parse((await cli(b, ['stats', '--json'])).stdout);
    expect(stats).toMatchObject({ route: 'handoff', ok: true, stats: { sets: 1, deletes: 1 } });
    // Every call above was one connection handed over by the broker.
    expect(stats.stats.handoffs).toBeGreaterThanOrEqual(7);
  });

  it('the demo-kv executable works the same, exit codes included', async () => {
    const env = { HANDOFF_BROKER_SOCKET: b.socketPath };
    expect(await demoKv(['set', 'exe', 'ran'], env)).toEqual({
      code: 0,
      stdout: 'stored exe\n',
      stderr: HANDOFF_NOTE,
    });
    expect(await demoKv(['get', 'exe'], env)).toMatchObject({ code: 0, stdout: 'ran\n' });
    expect(await demoKv(['get', 'not-there'], env)).toMatchObject({ code: 1, stdout: '' });
    const usage = await demoKv(['get'], env);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('missing KEY');
  });

  it('a handed-off connection speaks both wires: frames, or lines', async () => {
    const framed = await connectService('demo-kv', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
    });
    expect(framed.route).toBe('handoff');
    const kv = DemoKvClient.fromSocket(framed.socket, framed.route);
    cleanups.push(() => kv.close());
    await kv.set('both', 'wires');

    // The mux classifies what follows the Hello: a line is the line wire.
    const lines = await connectService('demo-kv', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
    });
    expect(lines.route).toBe('handoff');
    cleanups.push(() => void lines.socket.destroy());
    const answer = new Promise<string>((resolve) => {
      let buffered = '';
      lines.socket.on('data', (chunk: Buffer) => {
        buffered += chunk;
        if (buffered.includes('\n')) resolve(buffered);
      });
    });
    lines.socket.resume();
    lines.socket.write('GET both\n');
    expect(await answer).toBe('VALUE wires\n');
  });

  it('a client that ends its side after a waiting GET still gets the value', async () => {
    // A script's pattern: send the request, shut the write side, read the
    // answer. Here the answer is produced after that end of stream (the key
    // is set later), and still reaches the client before the daemon ends
    // the connection.
    const request = encodeFramed(
      requestFrame({
        payloadProtocol: KV_PAYLOAD_PROTOCOL.id,
        requestId: 1n,
        payload: encodeRequest({ op: 'get', key: text('later'), waitMs: 30_000 }),
      }),
    );
    const { socket, route } = await connectService('demo-kv', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 60_000,
      initialData: request,
    });
    expect(route).toBe('handoff');
    cleanups.push(() => void socket.destroy());
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk)); // starts the flow: no resume() needed
    const ended = once(socket, 'end');
    socket.end();
    const waiting = async () =>
      JSON.parse((await cli(b, ['stats', '--json'])).stdout).stats.waiting as number;
    await expect.poll(waiting, { timeout: 10_000 }).toBe(1);
    expect((await cli(b, ['set', 'later', 'arrived'])).code).toBe(0);
    await ended;
    const frames = new FrameDecoder().push(Buffer.concat(chunks));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.requestId).toBe(1n);
    const reply = decodeResponse(frames[0]!.payload);
    expect(reply.result).toBe('found');
    expect(reply.result === 'found' && str(reply.value)).toBe('arrived');
  });

  it('the daemon’s own socket: the line wire, and probes that verify who answers', async () => {
    await cli(b, ['set', 'direct', 'yes']);
    const backend = onlyBackend(b);
    const line = await LineClient.connect(backend.endpoint);
    cleanups.push(() => line.close());
    expect(await line.ask('GET direct')).toBe('VALUE yes');
    expect(await line.ask('GET')).toMatch(/^ERROR WRONG_ARGUMENTS /);

    const verified = await probeDaemon(backend.endpoint, { pid: backend.pid! });
    expect(verified.peer.pid).toBe(backend.pid);
    expect(verified.identity.ipcEndpoint?.path).toBe(backend.endpoint);
    expect(verified.identity.entryScriptPath).toMatch(/apps\/demo-daemon\/src\/daemon-main\.ts$/);
    const sidecar = JSON.parse(readFileSync(`${backend.endpoint}.identity.json`, 'utf8'));
    expect(sidecar.pid).toBe(backend.pid);
  });
});

describe('stopping', () => {
  it('SIGTERM: running requests finish, then socket and sidecar go, exit 0', async () => {
    // Without the fd store: the idle line client is drained, not handed over
    // (the hand-over is fd-store.int.test.ts's).
    const b = await broker({ fdStoreMax: 0 });
    const kv = await DemoKvClient.connect({ brokerPath: b.socketPath, timeoutMs: 60_000 });
    cleanups.push(() => kv.close());
    await kv.set('k', 'v');
    const backend = onlyBackend(b);
    const exited = once(backend.child!, 'exit');
    const line = await LineClient.connect(backend.endpoint);
    cleanups.push(() => line.close());
    expect(await line.ask('GET k')).toBe('VALUE v');

    const waiting = kv.get('later', { waitMs: 1500 }).then(
      (hit) => ({ hit }),
      (error: unknown) => ({ error }),
    );
    await vi.waitFor(async () => expect(await line.ask('STATS')).toMatch(/ waiting=1$/));
    const signalled = performance.now();
    process.kill(backend.pid!, 'SIGTERM');
    // Answered when its wait ran out — not cut off by the shutdown.
    expect(await waiting).toEqual({ hit: undefined });
    await line.closed;
    expect(await exited).toEqual([0, null]);
    expect(performance.now() - signalled).toBeGreaterThan(1000);
    expect(existsSync(backend.endpoint)).toBe(false);
    expect(existsSync(`${backend.endpoint}.identity.json`)).toBe(false);

    // The broker starts a fresh daemon for the next client.
    const again = await cli(b, ['get', 'k']);
    expect(again).toMatchObject({ code: 1, stderr: `${HANDOFF_NOTE}demo-kv: k: not found\n` });
    expect(onlyBackend(b).pid).not.toBe(backend.pid);
  });

  it('idle timeout: the daemon exits by itself once no client is left', async () => {
    const b = await broker({ idleTimeoutSecs: 1 });
    expect((await cli(b, ['set', 'k', 'v'])).code).toBe(0);
    const backend = onlyBackend(b);
    const exited = once(backend.child!, 'exit');
    const verified = await probeDaemon(backend.endpoint, { pid: backend.pid! });
    expect(verified.identity.idleTimeoutSecs).toBe(1);
    expect(await exited).toEqual([0, null]);
    expect(existsSync(backend.endpoint)).toBe(false);
    expect(existsSync(`${backend.endpoint}.identity.json`)).toBe(false);
    expect((await cli(b, ['get', 'k'])).code).toBe(1);
  });

  it('keeps serving when its broker dies (its stderr pipe dies with it)', async () => {
    const socketPath = tmp.path('doomed/broker.sock');
    const brokerProcess = spawn(
      process.execPath,
      [...tsxArgs, join(app, 'test', 'fixtures', 'broker.ts'), socketPath],
      { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    cleanups.push(() => void brokerProcess.kill('SIGKILL'));
    const [ready] = await once(brokerProcess.stdout, 'data');
    expect(String(ready)).toMatch(/^ready \d+/);

    const { socket, route, negotiated } = await connectService('demo-kv', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 60_000,
    });
    expect(route).toBe('handoff');
    const kv = DemoKvClient.fromSocket(socket, route);
    cleanups.push(() => kv.close());
    await kv.set('k', 'survives');
    const endpoint = negotiated.backendPipe;
    const daemonPid: number = JSON.parse(readFileSync(`${endpoint}.identity.json`, 'utf8')).pid;
    cleanups.push(async () => {
      if (!alive(daemonPid)) return;
      process.kill(daemonPid, 'SIGTERM');
      await vi.waitFor(() => expect(alive(daemonPid)).toBe(false), { timeout: 10_000 });
    });

    // SIGKILL: the broker cannot stop its daemons on the way out.
    brokerProcess.kill('SIGKILL');
    await once(brokerProcess, 'exit');
    // The daemon logs that its broker went away, and a bad client, into a
    // pipe nobody reads any more (EPIPE).
    const garbage = await LineClient.connect(endpoint);
    garbage.send(new Uint8Array([0x01, 0xff, 0xff, 0xff, 0xff]));
    await garbage.closed;

    // The handed-off connection never went through the broker.
    expect(str((await kv.get('k'))!.value)).toBe('survives');
    const line = await LineClient.connect(endpoint);
    cleanups.push(() => line.close());
    expect(await line.ask('GET k')).toBe('VALUE survives');
    expect(alive(daemonPid)).toBe(true);

    // And it still stops cleanly.
    line.close();
    kv.close();
    process.kill(daemonPid, 'SIGTERM');
    await vi.waitFor(() => expect(alive(daemonPid)).toBe(false), { timeout: 10_000 });
    expect(existsSync(endpoint)).toBe(false);
  });
});

/** daemon-main as its own process, stdin/stdout ignored and stderr as given. */
function daemonMain(args: string[], stderr: 'pipe' | number = 'pipe') {
  const child = spawn(process.execPath, [...tsxArgs, join(app, 'src', 'daemon-main.ts'), ...args], {
    cwd: app,
    env: { ...process.env, HANDOFF_ENDPOINT: '', HANDOFF_BROKER_CONTROL: '' },
    stdio: ['ignore', 'pipe', stderr],
  });
  let stdout = '';
  let err = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr?.on('data', (d) => (err += d));
  const closed = once(child, 'close').then(([code]) => ({ code, stdout, stderr: err }));
  return { child, closed };
}

describe('demo-daemon, started by hand', () => {
  it('prints its usage with --help, and refuses a bad command line with exit 2', async () => {
    const help = await daemonMain(['--help']).closed;
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: demo-daemon [--endpoint PATH]');
    expect(help.stdout).toContain('HANDOFF_BROKER_CONTROL');
    const noEndpoint = await daemonMain([]).closed;
    expect(noEndpoint.code).toBe(2);
    expect(noEndpoint.stderr).toContain('give --endpoint PATH or set $HANDOFF_ENDPOINT');
    const badIdle = await daemonMain([
      '--endpoint',
      tmp.path('x.sock'),
      '--idle-timeout-secs',
      'soon',
    ]).closed;
    expect(badIdle.code).toBe(2);
    expect(badIdle.stderr).toContain('--idle-timeout-secs takes an integer');
  });

  it('exits 1, with a fatal log line, when it cannot have its endpoint', async () => {
    // /tmp itself is world-writable: no place for a daemon socket.
    const refused = await daemonMain(['--endpoint', '/tmp/demo-kv-refused.sock']).closed;
    expect(refused.code).toBe(1);
    const line = JSON.parse(refused.stderr.trim().split('\n').at(-1)!);
    expect(line).toMatchObject({ level: 60, name: 'demo-daemon', msg: 'cannot start' });
    expect(existsSync('/tmp/demo-kv-refused.sock')).toBe(false);
  });

  it('serves on, and stops cleanly, when its log cannot be written (stderr on /dev/full)', async () => {
    const endpoint = tmp.path('full.sock');
    const full = openSync('/dev/full', 'w');
    const { child, closed } = daemonMain(['--endpoint', endpoint], full);
    closeSync(full);
    cleanups.push(() => void child.kill('SIGKILL'));
    // Every log line fails with ENOSPC, the first one ("listening") included.
    await vi.waitFor(() => expect(existsSync(`${endpoint}.identity.json`)).toBe(true), {
      timeout: 30_000,
    });
    const line = await LineClient.connect(endpoint);
    expect(await line.ask('SET k v')).toBe('STORED');
    expect(await line.ask('GET k')).toBe('VALUE v');
    line.close();
    child.kill('SIGTERM');
    expect((await closed).code).toBe(0);
    expect(existsSync(endpoint)).toBe(false);
  });
});

describe('after all of the above', () => {
  it('no fd and no child process is left behind', async () => {
    await vi.waitFor(
      () => {
        expect(childPids()).toEqual(baseline.children);
        expect(openFds()).toBe(baseline.fds);
      },
      { timeout: 10_000 },
    );
  });
});
