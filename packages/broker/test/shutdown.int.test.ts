// `handoff-broker serve` stopped by SIGTERM while clients keep coming: the
// process must be gone within its documented deadline, with its daemons
// and socket files, and the clients must only ever see typed errors.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { FrameClient, FrameClientError } from '@handoff/backend-sdk';
import { ErrorCode } from '@handoff/protocol';
import { processesMentioning } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { echoService, openFds, str, tempDir, text, tsxArgs } from './harness.js';

const repo = join(import.meta.dirname, '../../..');
const main = join(import.meta.dirname, '../src/cli/main.ts');
const P = 0xf001;
/** README, "CLI": serve exits at the latest 10 s after its drain deadline. */
const DRAIN_MS = 2000;
const HARD_DEADLINE_MS = DRAIN_MS + 10_000;
/** Each client call is bounded: a hang shows up as a TIMEOUT, not a stuck test. */
const CLIENT_TIMEOUT_MS = 5000;
const LOOPS = 16;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function socketFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith('.sock'))
    .map((name) => relative(dir, join(dir, name)));
}

interface Serve {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  stderr: () => string;
  /** Resolves with how serve ended and how long after `since` it did, or 'hung' past `withinMs`. */
  exit(
    since: number,
    withinMs: number,
  ): Promise<{ code: number | null; signal: string | null; tookMs: number } | 'hung'>;
}

/** `serve` with one service definition, in a fresh temp dir removed after the test. */
async function serveOne(service: unknown) {
  const tmp = tempDir('shutdown');
  cleanups.push(() => tmp.remove());
  // Registered after the dir's removal in `cleanups`, run before it: nothing outlives the test.
  cleanups.unshift(() => {
    for (const pid of processesMentioning(tmp.dir)) process.kill(pid, 'SIGKILL');
  });
  const configFile = tmp.path('services.json');
  writeFileSync(configFile, JSON.stringify({ services: [service] }));
  const socketPath = tmp.path('run/broker.sock');
  return { tmp, socketPath, broker: await serve(configFile, socketPath) };
}

async function serve(configFile: string, socket: string): Promise<Serve> {
  const child = spawn(
    process.execPath,
    [
      ...tsxArgs,
      main,
      'serve',
      '--config-file',
      configFile,
      '--socket',
      socket,
      '--drain',
      String(DRAIN_MS),
    ],
    {
      cwd: repo,
      env: { ...process.env, HANDOFF_BROKER_SOCKET: '', HANDOFF_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const logs: Record<string, unknown>[] = [];
  let err = '';
  let partial = '';
  const listening = new Promise<void>((resolve, reject) => {
    // The broker logs JSON lines on stderr (not a terminal), among its other words.
    child.stderr!.on('data', (d) => {
      err += d;
      partial += d;
      const lines = partial.split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          logs.push(entry);
          if (entry.msg === 'broker listening') resolve();
        } catch {
          // Not a log line.
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
  await listening;
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
  return {
    child,
    logs,
    stderr: () => err,
    exit: (since, withinMs) =>
      Promise.race([
        exited.then(([code, signal]) => ({ code, signal, tookMs: performance.now() - since })),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), withinMs)),
      ]),
  };
}

/** Waits until `dir`'s service daemon runs (a spawn in progress). */
async function daemonStarted(dir: string, brokerPid: number): Promise<number> {
  await expect
    .poll(() => processesMentioning(dir, [brokerPid]).length, { timeout: 30_000, interval: 50 })
    .toBe(1);
  return processesMentioning(dir, [brokerPid])[0]!;
}

/**
 * A daemon that never attaches and ignores SIGTERM: only SIGKILL ends it.
 * Plain node, no tsx, so it starts at once.
 */
const deafService = {
  name: 'deaf',
  version: '1.0.0',
  command: process.execPath,
  args: ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000);"],
  readyTimeoutMs: 120_000,
  stopGraceMs: 120_000,
};

/** One client's whole use of the service: connect, one echo, close — every step bounded. */
async function oneRequest(socketPath: string, i: number): Promise<void> {
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath: socketPath,
    timeoutMs: CLIENT_TIMEOUT_MS,
    // What the dying broker answers, not the client's back-off past it.
    retry: false,
  });
  const client = new FrameClient(socket);
  try {
    const reply = await client.request(P, text(`r${i}`), { timeoutMs: CLIENT_TIMEOUT_MS });
    if (str(reply.payload) !== `r${i}`) throw new Error(`wrong echo: ${str(reply.payload)}`);
  } finally {
    client.close();
  }
}

describe('serve under load', () => {
  it('issue 12 case 9: SIGTERM under 16 client loops stops the process, its daemon and its sockets', async () => {
    expect.hasAssertions();
    const { tmp, socketPath, broker } = await serveOne(echoService('echo'));
    const brokerPid = broker.child.pid!;
    // The first spawn (a cold tsx start) is not what this test measures.
    await connectService('echo', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 60_000,
    }).then(({ socket }) => socket.destroy());
    const fdsBefore = openFds();

    let running = true;
    let ok = 0;
    let okAfterSigterm = 0;
    let sigtermSent = false;
    const failures = new Map<string, number>();
    const untyped: unknown[] = [];
    const loops = Array.from({ length: LOOPS }, async (_, loop) => {
      for (let i = 0; running; i++) {
        try {
          await oneRequest(socketPath, loop * 1_000_000 + i);
          ok++;
          if (sigtermSent) okAfterSigterm++;
        } catch (error) {
          if (error instanceof ConnectServiceError || error instanceof FrameClientError) {
            const refusal = error instanceof ConnectServiceError ? error.refusal : undefined;
            const key = `${sigtermSent ? 'after' : 'before'} SIGTERM ${error.name}:${error.code}${refusal ? `:${ErrorCode[refusal.code]}` : ''}`;
            failures.set(key, (failures.get(key) ?? 0) + 1);
          } else untyped.push(error);
          // Once the broker is gone every attempt fails at once: do not spin.
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    });

    // The load is up: the daemon serves and every loop has been through it.
    await expect.poll(() => ok, { timeout: 60_000, interval: 50 }).toBeGreaterThan(LOOPS * 4);
    const daemons = processesMentioning(tmp.dir, [brokerPid]);
    expect(daemons.length).toBeGreaterThanOrEqual(1);

    const sentAt = performance.now();
    broker.child.kill('SIGTERM');
    sigtermSent = true;
    const outcome = await broker.exit(sentAt, HARD_DEADLINE_MS + 3000);
    // Asserted while the 16 loops still hammer the (now absent) socket.
    expect(
      outcome,
      `serve still running after SIGTERM; logs: ${JSON.stringify(broker.logs.slice(-5))}`,
    ).not.toBe('hung');
    const { code, signal, tookMs } = outcome as Exclude<typeof outcome, 'hung'>;
    expect({ code, signal }, broker.stderr()).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(HARD_DEADLINE_MS);
    expect(broker.logs.some((l) => l.msg === 'broker closed')).toBe(true);
    // Daemons get SIGTERM, then SIGKILL after their grace: gone by the time serve exits.
    expect(processesMentioning(tmp.dir)).toEqual([]);
    expect(socketFiles(tmp.dir)).toEqual([]);

    const before = ok;
    await expect
      .poll(() => failures.get('after SIGTERM ConnectServiceError:CONNECT') ?? 0)
      .toBeGreaterThan(LOOPS);
    running = false;
    await Promise.all(loops);
    expect(untyped).toEqual([]);
    expect(ok).toBe(before);
    // Nothing failed before SIGTERM; after it, the only refusal is SHUTTING_DOWN,
    // and nothing timed out: no client was left hanging by the dying broker.
    for (const key of failures.keys())
      expect(key).toMatch(
        /^after SIGTERM (ConnectServiceError:(CONNECT|CLOSED|REFUSED:SHUTTING_DOWN)|FrameClientError:CLOSED)$/,
      );
    await expect.poll(openFds).toBeLessThanOrEqual(fdsBefore);
    console.log('shutdown under load', {
      tookMs: Math.round(tookMs),
      ok,
      okAfterSigterm,
      failures: Object.fromEntries(failures),
    });
  }, 120_000);

  it('issue 12 case 9: a Hello waiting on a spawn is refused SHUTTING_DOWN, and the spawn is stopped', async () => {
    expect.hasAssertions();
    const { tmp, socketPath, broker } = await serveOne(
      echoService('slow', { readyTimeoutMs: 120_000 }, ['--hang']),
    );
    const waiting = connectService('slow', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 60_000,
      retry: false,
    }).then(
      () => 'connected',
      (error: unknown) => error,
    );
    await daemonStarted(tmp.dir, broker.child.pid!);
    const sentAt = performance.now();
    broker.child.kill('SIGTERM');
    const error = await waiting;
    expect(error).toBeInstanceOf(ConnectServiceError);
    expect((error as ConnectServiceError).refusal?.code).toBe(ErrorCode.SHUTTING_DOWN);
    const outcome = await broker.exit(sentAt, HARD_DEADLINE_MS + 3000);
    expect(outcome, broker.stderr()).toMatchObject({ code: 0, signal: null });
    expect((outcome as { tookMs: number }).tookMs).toBeLessThan(HARD_DEADLINE_MS);
    expect(processesMentioning(tmp.dir)).toEqual([]);
    expect(socketFiles(tmp.dir)).toEqual([]);
  }, 120_000);

  it('a second SIGTERM exits at once and kills a daemon that ignores SIGTERM', async () => {
    expect.hasAssertions();
    const { tmp, socketPath, broker } = await serveOne(deafService);
    const waiting = connectService('deaf', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 60_000,
      retry: false,
    }).catch((error: unknown) => error);
    const daemon = await daemonStarted(tmp.dir, broker.child.pid!);
    broker.child.kill('SIGTERM');
    // Closing has begun (its socket file is gone); it will wait on a daemon that will not stop.
    await expect.poll(() => existsSync(socketPath), { timeout: 10_000 }).toBe(false);
    const sentAt = performance.now();
    broker.child.kill('SIGTERM');
    const outcome = await broker.exit(sentAt, 5000);
    expect(outcome, broker.stderr()).toMatchObject({ code: 128 + 15, signal: null });
    expect((outcome as { tookMs: number }).tookMs).toBeLessThan(2000);
    expect(broker.stderr()).toMatch(
      /second SIGTERM; exiting anyway\. Still open: .*deaf@1\.0\.0 pid/,
    );
    await expect.poll(() => processesMentioning(tmp.dir), { timeout: 5000 }).toEqual([]);
    expect(processesMentioning(tmp.dir)).not.toContain(daemon);
    expect(await waiting).toBeInstanceOf(ConnectServiceError);
  }, 120_000);

  it('a shutdown stuck on a daemon ends at the hard deadline (drain + 10 s) with status 1', async () => {
    expect.hasAssertions();
    const { tmp, socketPath, broker } = await serveOne(deafService);
    const waiting = connectService('deaf', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 60_000,
      retry: false,
    }).catch((error: unknown) => error);
    await daemonStarted(tmp.dir, broker.child.pid!);
    const sentAt = performance.now();
    broker.child.kill('SIGTERM');
    const outcome = await broker.exit(sentAt, HARD_DEADLINE_MS + 5000);
    expect(outcome, broker.stderr()).toMatchObject({ code: 1, signal: null });
    const { tookMs } = outcome as { tookMs: number };
    expect(tookMs).toBeGreaterThanOrEqual(HARD_DEADLINE_MS - 100);
    expect(tookMs).toBeLessThan(HARD_DEADLINE_MS + 3000);
    expect(broker.stderr()).toContain(`shutdown did not finish within ${HARD_DEADLINE_MS} ms`);
    await expect.poll(() => processesMentioning(tmp.dir), { timeout: 5000 }).toEqual([]);
    // Refused at the end of the drain, not left to its own timeout.
    expect(((await waiting) as ConnectServiceError).refusal?.code).toBe(ErrorCode.SHUTTING_DOWN);
  }, 120_000);
});
