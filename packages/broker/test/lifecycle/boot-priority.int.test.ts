// The replacement's boot priority against the kernel: a process in a
// session of its own (as the broker spawns daemons) has its autogroup
// lowered and given back through /proc; a process in our own autogroup is
// never touched (lowering it would slow the broker); one that is gone
// needs nothing. restart.int.test.ts has it in a rolling restart.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { autogroupOf, lowerBootPriority } from '../../src/lifecycle/boot-priority.js';
import { autogroups } from './autogroups.js';

const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
});

function sleeper(ownSession: boolean): number {
  const child = spawn('sleep', ['30'], { detached: ownSession, stdio: 'ignore' });
  children.push(child);
  return child.pid!;
}

const niceOf = (pid: number | 'self') =>
  autogroupOf(readFileSync(`/proc/${pid}/autogroup`, 'utf8'))!.nice;

/** Lowers `pid` to `nice`; `heard` collects what the notices said, as `outcome: detail`. */
function lower(pid: number, nice: number) {
  const heard: string[] = [];
  const priority = lowerBootPriority(pid, {
    nice,
    restoreAfterMs: 60_000,
    notice: (outcome, detail) => heard.push(`${outcome}: ${detail}`),
  });
  return { priority, heard };
}

describe.skipIf(!autogroups)('boot priority through /proc', () => {
  it('lowers a process in its own session and gives its weight back', async () => {
    const pid = sleeper(true);
    const { priority, heard } = lower(pid, 12);
    expect(priority).not.toBeNull();
    expect(niceOf(pid)).toBe(12);
    expect(niceOf('self')).toBe(0);
    await priority!.restore();
    expect(niceOf(pid)).toBe(0);
    expect(heard).toEqual(['lowered: nice 12', 'restored: nice 0']);
  });

  it('never touches a process in our own autogroup', () => {
    const pid = sleeper(false);
    const { priority, heard } = lower(pid, 10);
    expect(priority).toBeNull();
    expect(niceOf('self')).toBe(0);
    expect(heard).toEqual([`unsupported: pid ${pid} is not in an autogroup of its own`]);
  });

  it('has nothing to say of a process that exited before its restore', async () => {
    const pid = sleeper(true);
    const { priority, heard } = lower(pid, 10);
    const child = children.at(-1)!;
    child.kill('SIGKILL');
    await once(child, 'exit');
    await priority!.restore();
    expect(heard).toEqual(['lowered: nice 10']);
  });
});
