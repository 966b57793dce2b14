// warmUntilSettled: a warm-up ends once the helper threads of the processes
// involved are nearly idle, and not while one of them keeps a helper busy.
// threadCpuUs: a process's CPU split between its main thread and the rest.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { warmUntilSettled } from '../src/settle.ts';
import { threadCpuUs } from '../src/thread-cpu.mjs';

const children: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(
    children.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }),
  );
});

/** A Node process whose main thread sleeps while a worker thread spins (or not). */
async function childWithWorker(spinning: boolean): Promise<number> {
  const worker = spinning ? 'for (;;) {}' : 'setInterval(() => {}, 1000)';
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const { Worker } = require('node:worker_threads');
       new Worker(${JSON.stringify(worker)}, { eval: true });
       setInterval(() => {}, 1000);
       setTimeout(() => console.log('ready'), 200);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(child);
  await once(child.stdout!, 'data');
  return child.pid!;
}

/** About `ms` of CPU on this thread. */
function burn(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {}
}

describe('threadCpuUs', () => {
  it('counts the main thread apart from the others', async () => {
    const pid = await childWithWorker(true);
    const before = threadCpuUs(pid);
    await new Promise((r) => setTimeout(r, 600));
    const after = threadCpuUs(pid);
    // The spinning worker is a helper; the sleeping main thread spends next to nothing.
    expect(after.helpers - before.helpers).toBeGreaterThan(200_000);
    expect(after.main - before.main).toBeLessThan(100_000);
  });

  it('reads this process too, and zeros for a process that is gone', () => {
    const before = threadCpuUs(process.pid);
    burn(100);
    expect(threadCpuUs(process.pid).main - before.main).toBeGreaterThan(0);
    expect(threadCpuUs(2 ** 22 + 7)).toEqual({ main: 0, helpers: 0 });
  });
});

describe('warmUntilSettled', () => {
  it('ends after the minimum rounds once every helper is quiet', async () => {
    const pid = await childWithWorker(false);
    let rounds = 0;
    const result = await warmUntilSettled(
      async () => {
        rounds++;
        burn(20);
        await new Promise((r) => setImmediate(r));
      },
      [pid],
      { minRounds: 5, capMs: 10_000 },
    );
    expect(result.jit_settled).toBe(true);
    expect(rounds).toBeGreaterThanOrEqual(5);
    expect(result.warmup_ms).toBeLessThan(10_000);
  });

  it('waits out the cap and says so while a helper stays busy', async () => {
    const pid = await childWithWorker(true);
    const started = performance.now();
    const result = await warmUntilSettled(
      async () => {
        burn(5);
        await new Promise((r) => setImmediate(r));
      },
      [pid],
      { minRounds: 1, capMs: 1500 },
    );
    expect(result.jit_settled).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1500);
  });
});
