// `handoff-broker install --systemd` as a real process: it writes both units
// into a temp --dir, refuses to replace different ones without --force,
// says what it did in JSON, and is a usage error without --systemd.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVICE_UNIT, SOCKET_UNIT } from '../src/systemd/units.js';
import { tempDir } from './admin-harness.js';
import { type CliRun, runBrokerCli } from './cli-process.js';

const tmp = tempDir('cli-install');
afterAll(() => tmp.remove());

/** The CLI, never writing to the real ~/.local/state or ~/.config. */
const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> =>
  runBrokerCli(args, {
    XDG_STATE_HOME: tmp.path('state'),
    HANDOFF_CONFIG_DIR: tmp.path('config', 'services'),
    ...env,
  });

const read = (dir: string, name: string) => readFileSync(join(dir, name), 'utf8');

describe('install --systemd', () => {
  const dir = tmp.path('units with space');

  it('writes both units, mode 0644, and prints the next steps', async () => {
    const run = await cli(['install', '--systemd', '--dir', dir, '--drain', '7000']);
    expect(run.code, run.stderr).toBe(0);
    for (const name of [SOCKET_UNIT, SERVICE_UNIT]) {
      expect(statSync(join(dir, name)).mode & 0o777).toBe(0o644);
      expect(run.stdout).toContain(join(dir, name));
    }
    expect(read(dir, SOCKET_UNIT)).toContain('ListenStream=%t/handoff/broker.sock\n');
    const service = read(dir, SERVICE_UNIT);
    expect(service).toContain(' serve --socket %t/handoff/broker.sock --drain 7000\n');
    expect(service).toContain('TimeoutStopSec=22s\n');
    expect(run.stdout).toContain(
      'systemctl --user daemon-reload && systemctl --user enable --now handoff-broker.socket',
    );
    // The definitions directory the unit's `serve` reads exists (serve refuses a missing one).
    expect(statSync(tmp.path('config', 'services')).mode & 0o777).toBe(0o700);
  });

  it('leaves different files alone without --force (exit 1), and replaces them with it', async () => {
    const before = read(dir, SERVICE_UNIT);
    const socketBefore = read(dir, SOCKET_UNIT);
    const refused = await cli(['install', '--systemd', '--dir', dir, '--drain', '9000']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/different contents; pass --force/);
    expect(read(dir, SERVICE_UNIT)).toBe(before);
    expect(read(dir, SOCKET_UNIT)).toBe(socketBefore);

    const forced = await cli(['install', '--systemd', '--dir', dir, '--drain', '9000', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(read(dir, SERVICE_UNIT)).toContain(' --drain 9000\n');
    expect(read(dir, SOCKET_UNIT)).toBe(socketBefore);
  });

  it('rewrites nothing when the files are the same, and also refuses a hand-edited one', async () => {
    const same = await cli(['install', '--systemd', '--dir', dir, '--drain', '9000']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/^unchanged /m);
    writeFileSync(join(dir, SOCKET_UNIT), '# mine\n');
    const refused = await cli(['install', '--systemd', '--dir', dir, '--drain', '9000']);
    expect(refused.code).toBe(1);
    expect(read(dir, SOCKET_UNIT)).toBe('# mine\n');
  });

  it('answers --json with one object naming the files and the next steps', async () => {
    const jsonDir = tmp.path('json');
    const socket = tmp.path('run dir', 'broker.sock');
    const run = await cli(['install', '--systemd', '--json', '--dir', jsonDir, '--socket', socket]);
    expect(run.code, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout) as {
      ok: boolean;
      files: { path: string; status: string }[];
      next: string[];
    };
    expect(answer).toMatchObject({ schema_version: 1, ok: true });
    expect(answer.files).toEqual([
      { path: join(jsonDir, SOCKET_UNIT), status: 'written' },
      { path: join(jsonDir, SERVICE_UNIT), status: 'written' },
    ]);
    expect(answer.next).toEqual([
      'systemctl --user daemon-reload',
      'systemctl --user enable --now handoff-broker.socket',
    ]);
    expect(read(jsonDir, SOCKET_UNIT)).toContain(`ListenStream=${socket}\n`);
    expect(read(jsonDir, SERVICE_UNIT)).toContain(` serve --socket "${socket}" `);
  });

  it('is a usage error without --systemd, naming the flag', async () => {
    const run = await cli(['install', '--dir', tmp.path('none')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('--systemd is required');
    expect(run.stderr).toContain('Usage: handoff-broker install --systemd');
    expect(run.stdout).toBe('');
  });
});
