// The spawning helpers against real child processes: the ready line, an
// early exit, kill and killPid, and childPids seeing each child come and go.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { alive, childPids, killPid, spawnReady } from '../src/children.js';

const READY = "process.stdout.write('ready ' + process.pid + '\\n'); setInterval(() => {}, 1000);";

describe('spawnReady', () => {
  it('resolves on the ready line with its pid; kill() stops it and waits', async () => {
    const ready = await spawnReady(process.execPath, ['-e', READY]);
    expect(ready.pid).toBe(ready.child.pid);
    expect(childPids()).toContain(ready.pid);
    await ready.kill();
    expect(ready.child.signalCode).toBe('SIGTERM');
    expect(childPids()).not.toContain(ready.pid);
    await expect(ready.kill()).resolves.toBeUndefined();
  });

  it('escalates to SIGKILL when the process ignores SIGTERM', async () => {
    const stubborn = `process.on('SIGTERM', () => {}); ${READY}`;
    const ready = await spawnReady(process.execPath, ['-e', stubborn], { forceAfterMs: 100 });
    await ready.kill();
    expect(ready.child.signalCode).toBe('SIGKILL');
  });

  it('rejects with the label and stderr when the process exits before ready', async () => {
    await expect(
      spawnReady(process.execPath, ['-e', 'console.error("no config"); process.exit(3)'], {
        label: 'fixture.ts',
      }),
    ).rejects.toThrow(/^fixture\.ts exited with 3 before ready: no config/);
  });
});

describe('killPid', () => {
  it('kills a process by pid and returns once it is gone', async () => {
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    const exited = once(child, 'exit');
    await killPid(child.pid!);
    const [, signal] = await exited;
    expect(signal).toBe('SIGKILL');
    expect(alive(child.pid!)).toBe(false);
  });

  it('returns at once for a pid that does not exist', async () => {
    await expect(killPid(2 ** 23)).resolves.toBeUndefined();
  });
});
