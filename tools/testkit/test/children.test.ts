// Reading /proc/<pid>/stat, on this process (the spawning helpers are in
// children.int.test.ts).
import { describe, expect, it } from 'vitest';
import { alive, isZombie, readProcStat } from '../src/children.js';

const GONE = 2 ** 23; // above pid_max: never a live pid

describe('readProcStat', () => {
  it("reads this process's parent, state and command", () => {
    const stat = readProcStat(process.pid);
    expect(stat).toMatchObject({ ppid: process.ppid, state: expect.stringMatching(/^[RS]$/) });
    expect(stat?.comm.length).toBeGreaterThan(0);
    expect(stat?.startTicks).toMatch(/^\d+$/);
  });

  it('is undefined for a pid that does not exist', () => {
    expect(readProcStat(GONE)).toBeUndefined();
  });
});

describe('alive and isZombie', () => {
  it('this process is alive, a missing one is neither alive nor running', () => {
    expect(alive(process.pid)).toBe(true);
    expect(isZombie(process.pid)).toBe(false);
    expect(alive(GONE)).toBe(false);
    expect(isZombie(GONE)).toBe(true);
  });
});
