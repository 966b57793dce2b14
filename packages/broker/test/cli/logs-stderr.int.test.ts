// Regression (issue 16): the broker logged to stdout, as pino JSON whatever
// the terminal, with the daemon's pid in a second `pid` key. Now a real
// `serve` process keeps stdout for results (under --json: one SERVING
// document), logs JSON lines to stderr when stderr is not a terminal — one
// `pid` (the broker's), the daemon's as daemon_pid — pretty lines with
// --log-format pretty, and pretty lines on a real terminal (tmux) by itself.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processesMentioning } from '@handoff/testkit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectService } from '../../src/client/connect-service.js';
import { runBrokerCli } from '../cli-process.js';
import { echoService, tempDir, tsxArgs } from '../harness.js';

const main = join(import.meta.dirname, '../../src/cli/main.ts');
const repo = join(import.meta.dirname, '../../../..');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function setup() {
  const tmp = tempDir('logs-stderr');
  cleanups.push(() => tmp.remove());
  cleanups.unshift(() => {
    for (const pid of processesMentioning(tmp.dir)) process.kill(pid, 'SIGKILL');
  });
  const configFile = tmp.path('services.json');
  const echo = echoService('echo', { env: { LOGS_STDERR_DIR: tmp.dir } });
  writeFileSync(configFile, JSON.stringify({ services: [echo] }));
  const socket = tmp.path('run/broker.sock');
  const argv = [...tsxArgs, main, 'serve', '--config-file', configFile, '--socket', socket];
  argv.push('--state-dir', tmp.path('state'));
  return { tmp, socket, argv };
}

function serve(argv: string[]): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, argv, {
    cwd: repo,
    env: { ...process.env, HANDOFF_BROKER_SOCKET: '', HANDOFF_LOG_FORMAT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  cleanups.unshift(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, out: () => out, err: () => err };
}

/** The exit code, whether the child has exited already or not yet. */
async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const [code] = (await once(child, 'exit')) as [number | null];
  return code;
}

describe('the broker log', () => {
  it('goes to stderr as JSON (not a terminal); stdout has only the --json SERVING document', async () => {
    const { socket, argv } = setup();
    const s = serve([...argv, '--json']);
    await vi.waitFor(() => expect(s.out()).toContain('\n'), { timeout: 30_000, interval: 50 });
    const serving = JSON.parse(s.out()) as Record<string, unknown>;
    expect(serving).toMatchObject({
      schema_version: 1,
      ok: true,
      code: 'SERVING',
      pid: s.child.pid,
    });
    expect(serving.socket_path).toBe(socket);

    const { socket: client } = await connectService('echo', {
      version: '1.0.0',
      brokerPath: socket,
      timeoutMs: 30_000,
    });
    client.destroy();
    await vi.waitFor(() => expect(s.err()).toContain('"msg":"backend ready"'), {
      timeout: 30_000,
      interval: 50,
    });
    const lines = s
      .err()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) {
      // One pid per line, the broker's: a second key would shadow it in any JSON parser.
      expect(line.match(/"pid":/g), line).toHaveLength(1);
      expect(JSON.parse(line).pid).toBe(s.child.pid);
    }
    const ready = JSON.parse(lines.find((l) => l.includes('"backend ready"'))!) as {
      daemon_pid: number;
    };
    expect(typeof ready.daemon_pid).toBe('number');
    expect(ready.daemon_pid).not.toBe(s.child.pid);

    const shutdown = await runBrokerCli(['shutdown', '--socket', socket]);
    expect(shutdown.code).toBe(0);
    const code = await exited(s.child);
    expect(code).toBe(0);
    // Nothing but the one document: no log line ever reached stdout.
    expect(s.out().split('\n').filter(Boolean)).toHaveLength(1);
  }, 90_000);

  it('is pretty with --log-format pretty, and stdout stays empty without --json', async () => {
    const { socket, argv } = setup();
    const s = serve([...argv, '--log-format', 'pretty']);
    await vi.waitFor(
      () => expect(s.err()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} INFO {2}broker listening socket=/m),
      { timeout: 30_000, interval: 50 },
    );
    // Not SIGTERM: the log line comes before serve's signal handlers are in place.
    expect((await runBrokerCli(['shutdown', '--socket', socket])).code).toBe(0);
    const code = await exited(s.child);
    expect(code).toBe(0);
    expect(s.out()).toBe('');
    expect(s.err()).not.toMatch(/^\{/m);
  }, 60_000);

  it('is pretty on a real terminal by itself (auto): serve inside tmux', async () => {
    const { tmp, argv } = setup();
    const session = `handoff-logs-${process.pid}`;
    const quoted = [process.execPath, ...argv].map((a) => `'${a}'`).join(' ');
    execFileSync('tmux', [
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '200',
      '-y',
      '40',
      `cd '${repo}' && HANDOFF_BROKER_SOCKET= HANDOFF_LOG_FORMAT= ${quoted}`,
    ]);
    cleanups.unshift(() => {
      try {
        execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
      } catch {
        // Already gone.
      }
    });
    const pane = () => execFileSync('tmux', ['capture-pane', '-p', '-t', session]).toString();
    await vi.waitFor(
      () => expect(pane()).toMatch(/\d\d:\d\d:\d\d\.\d{3} INFO {2}broker listening/),
      {
        timeout: 30_000,
        interval: 100,
      },
    );
    expect(pane()).not.toMatch(/\{"level":/);
    execFileSync('tmux', ['send-keys', '-t', session, 'C-c']);
    await vi.waitFor(() => expect(processesMentioning(tmp.dir)).toEqual([]), {
      timeout: 20_000,
      interval: 100,
    });
  }, 60_000);
});
