// `handoff-broker serve` under a service manager, with the test playing
// systemd: a listening socket inherited as fd 3 (LISTEN_FDS, LISTEN_PID via
// `sh -c 'exec'`), and a real datagram socket as NOTIFY_SOCKET.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { FdServer } from '@handoff/fdpass';
import { processesMentioning, startDatagramReceiver } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { connectService } from '../src/client/connect-service.js';
import { SystemdNotifier } from '../src/systemd/notify.js';
import { BROKER_NODE_FLAGS } from '../src/systemd/units.js';
import { echoService, str, tempDir, text, tsxArgs } from './harness.js';

const repo = join(import.meta.dirname, '../../..');
const main = join(import.meta.dirname, '../src/cli/main.ts');
const P = 0xf001;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

interface Manager {
  /** Datagrams received on NOTIFY_SOCKET, as text. */
  notes: string[];
  address: string;
}

async function notifySocket(): Promise<Manager> {
  const address = `@handoff-broker-test-${process.pid}-${randomBytes(6).toString('hex')}`;
  const receiver = await startDatagramReceiver(address);
  cleanups.push(receiver.close);
  return {
    get notes() {
      return receiver.received.map((datagram) => datagram.toString());
    },
    address,
  };
}

interface Serve {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<[number | null, string | null]>;
}

/**
 * serve as systemd would start it: with the unit's node flags, `fd3` becomes
 * fd 3, LISTEN_PID is the pid that runs node (sh execs it), `env` adds
 * LISTEN_FDS and friends.
 */
function serve(
  configFile: string,
  socket: string,
  fd3: number | null,
  env: Record<string, string>,
  listenPid: 'self' | number = 'self',
): Serve {
  const pid = listenPid === 'self' ? '$$' : String(listenPid);
  const child = spawn(
    'sh',
    [
      '-c',
      `LISTEN_PID=${pid} exec "$0" "$@"`,
      process.execPath,
      ...BROKER_NODE_FLAGS,
      ...tsxArgs,
      main,
      'serve',
      '--config-file',
      configFile,
      '--socket',
      socket,
      '--drain',
      '1000',
    ],
    {
      cwd: repo,
      env: { ...process.env, HANDOFF_BROKER_SOCKET: '', HANDOFF_LOG_LEVEL: 'info', ...env },
      stdio: ['ignore', 'pipe', 'pipe', ...(fd3 === null ? [] : [fd3])],
    },
  );
  cleanups.unshift(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** A temp dir with a private run/ and one echo service definition. */
function setup() {
  const tmp = tempDir('systemd');
  cleanups.push(() => tmp.remove());
  cleanups.unshift(() => {
    for (const pid of processesMentioning(tmp.dir, [])) process.kill(pid, 'SIGKILL');
  });
  mkdirSync(tmp.path('run'), { mode: 0o700 });
  const configFile = tmp.path('services.json');
  writeFileSync(configFile, JSON.stringify({ services: [echoService('echo')] }));
  return { tmp, configFile, socket: tmp.path('run/broker.sock') };
}

/** The manager's listening socket, bound by the test; paused, so only the broker accepts. */
async function managerListener(path: string): Promise<FdServer> {
  const server = await FdServer.listen(path, { kind: 'stream', mode: 0o600 });
  server.pause();
  cleanups.push(() => server.close());
  return server;
}

async function echoOnce(brokerPath: string, payload: string): Promise<string> {
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 60_000,
  });
  const client = new FrameClient(socket);
  try {
    return str((await client.request(P, text(payload), { timeoutMs: 10_000 })).payload);
  } finally {
    client.close();
  }
}

describe('serve under systemd', () => {
  it('adopts the inherited listener, notifies READY/WATCHDOG/STOPPING, and keeps the manager env from daemons', async () => {
    expect.hasAssertions();
    const { tmp, configFile, socket } = setup();
    const listener = await managerListener(socket);
    const listenerInode = readlinkSync(`/proc/self/fd/${listener.fd}`);
    const manager = await notifySocket();
    // A client that arrives before the broker runs waits in the backlog (as
    // with systemd holding the socket) and is served, not dropped.
    const early = echoOnce(socket, 'early');
    const broker = serve(configFile, tmp.path('run/unused.sock'), listener.fd, {
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'broker',
      NOTIFY_SOCKET: manager.address,
      WATCHDOG_USEC: '200000',
    });
    await expect
      .poll(() => manager.notes.find((n) => n.startsWith('READY=1')), { timeout: 60_000 })
      .toBe(`READY=1\nSTATUS=serving 1 services at ${socket}`);
    // It serves on the inherited socket, and never bound --socket.
    expect(await early).toBe('early');
    expect(await echoOnce(socket, 'hello')).toBe('hello');
    expect(() => statSync(tmp.path('run/unused.sock'))).toThrow();
    // WATCHDOG=1 every WATCHDOG_USEC / 2 (100 ms).
    await expect
      .poll(() => manager.notes.filter((n) => n === 'WATCHDOG=1').length, { timeout: 5000 })
      .toBeGreaterThanOrEqual(5);
    // The daemon it spawned sees neither the manager's variables nor the broker's listener.
    const brokerPid = broker.child.pid!;
    const [daemon] = processesMentioning(tmp.dir, [brokerPid]);
    expect(daemon).toBeDefined();
    const environ = readFileSync(`/proc/${daemon}/environ`, 'utf8').split('\0');
    expect(environ.filter((v) => /^(NOTIFY_SOCKET|WATCHDOG_|LISTEN_)/.test(v))).toEqual([]);
    const daemonFds = readdirSync(`/proc/${daemon}/fd`).map((fd) => {
      try {
        return readlinkSync(`/proc/${daemon}/fd/${fd}`);
      } catch {
        return '';
      }
    });
    expect(daemonFds).not.toContain(listenerInode);

    broker.child.kill('SIGTERM');
    const [code] = await broker.exited;
    expect(code).toBe(0);
    expect(manager.notes.some((n) => n.startsWith('STOPPING=1'))).toBe(true);
    // The socket file is the manager's: still there, still the one it bound.
    expect(statSync(socket).isSocket()).toBe(true);
    // Nothing on stderr but the broker's own JSON log lines, none of them a warning.
    const lines = broker
      .stderr()
      .split('\n')
      .filter((l) => l !== '');
    const entries = lines.map((l) => JSON.parse(l) as { level: number });
    expect(entries.filter((e) => e.level >= 40)).toEqual([]);
  });

  it('ignores LISTEN_FDS meant for another pid and binds its own socket, as today', async () => {
    expect.hasAssertions();
    const { configFile, socket } = setup();
    const devNull = openSync('/dev/null', 'r');
    cleanups.push(() => closeSync(devNull));
    const broker = serve(configFile, socket, devNull, { LISTEN_FDS: '1' }, 1);
    await expect
      .poll(() => broker.stderr().includes('broker listening'), { timeout: 60_000 })
      .toBe(true);
    expect(statSync(socket).isSocket()).toBe(true);
    expect(await echoOnce(socket, 'own')).toBe('own');
    broker.child.kill('SIGTERM');
    expect((await broker.exited)[0]).toBe(0);
    // Its own socket file, removed on exit as always.
    expect(() => statSync(socket)).toThrow();
  });

  it('exits 1 with a clear message when the inherited fd is not a listening socket', async () => {
    expect.hasAssertions();
    const { configFile, socket } = setup();
    const devNull = openSync('/dev/null', 'r');
    cleanups.push(() => closeSync(devNull));
    const broker = serve(configFile, socket, devNull, {
      LISTEN_FDS: '1',
      LISTEN_FDNAMES: 'broker',
    });
    const [code] = await broker.exited;
    expect(code).toBe(1);
    expect(broker.stderr()).toMatch(
      /cannot start the broker at .*: inherited fd 3 is not a listening Unix socket \(ENOTSOCK\)/,
    );
  });

  it('exits 1 when LISTEN_FDNAMES does not match LISTEN_FDS', async () => {
    expect.hasAssertions();
    const { configFile, socket } = setup();
    const broker = serve(configFile, socket, null, { LISTEN_FDS: '2', LISTEN_FDNAMES: 'broker' });
    const [code] = await broker.exited;
    expect(code).toBe(1);
    expect(broker.stderr()).toMatch(
      /socket activation: LISTEN_FDNAMES has 1 name\(s\) for 2 fd\(s\)/,
    );
  });

  it('still serves when NOTIFY_SOCKET points nowhere, and says so once', async () => {
    expect.hasAssertions();
    const { tmp, configFile, socket } = setup();
    const broker = serve(configFile, socket, null, {
      NOTIFY_SOCKET: tmp.path('run/nobody-notify.sock'),
      WATCHDOG_USEC: '100000',
    });
    await expect
      .poll(() => broker.stderr().includes('broker listening'), { timeout: 60_000 })
      .toBe(true);
    expect(await echoOnce(socket, 'anyway')).toBe('anyway');
    // Watchdog sends keep failing; the complaint is not repeated.
    await new Promise((r) => setTimeout(r, 300));
    const complaints = broker.stderr().match(/cannot notify the service manager/g) ?? [];
    expect(complaints).toHaveLength(1);
    expect(broker.stderr()).toMatch(/ENOENT/);
    broker.child.kill('SIGTERM');
    expect((await broker.exited)[0]).toBe(0);
  });

  it('SystemdNotifier sends each notification as one datagram, in the form systemd parses', async () => {
    expect.hasAssertions();
    const manager = await notifySocket();
    const n = SystemdNotifier.fromEnv({ NOTIFY_SOCKET: manager.address });
    n.ready('up\nand running');
    n.status('busy');
    const before = process.hrtime.bigint() / 1000n;
    n.reloading();
    const after = process.hrtime.bigint() / 1000n;
    n.stopping();
    await expect.poll(() => manager.notes.length).toBe(4);
    const [ready, status, reloading, stopping] = manager.notes;
    // A newline in STATUS would start another assignment: it becomes a space.
    expect(ready).toBe('READY=1\nSTATUS=up and running');
    expect(status).toBe('STATUS=busy');
    const match = /^RELOADING=1\nMONOTONIC_USEC=(\d+)$/.exec(reloading!);
    expect(match).not.toBeNull();
    const usec = BigInt(match![1]!);
    expect(usec >= before && usec <= after).toBe(true);
    expect(stopping).toBe('STOPPING=1');
  });
});
