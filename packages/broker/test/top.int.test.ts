// `handoff-broker top --once` as a user runs it: the real CLI process
// against a real broker with real daemons and real traffic — the JSON and
// text snapshots (pids, RSS from /proc, sessions/s, p50/p99, refusals by
// code, spawn failures), its failures and usage errors; and the real
// broker's scrape against the pinned metric names.
import { dirname } from 'node:path';
import { AdminVerb } from '@handoff/protocol';
import { openFds, processesMentioning } from '@handoff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminRequest } from '../src/client/admin-client.js';
import { connectService } from '../src/client/connect-service.js';
import { parseOpenMetrics } from '../src/openmetrics-parse.js';
import { helloBytes, liveBrokers, rawHello } from './broker-session.js';
import { runBrokerCli } from './cli-process.js';
import { echoService, tempDir } from './harness.js';
import { BROKER_METRICS_GOLDEN, describeFamilies } from './metrics-golden.js';

const live = liveBrokers();
const { dirs } = live;
const brokerDirs: string[] = [];
let fdsBefore = 0;
beforeAll(() => {
  fdsBefore = openFds();
});
// After every test's brokers closed (afterEach): no fd of ours and no daemon left.
afterAll(() => {
  expect(openFds()).toBeLessThanOrEqual(fdsBefore);
  for (const dir of brokerDirs) expect(processesMentioning(dir)).toEqual([]);
});

async function broker(services: unknown[]) {
  const b = await live.broker(services);
  brokerDirs.push(dirname(b.socketPath));
  return b;
}

async function session(brokerPath: string): Promise<void> {
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 30_000,
  });
  socket.destroy();
}

describe('handoff-broker top --once', () => {
  it('--json: daemons with pid, uptime and RSS; sessions/s under traffic; p50/p99; refusals by code; spawn failures', async () => {
    const b = await broker([
      echoService('echo'),
      echoService('broken', {}, ['--fail-start']),
      echoService('idle'),
    ]);
    await session(b.socketPath);
    const unknown = await rawHello(b.socketPath, helloBytes({ serviceName: 'nosuch' }));
    expect(unknown?.result.case).toBe('refused');
    const failed = await rawHello(b.socketPath, helloBytes({ serviceName: 'broken' }));
    expect(failed?.result.case).toBe('refused');
    // Sessions all through top's interval, so its second sample sees new ones.
    const run = runBrokerCli([
      'top',
      '--once',
      '--json',
      '--interval',
      '700',
      '--socket',
      b.socketPath,
    ]);
    let done = false;
    void run.finally(() => {
      done = true;
    });
    let sessions = 0;
    while (!done) {
      await session(b.socketPath);
      sessions++;
    }
    const result = await run;
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(sessions).toBeGreaterThan(1);
    const doc = JSON.parse(result.stdout);
    expect(doc).toMatchObject({ schema_version: 1, ok: true, code: 'OK', sort: 'service' });
    expect(doc.interval_seconds).toBeGreaterThan(0.6);
    const byName = new Map(doc.services.map((s: { service: string }) => [s.service, s]));
    expect([...byName.keys()]).toEqual(['broken', 'echo', 'idle', 'nosuch']);
    const [daemon] = b.registry.list().filter((i) => i.definition.name === 'echo');
    const echo = byName.get('echo') as {
      defined: boolean;
      daemons: { pid: number; state: string; rss_bytes: number; uptime_seconds: number }[];
      sessions_per_second: number;
      latency_window: string;
      hello_p50_seconds: number;
      hello_p99_seconds: number;
    };
    expect(echo.defined).toBe(true);
    expect(echo.daemons).toHaveLength(1);
    expect(echo.daemons[0]!.pid).toBe(daemon!.pid);
    expect(echo.daemons[0]!.state).toBe('ready');
    expect(echo.daemons[0]!.rss_bytes).toBeGreaterThan(1024 * 1024);
    expect(echo.daemons[0]!.uptime_seconds).toBeGreaterThanOrEqual(0);
    expect(echo.sessions_per_second).toBeGreaterThan(0);
    expect(echo.latency_window).toBe('interval');
    expect(echo.hello_p50_seconds).toBeGreaterThan(0);
    expect(echo.hello_p99_seconds).toBeGreaterThanOrEqual(echo.hello_p50_seconds);
    expect(byName.get('nosuch')).toMatchObject({
      defined: false,
      daemons: [],
      refusals: { SERVICE_UNKNOWN: 1 },
      refused_total: 1,
    });
    expect(byName.get('broken')).toMatchObject({
      defined: true,
      refusals: { BACKEND_SPAWN_FAILED: 1 },
    });
    expect(
      (byName.get('broken') as { spawn_failures: number }).spawn_failures,
    ).toBeGreaterThanOrEqual(1);
    expect(byName.get('idle')).toMatchObject({ daemons: [], hello_p50_seconds: null });
  });

  it('text, with one sample (--interval 0) and a sort; a broker it cannot reach (1); usage errors (2)', async () => {
    const b = await broker([echoService('echo')]);
    await session(b.socketPath);
    const [daemon] = b.registry.list();
    // The one Hello spawned the daemon, so it took up to seconds; '*': no Hello in the interval.
    const duration = '[\\d.]+(us|ms|s)\\*';
    const text = await runBrokerCli([
      'top',
      '--interval',
      '0',
      '--sort',
      'p99',
      '--socket',
      b.socketPath,
    ]);
    expect(text).toMatchObject({ code: 0, stderr: '' });
    const lines = text.stdout.split('\n');
    expect(lines[0]).toMatch(
      /^handoff-broker top {2}\S+Z {2}1 service, 1 daemon {2}\(first sample, sort: p99\)$/,
    );
    expect(lines[2]).toMatch(
      /^SERVICE +DAEMONS +PID +UPTIME +RSS +SESS\/S +P50 +P99 +REFUSED +SPAWN_FAIL +REFUSALS BY CODE$/,
    );
    expect(lines[3]).toMatch(
      new RegExp(`^echo +1 +${daemon!.pid} +\\d+s +[\\d.]+M +- +${duration} +${duration} +0 +0$`),
    );

    const dir = tempDir('top-unreachable');
    dirs.push(dir);
    const nowhere = dir.path('nobody.sock');
    const json = await runBrokerCli(['top', '--json', '--socket', nowhere]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(JSON.parse(json.stdout)).toMatchObject({ socket_path: nowhere });
    expect(JSON.parse(json.stdout).message).toContain(nowhere);
    expect(json.stderr).toContain('cannot reach the broker');
    const plain = await runBrokerCli(['top', '--once', '--socket', nowhere]);
    expect(plain).toMatchObject({ code: 1, stdout: '' });
    expect(plain.stderr).toContain('cannot reach the broker');

    for (const args of [['--sort', 'cpu'], ['--interval', 'soon'], ['--bogus'], ['extra']]) {
      const usage = await runBrokerCli(['top', '--once', ...args, '--socket', b.socketPath]);
      expect(usage.code, args.join(' ')).toBe(2);
    }
    const help = await runBrokerCli(['top', '--help']);
    expect(help.code).toBe(0);
    for (const option of ['--once', '--json', '--interval', '--sort', '--socket', '--timeout'])
      expect(help.stdout).toContain(option);
  });

  it('the real broker’s scrape has exactly the pinned families, in order', async () => {
    const b = await broker([echoService('echo')]);
    await session(b.socketPath);
    const reply = await adminRequest(b.socketPath, { verb: AdminVerb.METRICS });
    const families = [...parseOpenMetrics(reply.body).families.values()];
    expect(describeFamilies(families, false)).toEqual(
      BROKER_METRICS_GOLDEN.map((line) => line.split(' ').slice(0, 2).join(' ')),
    );
    // Where a family has samples, their names and labels are the pinned ones.
    const withSamples = describeFamilies(families.filter((f) => f.samples.length > 0));
    for (const line of withSamples) expect(BROKER_METRICS_GOLDEN).toContain(line);
  });
});
