// The C (raw sendmsg/recvmsg) and Python (socket.send_fds/recv_fds)
// baselines: builds c/fdbench.c on demand and runs either program for one
// timed round. Both print {"fds","messages","fds_per_message","seconds"}.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildCProgram, cBinaryPath } from '../c-programs.ts';
import { benchRoot } from './paths.ts';

const run = promisify(execFile);

const cBinary = cBinaryPath('fdbench');
const pyScript = join(benchRoot, 'py', 'fdbench.py');

export interface NativeRound {
  fds: number;
  seconds: number;
}

/** Compiles the C baseline into tools/bench/bin unless it is up to date. */
export const buildCBaseline = (): Promise<string> => buildCProgram('fdbench');

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
