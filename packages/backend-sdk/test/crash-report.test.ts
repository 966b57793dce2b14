// Crash reports written and read back on real files: what a report holds
// for an Error and for a thrown non-Error, the state directory a daemon
// picks from its environment, pruning to `keep`, garbled files skipped, and
// the monitor installed once and removed by its uninstaller. (A process
// that really crashes: broker/test/crash-report.int.test.ts.)
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  crashReportsDir,
  crashStateDir,
  installCrashReports,
  readCrashReports,
  writeCrashReport,
} from '../src/crash-report.js';
import { tempDir } from './harness.js';

const tmp = tempDir('crash-report');
afterAll(() => tmp.remove());

describe('writeCrashReport', () => {
  it('writes the error, versions, argv and what the program adds, 0600, and reads it back', () => {
    const state = tmp.path('a');
    const error = Object.assign(new Error('boom'), { code: 'E_BOOM' });
    const path = writeCrashReport(error, 'uncaughtException', {
      program: 'my daemon/1',
      stateDir: state,
      extra: () => ({ events: [{ kind: 'spawn' }] }),
    });
    expect(path).toMatch(
      new RegExp(`^${crashReportsDir(state)}/my_daemon_1-${process.pid}-\\d{8}T\\d{9}Z\\.json$`),
    );
    const [entry] = readCrashReports(state);
    expect(entry?.path).toBe(path);
    expect(entry?.report).toMatchObject({
      schema_version: 1,
      program: 'my daemon/1',
      pid: process.pid,
      origin: 'uncaughtException',
      error: {
        name: 'Error',
        message: 'boom',
        code: 'E_BOOM',
        stack: expect.stringContaining('boom'),
      },
      versions: { node: process.versions.node, package: { name: '@handoff/backend-sdk' } },
      argv: process.argv,
      events: [{ kind: 'spawn' }],
    });
  });

  it('describes a thrown non-Error, survives a throwing extra(), and never throws itself', () => {
    const state = tmp.path('b');
    writeCrashReport({ weird: true }, 'unhandledRejection', {
      program: 'p',
      stateDir: state,
      extra: () => {
        throw new Error('no extras today');
      },
    });
    expect(readCrashReports(state)[0]?.report.error).toEqual({
      name: 'object',
      message: '{"weird":true}',
      stack: null,
      code: null,
    });
    // A state dir that cannot be made: null, not a throw.
    writeFileSync(tmp.path('file'), '');
    expect(
      writeCrashReport(new Error('x'), 'uncaughtException', {
        program: 'p',
        stateDir: tmp.path('file', 'sub'),
      }),
    ).toBeNull();
  });

  it('keeps the newest `keep` reports, and skips files that are not reports', () => {
    const state = tmp.path('c');
    const dir = crashReportsDir(state);
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < 3; i++) {
      const old = join(dir, `old-${i}.json`);
      writeFileSync(
        old,
        JSON.stringify({ schema_version: 1, t: i, program: 'old', error: { message: `m${i}` } }),
      );
      utimesSync(old, 1000 + i, 1000 + i);
    }
    writeFileSync(join(dir, 'garbled.json'), '{"schema_version":');
    utimesSync(join(dir, 'garbled.json'), 999, 999);
    writeCrashReport(new Error('new'), 'uncaughtException', {
      program: 'p',
      stateDir: state,
      keep: 3,
    });
    expect(readdirSync(dir).sort()).toEqual([
      'old-1.json',
      'old-2.json',
      expect.stringMatching(/^p-/),
    ]);
    expect(readCrashReports(state).map((e) => e.report.error.message)).toEqual(['new', 'm2', 'm1']);
    expect(readCrashReports(state, 1)).toHaveLength(1);
    expect(readCrashReports(tmp.path('nothing-here'))).toEqual([]);
  });
});

describe('crashStateDir and installCrashReports', () => {
  it('takes the broker’s HANDOFF_STATE_DIR, else $XDG_STATE_HOME/handoff, else ~/.local/state/handoff', () => {
    expect(crashStateDir({ HANDOFF_STATE_DIR: '/s', XDG_STATE_HOME: '/x' }, '/h')).toBe('/s');
    expect(crashStateDir({ HANDOFF_STATE_DIR: 'relative', XDG_STATE_HOME: '/x' }, '/h')).toBe(
      '/x/handoff',
    );
    expect(crashStateDir({}, '/h')).toBe('/h/.local/state/handoff');
  });

  it('installs one monitor per process, removed by its uninstaller', () => {
    const before = process.listenerCount('uncaughtExceptionMonitor');
    const uninstall = installCrashReports({ program: 'p', stateDir: tmp.path('d') });
    expect(installCrashReports({ program: 'q' })).toBe(uninstall);
    expect(process.listenerCount('uncaughtExceptionMonitor')).toBe(before + 1);
    uninstall();
    expect(process.listenerCount('uncaughtExceptionMonitor')).toBe(before);
  });
});
