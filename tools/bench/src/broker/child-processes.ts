// The server and client processes a suite spawned: waiting for what they
// print (a ready line, a word) while watching for an early exit, and
// stopping them — each one still running gets SIGTERM and is waited for;
// one already gone is left alone.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** `happening`'s value, or a rejection saying `what` exited first. */
async function beforeExit<T>(child: ChildProcess, what: string, happening: Promise<T>): Promise<T> {
  return Promise.race([
    happening,
    once(child, 'exit').then(() => {
      throw new Error(`${what} exited first`);
    }),
  ]);
}

/** Resolves once `child` has written its first bytes (its ready line); rejects if it exits before. */
export async function untilReady(child: ChildProcess, what: string): Promise<void> {
  await beforeExit(child, `${what}, not yet ready,`, once(child.stdout!, 'data'));
}

/** Resolves once `child` has printed `word`; rejects if it exits before. */
export async function untilPrinted(child: ChildProcess, word: string, what: string): Promise<void> {
  const out = child.stdout!.setEncoding('utf8');
  for (;;) {
    const [chunk] = (await beforeExit(
      child,
      `${what}, before printing "${word}",`,
      once(out, 'data'),
    )) as [string];
    if (chunk.includes(word)) return;
  }
}

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
