// Crash reports from real processes: an SDK daemon that throws uncaught
// (spawned by a real broker, and on its own), one whose rejection goes
// unhandled, and a `serve` broker made to throw by its test-only hook —
// each leaves a report with its stack, versions and (the broker) its last
// journal events, exits non-zero as before, and `doctor` lists it.
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CrashReport, readCrashReports } from '@handoff/backend-sdk';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ConnectServiceError, connectService } from '../src/client/connect-service.js';
import { liveBrokers } from './broker-session.js';
import { runBrokerCli } from './cli-process.js';
import { fixtures, tempDir, tsxArgs } from './harness.js';

const { broker } = liveBrokers();
const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});
function newDir(): ReturnType<typeof tempDir> {
  const d = tempDir('crash');
  dirs.push(d);
  return d;
}

const crashDaemon = join(fixtures, 'crash-daemon.ts');

function runNode(args: string[], env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = execFile(process.execPath, args, { env, timeout: 30_000 }, (_e, _out, stderr) =>
      resolve({ code: child.exitCode, stderr }),
    );
  });
}

function onlyReport(stateDir: string): CrashReport {
  const reports = readCrashReports(stateDir);
  expect(reports).toHaveLength(1);
  return reports[0]!.report;
}

describe('an SDK daemon that crashes', () => {
  it('spawned by a broker: writes its report under the broker’s state dir, and fails its spawn', async () => {
    const state = newDir();
    const b = await broker(
      [
        {
          name: 'crashy',
          version: '1.0.0',
          command: process.execPath,
          args: [...tsxArgs, crashDaemon],
          readyTimeoutMs: 30_000,
        },
      ],
      { stateDir: state.dir, logger: pino({ level: 'silent' }) },
    );
    const failure = await connectService('crashy', {
      version: '1.0.0',
      brokerPath: b.socketPath,
      timeoutMs: 30_000,
    }).catch((e: ConnectServiceError) => e);
    expect(failure).toBeInstanceOf(ConnectServiceError);
    // The exit status is Node's for an uncaught exception, as before.
    expect((failure as Error).message).toMatch(/exited before it was ready \(status 1\)/);
    const report = onlyReport(state.dir);
    expect(report).toMatchObject({
      schema_version: 1,
      program: 'crashy',
      origin: 'uncaughtException',
      error: { name: 'Error', message: 'crash-daemon: thrown on purpose' },
      versions: {
        node: process.versions.node,
        package: { name: '@handoff/backend-sdk', version: expect.any(String) },
        os: { platform: 'linux', release: expect.any(String), arch: process.arch },
      },
    });
    expect(report.error.stack).toContain('crash-daemon.ts');
    expect(report.argv.at(-1)).toBe(crashDaemon);
    const [name] = readdirSync(join(state.dir, 'crash'));
    expect(name).toBe(`crashy-${report.pid}-${report.time.replace(/[-:.]/g, '')}.json`);
  });

  it('on its own: an unhandled rejection, under $XDG_STATE_HOME/handoff without a broker', async () => {
    const xdg = newDir();
    const { HANDOFF_STATE_DIR: _drop, ...env } = process.env;
    const run = await runNode([...tsxArgs, crashDaemon, '--reject'], {
      ...env,
      XDG_STATE_HOME: xdg.dir,
    });
    expect(run.code).toBe(1);
    // Node still prints what it printed before.
    expect(run.stderr).toContain('crash-daemon: rejected on purpose');
    const report = onlyReport(join(xdg.dir, 'handoff'));
    expect(report).toMatchObject({
      program: 'crash-daemon',
      origin: 'unhandledRejection',
      error: { message: 'crash-daemon: rejected on purpose' },
    });
  });
});

describe('a broker that crashes', () => {
  it('serve writes a report with its last journal events, exits 1, and doctor lists it', async () => {
    const state = newDir();
    const config = state.path('services.json');
    writeFileSync(
      config,
      JSON.stringify({ services: [{ name: 'idle', version: '1.0.0', command: '/bin/true' }] }),
    );
    const socket = state.path('run', 'broker.sock');
    const run = await runBrokerCli(
      ['serve', '--socket', socket, '--state-dir', state.dir, '--config-file', config],
      { HANDOFF_TEST_CRASH: 'uncaught', HANDOFF_LOG_LEVEL: 'warn' },
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('test crash (HANDOFF_TEST_CRASH=uncaught)');
    const report = onlyReport(state.dir);
    expect(report).toMatchObject({
      program: 'handoff-broker',
      origin: 'uncaughtException',
      error: { message: 'test crash (HANDOFF_TEST_CRASH=uncaught)' },
      versions: { package: { name: '@handoff/broker' } },
    });
    const events = report.events as { kind: string; code?: string }[];
    expect(events.map((e) => e.kind)).toEqual(['config_reload', 'broker_started']);
    // The journal's file has them too (the report is not the only witness).
    expect(readFileSync(state.path('events.jsonl'), 'utf8')).toContain('"broker_started"');

    const doctor = await runBrokerCli([
      'doctor',
      '--json',
      '--socket',
      socket,
      '--state-dir',
      state.dir,
    ]);
    const checks = (
      JSON.parse(doctor.stdout) as { checks: { name: string; verdict: string; detail: string }[] }
    ).checks;
    expect(checks.filter((c) => c.name === 'crash reports')).toEqual([
      {
        name: 'crash reports',
        verdict: 'WARN',
        detail: expect.stringMatching(
          new RegExp(
            `^handoff-broker pid ${report.pid} crashed at ${report.time.replace(/\./g, '\\.')}: test crash \\(HANDOFF_TEST_CRASH=uncaught\\) \\(${state.dir}/crash/handoff-broker-${report.pid}-.*\\.json\\)$`,
          ),
        ),
      },
    ]);
    const text = await runBrokerCli(['doctor', '--socket', socket, '--state-dir', state.dir]);
    expect(text.stdout).toMatch(/WARN +crash reports +handoff-broker pid \d+ crashed at/);
  });

  it('doctor says PASS when there are none, and skips garbled files', async () => {
    const state = newDir();
    mkdirSync(state.path('crash'));
    writeFileSync(state.path('crash', 'garbage.json'), '{"schema_version":1');
    writeFileSync(state.path('crash', 'other.json'), '{"schema_version":1,"t":"x"}');
    const doctor = await runBrokerCli([
      'doctor',
      '--json',
      '--socket',
      state.path('no.sock'),
      '--state-dir',
      state.dir,
    ]);
    const checks = (
      JSON.parse(doctor.stdout) as { checks: { name: string; verdict: string; detail: string }[] }
    ).checks;
    expect(checks.filter((c) => c.name === 'crash reports')).toEqual([
      {
        name: 'crash reports',
        verdict: 'PASS',
        detail: `none in the last 7 days (${state.dir}/crash)`,
      },
    ]);
  });
});
