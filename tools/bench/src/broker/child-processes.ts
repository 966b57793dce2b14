// Stopping the server processes a suite spawned: each one still running gets
// SIGTERM and is waited for; one already gone is left alone.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export async function stopChildren(children: readonly ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = once(c, 'exit');
      c.kill('SIGTERM');
      await exited;
    }),
  );
}
