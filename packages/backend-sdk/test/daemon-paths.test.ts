import { describe, expect, it } from 'vitest';
import { defaultDaemonSocketPath } from '../src/daemon-paths.js';

describe('defaultDaemonSocketPath', () => {
  it('prefers the endpoint a broker gave ($HANDOFF_ENDPOINT)', () => {
    expect(
      defaultDaemonSocketPath(
        'demo-kv',
        {
          HANDOFF_ENDPOINT: '/run/user/7/handoff/services/demo-kv-1.0.0.sock',
          XDG_RUNTIME_DIR: '/run/user/7',
        },
        7,
      ),
    ).toBe('/run/user/7/handoff/services/demo-kv-1.0.0.sock');
  });

  it('uses an absolute $XDG_RUNTIME_DIR', () => {
    expect(defaultDaemonSocketPath('demo-kv', { XDG_RUNTIME_DIR: '/run/user/1000' }, 1000)).toBe(
      '/run/user/1000/handoff/daemons/demo-kv.sock',
    );
  });

  it('falls back to /tmp/handoff-<uid> when XDG_RUNTIME_DIR is unset, empty or relative', () => {
    expect(defaultDaemonSocketPath('demo-kv', {}, 1000)).toBe(
      '/tmp/handoff-1000/daemons/demo-kv.sock',
    );
    expect(defaultDaemonSocketPath('demo-kv', { XDG_RUNTIME_DIR: '' }, 42)).toBe(
      '/tmp/handoff-42/daemons/demo-kv.sock',
    );
    expect(defaultDaemonSocketPath('demo-kv', { XDG_RUNTIME_DIR: 'run/user' }, 42)).toBe(
      '/tmp/handoff-42/daemons/demo-kv.sock',
    );
    expect(defaultDaemonSocketPath('demo-kv', { HANDOFF_ENDPOINT: '' }, 42)).toBe(
      '/tmp/handoff-42/daemons/demo-kv.sock',
    );
  });

  it('uses the current uid when none is given', () => {
    expect(defaultDaemonSocketPath('demo-kv', {})).toBe(
      `/tmp/handoff-${process.getuid!()}/daemons/demo-kv.sock`,
    );
  });

  it('refuses a service name that could leave the directory', () => {
    for (const name of ['../x', 'a/b', '', 'Demo', 'x'.repeat(65)]) {
      expect(() => defaultDaemonSocketPath(name, {}, 1000)).toThrow(TypeError);
    }
  });
});
