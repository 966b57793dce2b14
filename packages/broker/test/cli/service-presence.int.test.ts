// Regression (issue 16): `probe demo-kv-nope` and `list nosuch` said "no
// running instance" like a defined service that had not started yet. Now an
// unknown service (SERVICE_UNKNOWN), a defined one that is not running
// (NOT_RUNNING: it starts on demand) and a running one each read differently,
// in text and JSON, from list, probe and status — against a real broker.
import { openFds, processesMentioning, TestBroker } from '@handoff/testkit';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { connectService } from '../../src/client/connect-service.js';
import { echoService, tempDir } from '../harness.js';

const tmp = tempDir('cli-presence');
let broker: TestBroker;
let fdsBefore: number;

beforeAll(async () => {
  fdsBefore = openFds();
  broker = await TestBroker.start({
    prefix: 'presence',
    services: [echoService('echo', { env: { PRESENCE_DIR: tmp.dir } })],
    logger: pino({ level: 'silent' }),
  });
});
afterAll(async () => {
  await broker.close();
  expect(processesMentioning(tmp.dir)).toEqual([]);
  tmp.remove();
  expect(openFds()).toBeLessThanOrEqual(fdsBefore);
});

async function cli(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await runCli([...argv, '--socket', broker.socketPath], {
    stdout: (d) => {
      stdout += String(d);
    },
    stderr: (t) => {
      stderr += t;
    },
    env: {},
  });
  return { code, stdout, stderr, json: () => JSON.parse(stdout) as Record<string, unknown> };
}

describe('unknown ≠ defined but not running ≠ running', () => {
  it('an unknown service: SERVICE_UNKNOWN, exit 1, from list and probe', async () => {
    const list = await cli('list', 'nosuch');
    expect(list.code).toBe(1);
    expect(list.stdout).toMatch(/^no service named nosuch is defined/);
    const listJson = await cli('list', 'nosuch', '--json');
    expect(listJson.code).toBe(1);
    expect(listJson.json()).toMatchObject({
      ok: false,
      code: 'SERVICE_UNKNOWN',
      defined: false,
      instances: [],
    });
    const probe = await cli('probe', 'demo-kv-nope');
    expect(probe.code).toBe(1);
    expect(probe.stderr).toMatch(/no service named demo-kv-nope is defined/);
    const probeJson = await cli('probe', 'demo-kv-nope', '--json');
    expect(probeJson.json()).toMatchObject({ ok: false, code: 'SERVICE_UNKNOWN' });
  });

  it('a defined service not started yet: NOT_RUNNING, "starts on demand"; list exit 0, probe exit 1', async () => {
    const list = await cli('list', 'echo');
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(
      'echo is defined but not running; it starts on demand on the first connect',
    );
    const listJson = await cli('list', 'echo', '--json');
    expect(listJson.code).toBe(0);
    expect(listJson.json()).toMatchObject({
      ok: true,
      code: 'NOT_RUNNING',
      defined: true,
      instances: [],
    });
    const probe = await cli('probe', 'echo', '--json');
    expect(probe.code).toBe(1);
    expect(probe.json()).toMatchObject({ ok: false, code: 'NOT_RUNNING' });
    expect(probe.json().message).toMatch(/starts on demand on the first connect/);
    const status = await cli('status', '--json');
    expect(status.json().service_states).toEqual([
      { service: 'echo', defined: true, running: 0, state: 'not_running' },
    ]);
    expect((await cli('status')).stdout).toMatch(
      /service states: +echo not running \(starts on demand on the first connect\)/,
    );
  });

  it('once running, list shows the daemon, probe passes and status says running', async () => {
    const { socket } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: broker.socketPath,
      timeoutMs: 30_000,
    });
    socket.destroy();
    const list = await cli('list', 'echo', '--json');
    expect(list.code).toBe(0);
    const body = list.json();
    expect(body.ok).toBe(true);
    expect(body.code).toBeUndefined();
    expect((body.instances as unknown[]).length).toBe(1);
    expect((await cli('probe', 'echo')).code).toBe(0);
    expect((await cli('status', '--json')).json().service_states).toEqual([
      { service: 'echo', defined: true, running: 1, state: 'running' },
    ]);
  }, 60_000);
});
