// Upgrades that fail, with real processes: a successor that never becomes
// ready, one that exits at once (a bad command line), one that sends
// garbage on the upgrade channel. Each time `upgrade` exits 1 with the
// reason (one JSON document under --json), the successor is gone, and the
// old broker keeps serving — same pid, same daemon, no fd left behind.
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesMentioning, quietFdCount } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { SUCCESSOR_ENV } from '../src/upgrade/serve-upgrade.js';
import { runBrokerCli } from './cli-process.js';
import { tsxArgs } from './harness.js';
import {
  brokerPid,
  cliJson,
  daemonPids,
  echoOnce,
  main,
  type UpgradeSetup,
  upgradeSetup,
} from './upgrade-harness.js';

const stallFixture = join(import.meta.dirname, 'fixtures/upgrade-stall-successor.ts');

let setup: UpgradeSetup | null = null;
afterEach(() => {
  setup?.cleanup();
  setup = null;
});

/** handoff_total{outcome="accepted"} from the broker's metrics. */
async function handoffsAccepted(socket: string): Promise<number> {
  const run = await runBrokerCli(['metrics', '--socket', socket]);
  const line = run.stdout.split('\n').find((l) => /^handoff_total\{.*outcome="accepted"/.test(l));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

function describePid(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return `${pid}: gone`;
  }
}

/**
 * serve whose successor is `successor` (HANDOFF_UPGRADE_SUCCESSOR); an
 * upgrade must fail with `code` and a message matching `reason`, and
 * leave the broker as it was.
 */
async function failingUpgrade(
  name: string,
  successor: string[],
  code: string,
  reason: RegExp,
  readyTimeoutMs = 3000,
) {
  setup = upgradeSetup(name);
  const { socket, dir } = setup;
  const serve = await setup.serve({ [SUCCESSOR_ENV]: JSON.stringify(successor) });
  const pid = serve.child.pid!;
  await echoOnce(socket, 'warm-up');
  const daemons = await daemonPids(socket);
  const fds = await quietFdCount({ pid });

  const upgrade = await cliJson(socket, ['upgrade', '--ready-timeout', String(readyTimeoutMs)]);
  expect(upgrade.code, JSON.stringify(upgrade.doc)).toBe(1);
  expect(upgrade.doc).toMatchObject({ ok: false, code });
  expect(upgrade.doc.message).toMatch(reason);

  // The successor is gone (killed, or exited by itself, and reaped).
  // (tsx's esbuild service, a helper of the broker run from source, is not ours to count.)
  const left = processesMentioning(dir).filter((p) => !describePid(p).includes('/esbuild'));
  expect(left.sort(), left.map(describePid).join('\n')).toEqual([pid, ...daemons].sort());
  // Still serving, as before.
  expect(await brokerPid(socket)).toBe(pid);
  await echoOnce(socket, 'after');
  expect(await daemonPids(socket)).toEqual(daemons);
  expect(serve.child.exitCode).toBeNull();
  expect(await quietFdCount({ pid })).toBeLessThanOrEqual(fds);
  expect(serve.stderr()).toContain('upgrade failed, still serving');
}

describe('handoff-broker upgrade that fails', () => {
  it('kills a successor that never becomes ready; the old broker keeps serving', async () => {
    expect.hasAssertions();
    await failingUpgrade(
      'hang',
      [process.execPath, '-e', 'setInterval(() => {}, 1000)'],
      'SUCCESSOR_TIMEOUT',
      /not ready within 3000 ms/,
    );
  });

  it('reports a successor that exits at once (a bad command line) with its status', async () => {
    expect.hasAssertions();
    await failingUpgrade(
      'exit',
      [process.execPath, ...tsxArgs, main, 'serve', '--drain', 'soon'],
      'SUCCESSOR_EXITED',
      /exited before it was ready \(status 2\)/,
      20_000,
    );
  });

  it('reports a successor command that cannot be started at all, and starts nothing', async () => {
    expect.hasAssertions();
    await failingUpgrade(
      'enoent',
      ['/nonexistent/handoff-broker-successor', 'serve'],
      'SUCCESSOR_SPAWN_FAILED',
      /cannot start the successor \/nonexistent\/handoff-broker-successor: ENOENT/,
    );
  });

  it('kills a successor that sends garbage on the upgrade channel', async () => {
    expect.hasAssertions();
    await failingUpgrade(
      'garbage',
      [
        process.execPath,
        '-e',
        "require('fs').writeSync(3, '{not json'); setInterval(() => {}, 1000)",
      ],
      'SUCCESSOR_PROTOCOL',
      /garbage: not JSON/,
    );
  });

  it('gives everything back when the successor stalls after taking the state', async () => {
    expect.hasAssertions();
    await failingUpgrade(
      'stall',
      [process.execPath, ...tsxArgs, stallFixture, '--stall'],
      'SUCCESSOR_TIMEOUT',
      /not ready within 8000 ms/,
      8000,
    );
    // The channel is the backend's again: a handoff, not the reconnect route.
    const before = await handoffsAccepted(setup!.socket);
    await echoOnce(setup!.socket, 'handed off');
    expect(await handoffsAccepted(setup!.socket)).toBe(before + 1);
  });

  it('reports a successor that refuses after taking the state, with its reason', async () => {
    expect.hasAssertions();
    await failingUpgrade(
      'refuse',
      [process.execPath, ...tsxArgs, stallFixture, '--refuse'],
      'SUCCESSOR_FAILED',
      /refusing on purpose/,
      20_000,
    );
  });

  it('reports a real serve successor started for another socket: it says why and exits', async () => {
    expect.hasAssertions();
    const elsewhere = join(tmpdir(), `handoff-upgrade-elsewhere-${process.pid}.sock`);
    await failingUpgrade(
      'elsewhere',
      [
        process.execPath,
        ...tsxArgs,
        main,
        'serve',
        '--socket',
        elsewhere,
        '--config-file',
        '/dev/null',
      ],
      'SUCCESSOR_FAILED',
      /the old broker listens at \/tmp\/handoff-upgrade-elsewhere-.*, this one was started for \/tmp\//,
      30_000,
    );
    expect(existsSync(elsewhere)).toBe(false);
  });

  it('under --json, an unreachable broker is one failure document too', async () => {
    expect.hasAssertions();
    setup = upgradeSetup('unreachable');
    const { code, doc } = await cliJson(setup.socket, ['upgrade']);
    expect(code).toBe(1);
    expect(doc).toMatchObject({ ok: false, code: 'CONNECT' });
    expect(doc.message).toMatch(/cannot reach/);
  });
});
