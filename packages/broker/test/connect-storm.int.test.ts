// A thousand clients starting at once, 300 ms before their broker does:
// connectService's jittered back-off must get every one of them through,
// with a bounded number of attempts (counted by the clients, and at the
// broker by its hello_total), instead of a retry storm.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { AdminVerb } from '@handoff/protocol';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../src/broker-api.js';
import { startBroker } from '../src/broker-launch.js';
import { adminRequest } from '../src/client/admin-client.js';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { echoService, fixtures, openFds, tempDir, tsxArgs } from './harness.js';

const CLIENTS = 1000;
const BROKER_LATE_MS = 300;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface StormReport {
  connected: number;
  failed: number;
  failures: string[];
  retries: Record<string, number>;
  attempts: number;
  maxAttempts: number;
  elapsedMs: number;
}

/** The sum of every `hello_total` sample. */
function hellos(metrics: string): number {
  let sum = 0;
  for (const line of metrics.split('\n')) {
    const m = line.match(/^(?:\w+_)?hello_total\{[^}]*\} (\d+)/);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

describe('a thousand clients starting at once', () => {
  it(`all connect to a broker that starts ${BROKER_LATE_MS} ms after them, in bounded attempts`, async () => {
    const tmp = tempDir('storm');
    cleanups.push(() => tmp.remove());
    const socketPath = tmp.path('run', 'broker.sock');
    const fdsBefore = openFds();
    const storm = spawn(
      process.execPath,
      [
        ...tsxArgs,
        join(fixtures, 'connect-storm.ts'),
        socketPath,
        String(CLIENTS),
        'echo',
        '30000',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(storm, 'exit');
    cleanups.push(async () => {
      if (storm.exitCode === null && storm.signalCode === null) storm.kill('SIGKILL');
      await exited;
    });
    let out = '';
    await new Promise<void>((resolve) =>
      storm.stdout!.on('data', (d) => {
        out += d;
        if (out.startsWith('started\nbacking off\n')) resolve();
      }),
    );
    // Every client has failed its first attempt and backs off. The scenario
    // itself, not a wait for something: the broker comes up late.
    await new Promise((resolve) => setTimeout(resolve, BROKER_LATE_MS));
    const broker: Broker = await startBroker({
      socketPath,
      services: [echoService('echo')],
      watchConfig: false,
      logger: pino({ level: 'warn' }),
    });
    cleanups.push(() => broker.close({ deadlineMs: 1000 }));
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    const report = JSON.parse(out.split('\n')[2]!) as StormReport;
    console.log('connect storm', report);
    expect(report.failures).toEqual([]);
    expect(report.connected).toBe(CLIENTS);
    // Before the broker: a few ENOENTs each (waits of up to 25, 50, 100, 200… ms).
    // After it: the broker's default burst (400) and rate (200/s) let the rest
    // in, each told when to come back. A storm would be thousands per client.
    expect(report.maxAttempts).toBeLessThanOrEqual(25);
    expect(report.attempts).toBeLessThanOrEqual(CLIENTS * 12);
    // Counted at the socket: every Hello the broker saw came from an attempt the
    // clients counted (those before it was up never reached it).
    const metrics = await adminRequest(socketPath, { verb: AdminVerb.METRICS });
    const seen = hellos(metrics.body);
    const refusedByBroker = Object.entries(report.retries)
      .filter(([why]) => why.startsWith('REFUSED:'))
      .reduce((sum, [, n]) => sum + n, 0);
    expect(seen).toBe(CLIENTS + refusedByBroker);
    expect(seen).toBeLessThanOrEqual(CLIENTS * 6);
    await broker.close({ deadlineMs: 1000 });
    await expect.poll(openFds).toBeLessThanOrEqual(fdsBefore);
  });

  it('with no broker at all, gives up before the deadline with what went wrong, not TIMEOUT', async () => {
    const tmp = tempDir('storm-none');
    cleanups.push(() => tmp.remove());
    const started = performance.now();
    const error = await connectService('echo', {
      version: '1.0.0',
      brokerPath: tmp.path('run', 'broker.sock'),
      timeoutMs: 600,
    }).catch((e: unknown) => e);
    const tookMs = performance.now() - started;
    expect(error).toBeInstanceOf(ConnectServiceError);
    expect(error).toMatchObject({ code: 'CONNECT', errno: 'ENOENT' });
    // Waits of up to 25, 50, 100, 200… ms fit a handful of attempts in 600 ms.
    expect((error as ConnectServiceError).attempts).toBeGreaterThan(2);
    expect(tookMs).toBeLessThan(600);
    // retry: false is one attempt, failing at once.
    const once = await connectService('echo', {
      version: '1.0.0',
      brokerPath: tmp.path('run', 'broker.sock'),
      retry: false,
    }).catch((e: unknown) => e);
    expect(once).toMatchObject({ code: 'CONNECT', errno: 'ENOENT', attempts: 1 });
  });
});
