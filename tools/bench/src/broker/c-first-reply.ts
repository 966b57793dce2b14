// The C floor of broker.hello_to_reply: c/firstreply.c (a blocking accept
// loop that writes back the first bytes of each connection), compiled into
// bin/ on demand like the other C baselines, and started in its own process.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchRoot } from '../fdpass/paths.ts';

const run = promisify(execFile);
const source = join(benchRoot, 'c', 'firstreply.c');
const binary = join(benchRoot, 'bin', 'firstreply');

/** Compiles the server into tools/bench/bin unless it is up to date. */
async function build(): Promise<string> {
  const binTime = statSync(binary, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (binTime > statSync(source).mtimeMs) return binary;
  mkdirSync(join(benchRoot, 'bin'), { recursive: true });
  const cc = process.env.CC ?? 'cc';
  console.error(`# compiling ${source} with ${cc} -O2`);
  await run(cc, ['-O2', '-Wall', '-o', binary, source]);
  return binary;
}

/** Starts the C server on `path`; resolves once it listens. Kill it with SIGTERM. */
export async function startCFirstReply(path: string): Promise<ChildProcess> {
  const child = spawn(await build(), [path], { stdio: ['ignore', 'pipe', 'inherit'] });
  await once(child.stdout!, 'data');
  return child;
}
