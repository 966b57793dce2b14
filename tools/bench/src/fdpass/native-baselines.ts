// The C (raw sendmsg/recvmsg) and Python (socket.send_fds/recv_fds)
// baselines: builds c/fdbench.c on demand and runs either program for one
// timed round. Both print {"fds","messages","fds_per_message","seconds"}.
import { execFile } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { benchRoot } from './paths.ts';

const run = promisify(execFile);

const cSource = join(benchRoot, 'c', 'fdbench.c');
const cBinary = join(benchRoot, 'bin', 'fdbench');
const pyScript = join(benchRoot, 'py', 'fdbench.py');

export interface NativeRound {
  fds: number;
  seconds: number;
}

/** Compiles the C baseline into tools/bench/bin unless it is up to date. */
export async function buildCBaseline(): Promise<string> {
  const binTime = statSync(cBinary, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (binTime > statSync(cSource).mtimeMs) return cBinary;
  mkdirSync(join(benchRoot, 'bin'), { recursive: true });
  const cc = process.env.CC ?? 'cc';
  console.error(`# compiling ${cSource} with ${cc} -O2`);
  await run(cc, ['-O2', '-Wall', '-o', cBinary, cSource]);
  return cBinary;
}

export function runCRound(messages: number, fdsPerMessage: number): Promise<NativeRound> {
  return runRound(cBinary, [String(messages), String(fdsPerMessage), '1']);
}

export function runPythonRound(messages: number, fdsPerMessage: number): Promise<NativeRound> {
  const python = process.env.PYTHON ?? 'python3';
  return runRound(python, [pyScript, String(messages), String(fdsPerMessage), '1']);
}

async function runRound(file: string, args: string[]): Promise<NativeRound> {
  const { stdout } = await run(file, args, { cwd: benchRoot });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  const parsed = JSON.parse(last) as { fds?: unknown; seconds?: unknown };
  if (typeof parsed.fds !== 'number' || typeof parsed.seconds !== 'number') {
    throw new Error(`${file}: unexpected output ${JSON.stringify(stdout)}`);
  }
  return { fds: parsed.fds, seconds: parsed.seconds };
}
