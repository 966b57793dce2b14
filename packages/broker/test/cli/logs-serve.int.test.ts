// `serve --state-dir` and `logs` against a real broker process: the
// daemon's output lands under the state dir, `status --json` names it, and
// `logs` without --state-dir asks the running broker where to look.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { processesMentioning } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { connectService } from '../../src/client/connect-service.js';
import type { LogRecord } from '../../src/logs/record.js';
import { P } from '../broker-session.js';
import { runBrokerCli } from '../cli-process.js';
import { echoService, fixtures, str, tempDir, text, tsxArgs } from '../harness.js';

const main = join(import.meta.dirname, '../../src/cli/main.ts');
const repo = join(import.meta.dirname, '../../../..');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

describe('serve --state-dir, then logs', () => {
  it("writes the daemon's output under the state dir, which status and logs find", async () => {
    const tmp = tempDir('logs-serve');
    cleanups.push(() => tmp.remove());
    cleanups.unshift(() => {
      for (const pid of processesMentioning(tmp.dir)) process.kill(pid, 'SIGKILL');
    });
    const configFile = tmp.path('services.json');
    const chatty = {
      ...echoService('chatty'),
      args: [...tsxArgs, join(fixtures, 'log-chatty-daemon.ts')],
      // Mentions the temp dir, so the cleanup above finds the daemon too.
      env: { LOG_TEST_DIR: tmp.dir },
    };
    writeFileSync(configFile, JSON.stringify({ services: [chatty] }));
    const socket = tmp.path('run/broker.sock');
    const stateDir = tmp.path('state');
    const serve = spawn(
      process.execPath,
      [
        ...tsxArgs,
        main,
        'serve',
        '--config-file',
        configFile,
        '--socket',
        socket,
        '--state-dir',
        stateDir,
      ],
      {
        cwd: repo,
        env: { ...process.env, HANDOFF_BROKER_SOCKET: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    cleanups.push(() => {
      if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
    });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      // The broker's log is on stderr.
      serve.stderr.on('data', (d) => {
        out += d;
        if (out.includes('"broker listening"')) resolve();
      });
      serve.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
    });
    serve.stdout.resume();
    const { socket: conn } = await connectService('chatty', {
      version: '1.0.0',
      brokerPath: socket,
      timeoutMs: 30_000,
    });
    const client = new FrameClient(conn);
    expect(str((await client.request(P, text('hi'))).payload)).toBe('hi');
    client.close();

    const status = await runBrokerCli(['status', '--json', '--socket', socket]);
    expect(JSON.parse(status.stdout)).toMatchObject({ state_dir: stateDir, spawn_failures: [] });
    // No --state-dir: the running broker says where.
    let lines: LogRecord[] = [];
    const deadline = Date.now() + 20_000;
    while (lines.length < 5) {
      const run = await runBrokerCli(['logs', 'chatty', '-n', '5', '--json', '--socket', socket]);
      if (run.code === 0) lines = (JSON.parse(run.stdout) as { lines: LogRecord[] }).lines;
      if (Date.now() > deadline) throw new Error(`no logs: ${run.stdout}${run.stderr}`);
    }
    expect(lines.every((l) => l.line.startsWith('chatty'))).toBe(true);
    const text5 = await runBrokerCli(['logs', 'chatty', '-n', '2', '--socket', socket]);
    expect(text5.code).toBe(0);
    expect(text5.stdout).toMatch(
      /^\S+Z \d+ (stdout|stderr) chatty.*\n\S+Z \d+ (stdout|stderr) chatty.*\n$/,
    );
    serve.kill('SIGTERM');
    const [code] = await once(serve, 'exit');
    expect(code).toBe(0);
  });
});
