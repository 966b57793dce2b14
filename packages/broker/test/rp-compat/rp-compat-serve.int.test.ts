// `handoff-broker serve --rp-compat` as a real process: it serves RP
// clients at their address, refuses (exit 1, the address named) when
// something already serves there, and across `handoff-broker upgrade` the
// successor takes the RP address over with client loops running there: no
// connect fails, the old broker exits, and at shutdown the file is removed.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { FdServer } from '@handoff/fdpass';
import { afterEach, describe, expect, it } from 'vitest';
import { rpSharedBrokerPath } from '../../src/rp-compat/address.js';
import { runBrokerCli } from '../cli-process.js';
import {
  brokerPid,
  clientLoops,
  cliJson,
  echoOnce,
  gone,
  repo,
  type UpgradeSetup,
  upgradeSetup,
} from '../upgrade-harness.js';
import { rpSetup } from './rp-harness.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** serve with --rp-compat from `up`'s command line, RP's variables from `env`; resolves once listening. */
async function serveRp(up: UpgradeSetup, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...up.serveArgs, '--rp-compat'], {
    cwd: repo,
    env: { ...process.env, HANDOFF_BROKER_SOCKET: '', HANDOFF_TEST_DIR: up.dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = once(child, 'exit');
  await new Promise<void>((resolve, reject) => {
    // Logs may be on either stream; the listening line says it is serving.
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('"broker listening"') || output.includes('broker listening')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(([code]) => reject(new Error(`serve exited with ${code}: ${output}`)));
  });
  cleanups.push(() => {
    child.stdout?.destroy();
    child.stderr?.destroy();
  });
  return child;
}

describe('handoff-broker serve --rp-compat', () => {
  it('hands the RP address to the successor at an upgrade: 0 failed connects there, old broker gone', async () => {
    expect.hasAssertions();
    const up = upgradeSetup('rp');
    cleanups.push(up.cleanup);
    const rp = rpSetup('upgrade');
    cleanups.push(rp.tmp.remove);
    const rpPath = await rpSharedBrokerPath({ env: rp.env });
    const first = await serveRp(up, rp.env);
    await echoOnce(rpPath, 'warm-up');
    const fileBefore = lstatSync(rpPath).ino;

    const loops = clientLoops(rpPath, 4);
    const okBefore = loops.ok();
    await expect.poll(() => loops.ok(), { timeout: 20_000 }).toBeGreaterThan(okBefore + 8);
    const { code, doc } = await cliJson(up.socket, ['upgrade']);
    expect(code, JSON.stringify(doc)).toBe(0);
    const newPid = doc.new_pid as number;
    expect(await gone(first.pid!), 'the old broker exits').toBe(true);
    const okAfter = loops.ok();
    await expect.poll(() => loops.ok(), { timeout: 20_000 }).toBeGreaterThan(okAfter + 8);
    await loops.stop();
    expect(loops.failures()).toEqual([]);

    expect(lstatSync(rpPath).ino, 'the successor bound its own RP socket').not.toBe(fileBefore);
    expect(await brokerPid(up.socket)).toBe(newPid);
    await echoOnce(rpPath, 'after');

    process.kill(newPid, 'SIGTERM');
    expect(await gone(newPid)).toBe(true);
    expect(existsSync(rpPath), 'the RP socket file goes with the last broker').toBe(false);
  });

  it('exits 1 naming the RP address when something already serves there', async () => {
    const up = upgradeSetup('rp-busy');
    cleanups.push(up.cleanup);
    const rp = rpSetup('busy');
    cleanups.push(rp.tmp.remove);
    const rpPath = await rpSharedBrokerPath({ env: rp.env });
    mkdirSync(dirname(rpPath), { recursive: true, mode: 0o700 });
    const other = await FdServer.listen(rpPath, { kind: 'stream' });
    cleanups.push(() => void other.close());
    const run = await runBrokerCli(
      [...up.serveArgs.slice(up.serveArgs.indexOf('serve')), '--rp-compat'],
      {
        ...rp.env,
        HANDOFF_TEST_DIR: up.dir,
      },
    );
    expect(run.code, run.stderr).toBe(1);
    expect(run.stderr).toContain(rpPath);
    expect(run.stderr).toContain('already served');
  });

  it('lists --rp-compat in serve --help', async () => {
    const run = await runBrokerCli(['serve', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('--rp-compat');
    expect(run.stdout).toContain('RUNNING_PROCESS_SERVICE_DEF_DIR');
  });
});
