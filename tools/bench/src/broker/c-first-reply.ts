// The C floor of broker.hello_to_reply: c/firstreply.c (a blocking accept
// loop that writes back the first bytes of each connection), compiled into
// bin/ on demand like the other C baselines, and started in its own process.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { buildCProgram } from '../c-programs.ts';

/** Starts the C server on `path`; resolves once it listens. Kill it with SIGTERM. */
export async function startCFirstReply(path: string): Promise<ChildProcess> {
  const child = spawn(await buildCProgram('firstreply'), [path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout!, 'data');
  return child;
}
