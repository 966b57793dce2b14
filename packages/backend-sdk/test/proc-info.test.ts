import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bootId, processStartTimeMs, startTicksFromStat } from '../src/proc-info.js';

describe('proc info', () => {
  it('reads the boot id as the trimmed kernel value', async () => {
    const id = await bootId();
    expect(id).toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('parses field 22 even when the command name holds spaces and parentheses', () => {
    const tail = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21';
    expect(startTicksFromStat(`123 (a) b) (c) ${tail}`)).toBe(424242);
    expect(() => startTicksFromStat('garbage')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
    expect(() => startTicksFromStat('1 (x) S 1 2')).toThrow(
      expect.objectContaining({ code: 'MALFORMED' }),
    );
  });

  it('gives this process a start time in the past, and a later child a later one', async () => {
    const mine = await processStartTimeMs(process.pid);
    expect(mine).toBeLessThanOrEqual(Date.now());
    expect(mine).toBeGreaterThan(Date.now() - process.uptime() * 1000 - 2000);
    await new Promise((r) => setTimeout(r, 30));
    const child = spawn('sleep', ['5']);
    try {
      expect(await processStartTimeMs(child.pid!)).toBeGreaterThan(mine);
    } finally {
      child.kill();
      await once(child, 'exit');
    }
  });

  it('reports a missing process as NO_SUCH_PROCESS', async () => {
    await expect(processStartTimeMs(2 ** 22 + 1)).rejects.toMatchObject({
      code: 'NO_SUCH_PROCESS',
    });
  });
});
