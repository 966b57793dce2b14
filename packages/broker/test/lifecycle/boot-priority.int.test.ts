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

// The kernel facts the design stands on, as an unprivileged user sees them
// (root has CAP_SYS_ADMIN and CAP_SYS_NICE, which hide all three): an
// autogroup's owner may lower it and raise it back to 0, one write per
// 100 ms on the whole system (EAGAIN), never below 0 (EPERM).
const KERNEL_FACTS = `
const { spawn } = require('node:child_process');
const { readFileSync, writeFileSync } = require('node:fs');
const child = spawn('sleep', ['10'], { detached: true, stdio: 'ignore' });
const file = '/proc/' + child.pid + '/autogroup';
const write = (v) => { try { writeFileSync(file, v); return 'ok'; } catch (e) { return e.code; } };
const nice = () => Number(/nice (-?\\d+)/.exec(readFileSync(file, 'utf8'))[1]);
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
// Another process's write (a parallel test's, even root's) also starts the
// 100 ms: retried, except where EAGAIN is the fact under test.
const settle = async (v) => {
  for (let i = 0; i < 40; i++) {
    const result = write(v);
    if (result !== 'EAGAIN') return result;
    await pause(25);
  }
  return 'EAGAIN';
};
(async () => {
  const seen = [];
  seen.push(await settle('10'), nice());
  seen.push(write('0'), nice());
  await pause(150);
  seen.push(await settle('0'), nice());
  seen.push(write('-1'), nice());
  child.kill('SIGKILL');
  process.stdout.write(JSON.stringify(seen));
})();
`;

describe.skipIf(!autogroups || process.getuid?.() !== 0)(
  'the kernel, for an unprivileged owner',
  () => {
    it('lets it lower its own autogroup and raise it back to 0, one write per 100 ms, never below 0', async () => {
      const child = spawn(process.execPath, ['-e', KERNEL_FACTS], {
        uid: 65534,
        gid: 65534,
        cwd: '/',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
      });
      await once(child, 'exit');
      expect(JSON.parse(out)).toEqual(['ok', 10, 'EAGAIN', 10, 'ok', 0, 'EPERM', 0]);
    });
  },
);
