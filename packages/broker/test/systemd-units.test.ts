// The systemd units install --systemd writes: what they say (quoting, the
// socket path both units agree on, the stop timeout following the drain),
// and that the real `systemd-analyze verify --user` accepts them without a
// warning. CI installs systemd-analyze (tools/ci/install-system-deps.sh);
// elsewhere, without it, that test skips saying why.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BROKER_FD_NAME } from '../src/systemd/listen-fds.js';
import {
  type BrokerUnitOptions,
  brokerCliEntry,
  DEFAULT_UNIT_SOCKET,
  execWord,
  execWords,
  renderBrokerUnits,
  renderServiceUnit,
  renderSocketUnit,
  SERVICE_UNIT,
  SOCKET_UNIT,
  timeoutStopSec,
  UNIT_FD_NAME,
  UnitRenderError,
} from '../src/systemd/units.js';
import { tempDir } from './admin-harness.js';

const base: BrokerUnitOptions = {
  nodePath: '/usr/bin/node',
  cliEntry: '/opt/handoff/node_modules/@handoff/broker/dist/cli/main.js',
  drainMs: 5000,
  exitGraceMs: 10_000,
};

/** The value of `key=` lines, comments skipped. */
function values(text: string, key: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${key}=`))
    .map((line) => line.slice(key.length + 1));
}

function value(text: string, key: string): string {
  const all = values(text, key);
  expect(all, `${key}= lines`).toHaveLength(1);
  return all[0] as string;
}

describe('rendering', () => {
  it('puts the default %t socket in ListenStream= and in serve --socket', () => {
    const socket = renderSocketUnit(base).text;
    const service = renderServiceUnit(base).text;
    expect(value(socket, 'ListenStream')).toBe(DEFAULT_UNIT_SOCKET);
    expect(value(service, 'ExecStart')).toBe(
      `/usr/bin/node --max-semi-space-size=4 ${base.cliEntry} serve --socket %t/handoff/broker.sock --drain 5000`,
    );
    expect(value(service, 'ReadWritePaths')).toBe('%t/handoff -%h/.local/state/handoff');
    expect(value(service, 'PrivateTmp')).toBe('yes');
  });

  it('names the listener as the broker adopts it, and both units each other', () => {
    expect(UNIT_FD_NAME).toBe(BROKER_FD_NAME);
    const [socket, service] = renderBrokerUnits(base);
    expect(socket?.name).toBe(SOCKET_UNIT);
    expect(service?.name).toBe(SERVICE_UNIT);
    expect(value(socket?.text ?? '', 'FileDescriptorName')).toBe(BROKER_FD_NAME);
    expect(value(service?.text ?? '', 'Requires')).toBe(SOCKET_UNIT);
    expect(value(service?.text ?? '', 'Type')).toBe('notify');
  });

  it('quotes paths with spaces, and escapes %, $, quotes and backslashes', () => {
    const options: BrokerUnitOptions = {
      ...base,
      nodePath: '/opt/my node/bin/node',
      cliEntry: '/home/a b/100%/$HOME/main.js',
      socketPath: '/run/user/1000/my sockets/broker.sock',
      configDir: '/home/a/"quoted"\\dir',
      configFile: '/home/a/services.json',
      stateDir: '/home/a b/state',
    };
    const service = renderServiceUnit(options).text;
    expect(value(service, 'ExecStart')).toBe(
      '"/opt/my node/bin/node" --max-semi-space-size=4 "/home/a b/100%%/$$HOME/main.js" serve' +
        ' --socket "/run/user/1000/my sockets/broker.sock"' +
        ' --config-dir "/home/a/\\"quoted\\"\\\\dir" --config-file /home/a/services.json --drain 5000',
    );
    // ListenStream= takes the rest of the line as the path: no quotes, only % escaped.
    expect(value(renderSocketUnit(options).text, 'ListenStream')).toBe(
      '/run/user/1000/my sockets/broker.sock',
    );
    expect(value(service, 'ReadWritePaths')).toBe(
      '"/run/user/1000/my sockets" -%t/handoff "-/home/a b/state"',
    );
    expect(execWord('100%')).toBe('100%%');
    expect(execWord('plain/path')).toBe('plain/path');
    expect(execWord('semi;colon')).toBe('"semi;colon"');
  });

  it('reads ExecStart= back into the literal words execWord wrote (doctor reads it so)', () => {
    const service = renderServiceUnit({
      ...base,
      nodePath: '/opt/my node/bin/node',
      cliEntry: '/home/a b/100%/$HOME/"q"\\main.js',
    }).text;
    expect(execWords(value(service, 'ExecStart'))).toEqual([
      '/opt/my node/bin/node',
      '--max-semi-space-size=4',
      '/home/a b/100%/$HOME/"q"\\main.js',
      'serve',
      '--socket',
      '%t/handoff/broker.sock',
      '--drain',
      '5000',
    ]);
    expect(execWords('"unterminated')).toBeNull();
    expect(execWords('"ab"cd')).toBeNull();
    // Any words, quoted as execWord quotes them, come back unchanged.
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'binary' }).filter((w) => !/[\n\0]/.test(w))),
        (words) => {
          expect(execWords(words.map(execWord).join(' '))).toEqual(words);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('makes the stop timeout outlast the drain plus the exit grace', () => {
    expect(timeoutStopSec(5000, 10_000)).toBe(20);
    expect(timeoutStopSec(60_001, 10_000)).toBe(76);
    const service = renderServiceUnit({ ...base, drainMs: 30_000 }).text;
    expect(value(service, 'TimeoutStopSec')).toBe('45s');
    expect(value(service, 'ExecStart')).toMatch(/ --drain 30000$/);
    expect(value(service, 'WatchdogSec')).toBe('30s');
  });

  it('drops PrivateTmp= when the socket lives under /tmp, where clients must see it', () => {
    const service = renderServiceUnit({
      ...base,
      socketPath: '/tmp/handoff-1000/broker.sock',
    }).text;
    expect(values(service, 'PrivateTmp')).toEqual([]);
    expect(value(service, 'ReadWritePaths')).toBe(
      '/tmp/handoff-1000 -%t/handoff -%h/.local/state/handoff',
    );
  });

  it('restricts the broker to Unix sockets and keeps the hardening', () => {
    const service = renderServiceUnit(base).text;
    expect(value(service, 'RestrictAddressFamilies')).toBe('AF_UNIX');
    for (const key of [
      'NoNewPrivileges',
      'LockPersonality',
      'RestrictRealtime',
      'RestrictSUIDSGID',
    ])
      expect(value(service, key)).toBe('yes');
    expect(value(service, 'ProtectSystem')).toBe('strict');
    expect(value(service, 'UMask')).toBe('0077');
    expect(value(service, 'SystemCallArchitectures')).toBe('native');
  });

  it('lets an upgrade successor notify (NotifyAccess=all) and reloads by upgrading (SIGHUP)', () => {
    const service = renderServiceUnit(base).text;
    expect(value(service, 'Type')).toBe('notify');
    // The successor sends MAINPID=<its pid>: with NotifyAccess=main systemd would drop it.
    expect(value(service, 'NotifyAccess')).toBe('all');
    expect(value(service, 'ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  });

  it('refuses relative paths and newlines', () => {
    expect(() => renderServiceUnit({ ...base, socketPath: 'broker.sock' })).toThrow(
      UnitRenderError,
    );
    expect(() => renderServiceUnit({ ...base, configDir: '/a\nExecStartPre=/bin/sh' })).toThrow(
      /newline/,
    );
    expect(() => renderSocketUnit({ ...base, drainMs: -1 })).toThrow(/drainMs/);
  });
});

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;
}

const analyzer = has('systemd-analyze');
// CI installs it, so there a missing systemd-analyze fails instead of skipping.
const inCI = process.env.CI === 'true' || process.env.CI === '1';
if (!analyzer && !inCI) {
  console.warn(
    'systemd-units: verify skipped, this machine lacks systemd-analyze (apt-get install systemd)',
  );
}

describe.skipIf(!analyzer && !inCI)('systemd-analyze verify --user', () => {
  /**
   * Writes the units to a fresh directory and verifies them as a user
   * manager would load them. Without a running manager systemd-analyze
   * needs an XDG_RUNTIME_DIR to exist; ExecStart= must name an executable
   * that exists, so the real node and the real CLI entry path are used (the
   * entry itself need not be built: systemd checks only the executable).
   */
  function verify(options: Partial<BrokerUnitOptions>): { status: number | null; output: string } {
    const dir = tempDir('systemd-units');
    try {
      const units = dir.path('units');
      const runtime = dir.path('runtime');
      mkdirSync(units);
      mkdirSync(runtime, { mode: 0o700 });
      const files = renderBrokerUnits({
        ...base,
        nodePath: process.execPath,
        cliEntry: brokerCliEntry(),
        ...options,
      }).map((unit) => {
        const path = join(units, unit.name);
        writeFileSync(path, unit.text);
        return path;
      });
      const run = spawnSync('systemd-analyze', ['verify', '--user', ...files], {
        encoding: 'utf8',
        env: { ...process.env, XDG_RUNTIME_DIR: runtime, SYSTEMD_LOG_LEVEL: 'warning' },
      });
      return { status: run.status, output: `${run.stdout}${run.stderr}${run.error ?? ''}` };
    } finally {
      dir.remove();
    }
  }

  /** Lines about our units: warnings (unknown keys, bad values) name the file or the unit. */
  function aboutOurs(output: string): string[] {
    return output.split('\n').filter((line) => line.includes('handoff-broker'));
  }

  it('accepts the default units without a warning', () => {
    const { status, output } = verify({});
    expect(status, output).toBe(0);
    expect(aboutOurs(output), output).toEqual([]);
  });

  it('accepts paths with spaces and a custom socket, config and drain', () => {
    const { status, output } = verify({
      socketPath: '/run/user/1000/my sockets/broker.sock',
      configDir: '/home/a b/$handoff "services"',
      configFile: '/home/a b/one%file.json',
      stateDir: '/home/a b/state 100%',
      drainMs: 60_000,
    });
    expect(status, output).toBe(0);
    expect(aboutOurs(output), output).toEqual([]);
  });

  it('does report a broken unit (the check can fail)', () => {
    const { status, output } = verify({ nodePath: '/nonexistent/node' });
    expect(status).not.toBe(0);
    expect(output).toMatch(/handoff-broker\.service.*not executable/);
  });
});
