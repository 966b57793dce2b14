import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultBrokerSocketPath, defaultConfigDir } from '../src/paths.js';

describe('defaultBrokerSocketPath', () => {
  it('prefers $HANDOFF_BROKER_SOCKET over everything', () => {
    expect(
      defaultBrokerSocketPath(
        { HANDOFF_BROKER_SOCKET: '/srv/b.sock', XDG_RUNTIME_DIR: '/run/user/7' },
        7,
      ),
    ).toBe('/srv/b.sock');
  });

  it('uses an absolute $XDG_RUNTIME_DIR', () => {
    expect(defaultBrokerSocketPath({ XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe(
      '/run/user/1000/handoff/broker.sock',
    );
  });

  it('ignores a relative or empty $XDG_RUNTIME_DIR and falls back to /tmp/handoff-<uid>', () => {
    expect(defaultBrokerSocketPath({ XDG_RUNTIME_DIR: 'run/user' }, 1000)).toBe(
      '/tmp/handoff-1000/broker.sock',
    );
    expect(defaultBrokerSocketPath({ XDG_RUNTIME_DIR: '' }, 42)).toBe(
      '/tmp/handoff-42/broker.sock',
    );
    expect(defaultBrokerSocketPath({}, 0)).toBe('/tmp/handoff-0/broker.sock');
  });

  it('treats an empty $HANDOFF_BROKER_SOCKET as unset', () => {
    expect(defaultBrokerSocketPath({ HANDOFF_BROKER_SOCKET: '' }, 5)).toBe(
      '/tmp/handoff-5/broker.sock',
    );
  });

  it('does not depend on TMPDIR, so client and broker agree', () => {
    expect(defaultBrokerSocketPath({ TMPDIR: '/var/tmp/x' }, 9)).toBe('/tmp/handoff-9/broker.sock');
  });

  it('defaults to the process environment and uid', () => {
    const expected = defaultBrokerSocketPath(process.env, process.getuid!());
    expect(defaultBrokerSocketPath()).toBe(expected);
  });
});

describe('defaultConfigDir', () => {
  it('prefers $HANDOFF_CONFIG_DIR', () => {
    expect(
      defaultConfigDir({ HANDOFF_CONFIG_DIR: '/etc/handoff', XDG_CONFIG_HOME: '/x' }, '/home/a'),
    ).toBe('/etc/handoff');
  });

  it('uses an absolute $XDG_CONFIG_HOME', () => {
    expect(defaultConfigDir({ XDG_CONFIG_HOME: '/home/a/.cfg' }, '/home/a')).toBe(
      '/home/a/.cfg/handoff/services',
    );
  });

  it('falls back to <home>/.config when XDG_CONFIG_HOME is unset, empty or relative', () => {
    for (const env of [{}, { XDG_CONFIG_HOME: '' }, { XDG_CONFIG_HOME: 'cfg' }]) {
      expect(defaultConfigDir(env, '/home/a')).toBe('/home/a/.config/handoff/services');
    }
  });

  it('defaults to the process environment and home directory', () => {
    expect(defaultConfigDir()).toBe(defaultConfigDir(process.env, homedir()));
  });
});
