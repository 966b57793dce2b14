// The suites' C programs (c/<name>.c: baselines, floors, load generators):
// compiled with `cc -O2 -Wall` (or $CC) into bin/ when the binary is missing
// or older than its source, so a run always measures the current source.
import { execFile } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchRoot } from './fdpass/paths.ts';

const run = promisify(execFile);

/** Where c/<name>.c is compiled to. */
export const cBinaryPath = (name: string): string => join(benchRoot, 'bin', name);

/** Compiles c/<name>.c into bin/<name> unless it is up to date; resolves with the binary. */
export async function buildCProgram(name: string): Promise<string> {
  const source = join(benchRoot, 'c', `${name}.c`);
  const binary = cBinaryPath(name);
  const binTime = statSync(binary, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (binTime > statSync(source).mtimeMs) return binary;
  mkdirSync(join(benchRoot, 'bin'), { recursive: true });
  const cc = process.env.CC ?? 'cc';
  console.error(`# compiling ${source} with ${cc} -O2`);
  await run(cc, ['-O2', '-Wall', '-o', binary, source]);
  return binary;
}
