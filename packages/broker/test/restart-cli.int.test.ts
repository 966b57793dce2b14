// `handoff-broker restart` as a user runs it (the real CLI process against a
// real broker and daemons): the JSON and text documents of a success and of
// a failed replacement, NOT_RUNNING, an unknown service, usage errors, an
// unreachable broker, and their exit codes (0, 1, 2).
import { writeFileSync } from 'node:fs';
import { FrameClient } from '@handoff/backend-sdk';
import { describe, expect, it } from 'vitest';
import { connectService } from '../src/client/connect-service.js';
import { liveBrokers, P } from './broker-session.js';
import { runBrokerCli } from './cli-process.js';
import { echoService, str, tempDir, text } from './harness.js';

const { broker, dirs } = liveBrokers();

async function pidServing(brokerPath: string) {
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 30_000,
  });
  const client = new FrameClient(socket);
  const pid = Number(str((await client.request(P, text('x'))).payload).split(':')[0]);
  client.close();
  return pid;
}

describe('handoff-broker restart', () => {
  it('prints old pid → new pid, as JSON and as text (exit 0)', async () => {
    const b = await broker([echoService('echo', { drainMs: 2000 }, ['--pid-prefix'])]);
    const oldPid = await pidServing(b.socketPath);
    const run = await runBrokerCli(['restart', 'echo', '--json', '--socket', b.socketPath]);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ schema_version: 1, ok: true, code: 'RESTARTED' });
    expect(doc.restarted).toHaveLength(1);
    expect(doc.restarted[0]).toMatchObject({
      service: 'echo',
      version: '1.0.0',
      old_pid: oldPid,
      drain_ms: 2000,
    });
    const newPid = doc.restarted[0].new_pid;
    expect(newPid).not.toBe(oldPid);
    expect(await pidServing(b.socketPath)).toBe(newPid);
    const textRun = await runBrokerCli([
      'restart',
      'echo',
      '--version',
      '1.0.0',
      '--drain',
      '500',
      '--socket',
      b.socketPath,
    ]);
    expect(textRun.code).toBe(0);
    expect(textRun.stdout).toMatch(new RegExp(`^echo@1\\.0\\.0: pid ${newPid} → \\d+ in \\d+ ms`));
  });

  it('exits 1 with the reason and the replacement’s output when it fails; the old daemon serves on', async () => {
    const dir = tempDir('restart-cli');
    dirs.push(dir);
    const failing = dir.path('fail');
    const b = await broker([echoService('echo', {}, ['--pid-prefix', '--fail-start-if', failing])]);
    const oldPid = await pidServing(b.socketPath);
    writeFileSync(failing, '');
    const run = await runBrokerCli(['restart', 'echo', '--json', '--socket', b.socketPath]);
    expect(run.code).toBe(1);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({
      ok: false,
      code: 'REPLACEMENT_EXITED',
      service: 'echo@1.0.0',
      restarted: [],
    });
    expect(doc.message).toContain('the old daemon keeps serving');
    expect(doc.output_tail).toContain('refusing to start');
    const textRun = await runBrokerCli(['restart', 'echo', '--socket', b.socketPath]);
    expect(textRun.code).toBe(1);
    expect(textRun.stdout).toBe('');
    expect(textRun.stderr).toContain('restart failed (REPLACEMENT_EXITED)');
    expect(textRun.stderr).toContain('refusing to start');
    expect(await pidServing(b.socketPath)).toBe(oldPid);
  });

  it('refuses NOT_RUNNING (1), an unknown service (2), bad usage (2), and reports an unreachable broker (1)', async () => {
    const b = await broker([echoService('echo')]);
    const idle = await runBrokerCli(['restart', 'echo', '--json', '--socket', b.socketPath]);
    expect(idle.code).toBe(1);
    expect(JSON.parse(idle.stdout)).toMatchObject({ ok: false, code: 'NOT_RUNNING' });
    const unknown = await runBrokerCli(['restart', 'nope', '--json', '--socket', b.socketPath]);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.stdout).error.code).toBe('SERVICE_UNKNOWN');
    const missing = await runBrokerCli(['restart', '--socket', b.socketPath]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('SERVICE');
    const badDrain = await runBrokerCli(['restart', 'echo', '--drain', 'soon']);
    expect(badDrain.code).toBe(2);
    // Checked before any round trip: no broker is asked.
    const badName = await runBrokerCli(['restart', 'Bad_Name', '--socket', '/nonexistent.sock']);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/must match \[a-z0-9-\]/);
    const badVersion = await runBrokerCli(['restart', 'echo', '--version', '1.x']);
    expect(badVersion.code).toBe(2);
    const dir = tempDir('restart-cli');
    dirs.push(dir);
    const away = await runBrokerCli(['restart', 'echo', '--json', '--socket', dir.path('no.sock')]);
    expect(away.code).toBe(1);
    expect(JSON.parse(away.stdout)).toMatchObject({ ok: false, code: 'CONNECT' });
  });
});
