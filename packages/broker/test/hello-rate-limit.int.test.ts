// The per-uid Hello rate limit on a real `serve` process: a client process
// flooding Hellos gets Refused{RATE_LIMITED, retry_after_ms}, admin still
// answers, and a well-behaved client of the same uid, starting in the
// middle of the flood, is only delayed: connectService waits out the hint
// and gets through. And, where the tests may switch users (root and
// setpriv), a flood from another uid (nobody) leaves root's Hellos alone.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AdminVerb, ErrorCode } from '@handoff/protocol';
import { bundlePeerForUser, foreignUserUnavailable, NOBODY } from '@handoff/testkit';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startBroker } from '../src/broker-launch.js';
import { adminRequest } from '../src/client/admin-client.js';
import { type ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { runBrokerCli } from './cli-process.js';
import { echoService, fixtures, tempDir, tsxArgs } from './harness.js';
import { type ServeChild, spawnServe, untilServing } from './serve-child.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Outcome = { code: string; retryAfterMs: number };

/** Runs the hello-flood fixture (`count` Hellos at once), as `argv0 …` — plain node, or setpriv. */
async function flood(argv: string[], cwd?: string): Promise<Map<string, number>> {
  const child = spawn(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'inherit'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  expect(code).toBe(0);
  const outcomes = JSON.parse(out.trim().split('\n').at(-1)!) as Outcome[];
  const byCode = new Map<string, number>();
  for (const o of outcomes) byCode.set(o.code, (byCode.get(o.code) ?? 0) + 1);
  return byCode;
}

/** The sum of a counter's samples whose labels include `outcome`. */
function counted(metrics: string, name: string, outcome: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    const m = line.match(new RegExp(`^(?:\\w+_)?${name}\\{([^}]*)\\} (\\d+)`));
    if (m && m[1]!.includes(`outcome="${outcome}"`)) sum += Number(m[2]);
  }
  return sum;
}

describe('the Hello rate limit', () => {
  it('a flood from one uid is refused RATE_LIMITED; a well-behaved client of that uid is only delayed', async () => {
    const tmp = tempDir('rate-limit');
    cleanups.push(() => tmp.remove());
    const configFile = tmp.path('services.json');
    writeFileSync(configFile, JSON.stringify({ services: [echoService('echo')] }));
    const socketPath = tmp.path('run', 'broker.sock');
    // One Hello a second, five at once: a flood drains it, and the next token is a second away.
    const serve: ServeChild = spawnServe([
      '--socket',
      socketPath,
      '--config-file',
      configFile,
      '--state-dir',
      tmp.path('state'),
      '--hello-rate',
      '1',
      '--hello-burst',
      '5',
    ]);
    cleanups.push(() => serve.stop());
    await untilServing(serve, socketPath);

    const flood = spawn(
      process.execPath,
      [...tsxArgs, join(fixtures, 'hello-flood.ts'), socketPath, '40', 'no-such-service'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const floodExit = once(flood, 'exit');
    cleanups.push(async () => {
      if (flood.exitCode === null && flood.signalCode === null) flood.kill('SIGKILL');
      await floodExit;
    });
    let out = '';
    const limited = new Promise<void>((resolve) =>
      flood.stdout!.on('data', (d) => {
        out += d;
        if (out.startsWith('limited\n')) resolve();
      }),
    );
    await limited;

    // Mid-flood, the bucket is empty: this client is refused at first and waits out the hint.
    const refusals: { code: string; retryAfterMs: number }[] = [];
    const started = performance.now();
    const { socket, route } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: socketPath,
      timeoutMs: 30_000,
      retry: {
        onRetry: ({ error }) => {
          const e = error as ConnectServiceError;
          refusals.push({
            code: e.refusal ? (ErrorCode[e.refusal.code] ?? '?') : e.code,
            retryAfterMs: e.refusal?.retryAfterMs ?? 0,
          });
        },
      },
    });
    const tookMs = performance.now() - started;
    socket.destroy();
    expect(['handoff', 'reconnect']).toContain(route);
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals.every((r) => r.code === 'RATE_LIMITED')).toBe(true);
    expect(refusals[0]!.retryAfterMs).toBeGreaterThan(0);
    expect(refusals[0]!.retryAfterMs).toBeLessThanOrEqual(1000);
    expect(tookMs).toBeGreaterThanOrEqual(refusals[0]!.retryAfterMs);

    await floodExit;
    const outcomes = JSON.parse(out.split('\n')[1]!) as { code: string; retryAfterMs: number }[];
    const byCode = new Map<string, number>();
    for (const o of outcomes) byCode.set(o.code, (byCode.get(o.code) ?? 0) + 1);
    // The burst went through (and met an unknown service); at most one more token came back.
    const admitted = byCode.get('SERVICE_UNKNOWN') ?? 0;
    expect(admitted).toBeGreaterThanOrEqual(4);
    expect(admitted).toBeLessThanOrEqual(6);
    const floodLimited = outcomes.filter((o) => o.code === 'RATE_LIMITED');
    expect(floodLimited.length).toBe(40 - admitted);
    for (const o of floodLimited) {
      expect(o.retryAfterMs).toBeGreaterThan(0);
      expect(o.retryAfterMs).toBeLessThanOrEqual(1000);
    }

    // Admin is never limited, and the broker counted every refusal it sent.
    const metrics = await adminRequest(socketPath, { verb: AdminVerb.METRICS });
    expect(counted(metrics.body, 'hello_total', 'rate_limited')).toBe(
      floodLimited.length + refusals.length,
    );
  });

  const noSwitch = foreignUserUnavailable(NOBODY);
  it.skipIf(noSwitch !== null)(
    `keys by uid: nobody's flood leaves root's burst whole${noSwitch ? ` (skipped: ${noSwitch})` : ''}`,
    async () => {
      const tmp = tempDir('rate-uid');
      cleanups.push(() => tmp.remove());
      const socketPath = tmp.path('run', 'broker.sock');
      const broker = await startBroker({
        socketPath,
        allowedUids: [process.getuid!(), NOBODY],
        helloRateLimit: { perSecond: 1, burst: 5 },
        watchConfig: false,
        logger: pino({ level: 'warn' }),
      });
      cleanups.push(() => broker.close({ deadlineMs: 1000 }));
      // Test setup only: let nobody reach the socket (the broker checked its
      // directory when it started); its peer policy is what admits that uid.
      chmodSync(tmp.dir, 0o711);
      chmodSync(dirname(socketPath), 0o711);
      chmodSync(socketPath, 0o666);
      const peer = bundlePeerForUser(join(fixtures, 'hello-flood.ts'));
      cleanups.push(() => peer.remove());
      const fromNobody = await flood(
        [
          'setpriv',
          `--reuid=${NOBODY}`,
          `--regid=${NOBODY}`,
          '--clear-groups',
          process.execPath,
          peer.script,
          socketPath,
          '40',
          'no-such-service',
        ],
        peer.dir,
      );
      // nobody got through to the broker, spent its burst, and was limited.
      expect(fromNobody.get('SERVICE_UNKNOWN')).toBeGreaterThanOrEqual(5);
      expect(fromNobody.get('RATE_LIMITED')).toBeGreaterThanOrEqual(33);
      // Root's bucket is untouched: its whole burst goes through at once.
      const fromRoot = await flood([
        process.execPath,
        ...tsxArgs,
        join(fixtures, 'hello-flood.ts'),
        socketPath,
        '5',
        'no-such-service',
      ]);
      expect(Object.fromEntries(fromRoot)).toEqual({ SERVICE_UNKNOWN: 5 });
    },
  );

  it('serve takes the limit as flags, says so in --help, and refuses a bad figure as a usage error', async () => {
    const help = await runBrokerCli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--allow-root', '--hello-rate N', '--hello-burst N'])
      expect(help.stdout).toContain(flag);
    const bad = await runBrokerCli(['serve', '--hello-rate', 'fast']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--hello-rate takes a non-negative integer, not "fast"');
    const noBurst = await runBrokerCli(['serve', '--hello-burst', '0']);
    expect(noBurst.code).toBe(2);
    expect(noBurst.stderr).toContain('--hello-burst takes an integer of at least 1, not "0"');
  });
});
