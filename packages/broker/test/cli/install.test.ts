import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { userStateDir } from '../../src/cli/install.js';
import { runCli } from '../../src/cli/run.js';
import { defaultUserUnitDir } from '../../src/paths.js';
import { tempDir } from '../admin-harness.js';

const tmp = tempDir('install');
afterAll(() => tmp.remove());

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    // Never the real ~/.local/state or ~/.config.
    env: {
      XDG_STATE_HOME: tmp.path('state'),
      HANDOFF_CONFIG_DIR: tmp.path('config', 'services'),
      ...env,
    },
  });
  return { code, stdout, stderr };
}

describe('defaultUserUnitDir', () => {
  it('is $XDG_CONFIG_HOME/systemd/user when absolute, else under the home directory', () => {
    expect(defaultUserUnitDir({ XDG_CONFIG_HOME: '/cfg' }, '/home/a')).toBe('/cfg/systemd/user');
    expect(defaultUserUnitDir({ XDG_CONFIG_HOME: 'relative' }, '/home/a')).toBe(
      '/home/a/.config/systemd/user',
    );
    expect(defaultUserUnitDir({}, '/home/a')).toBe('/home/a/.config/systemd/user');
  });
});

describe('userStateDir', () => {
  it('is $XDG_STATE_HOME/handoff when absolute, else the unit default under the home directory', () => {
    expect(userStateDir({ XDG_STATE_HOME: '/st' }, '/home/a')).toEqual({
      unit: '/st/handoff',
      path: '/st/handoff',
    });
    expect(userStateDir({ XDG_STATE_HOME: 'rel' }, '/home/a')).toEqual({
      unit: undefined,
      path: '/home/a/.local/state/handoff',
    });
  });
});

describe('install', () => {
  it('writes into $XDG_CONFIG_HOME/systemd/user and follows $HANDOFF_BROKER_SOCKET', async () => {
    const config = tmp.path('config');
    const { code, stderr } = await run(['install', '--systemd'], {
      XDG_CONFIG_HOME: config,
      HANDOFF_BROKER_SOCKET: '/run/user/1000/elsewhere/broker.sock',
    });
    expect(code, stderr).toBe(0);
    const dir = join(config, 'systemd', 'user');
    expect(readdirSync(dir).sort()).toEqual(['handoff-broker.service', 'handoff-broker.socket']);
    expect(readFileSync(join(dir, 'handoff-broker.socket'), 'utf8')).toContain(
      'ListenStream=/run/user/1000/elsewhere/broker.sock\n',
    );
    const state = tmp.path('state', 'handoff');
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(dir, 'handoff-broker.service'), 'utf8')).toContain(
      `ReadWritePaths=/run/user/1000/elsewhere -%t/handoff -${state}\n`,
    );
  });

  it('rejects a bad --drain as usage, before writing anything', async () => {
    const dir = tmp.path('bad-drain');
    const { code, stderr } = await run(['install', '--systemd', '--dir', dir, '--drain', '5s']);
    expect(code).toBe(2);
    expect(stderr).toContain('--drain takes a non-negative integer');
    expect(() => readdirSync(dir)).toThrow(/ENOENT/);
  });

  it('reports a refusal as JSON too with --json', async () => {
    const dir = tmp.path('json-refusal');
    expect((await run(['install', '--systemd', '--dir', dir])).code).toBe(0);
    const { code, stdout } = await run([
      'install',
      '--systemd',
      '--dir',
      dir,
      '--drain',
      '1',
      '--json',
    ]);
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toMatchObject({ schema_version: 1, ok: false, files: [] });
  });
});
