// The C (raw sendmsg/recvmsg) and Python (socket.send_fds/recv_fds)
// baselines: builds c/fdbench.c on demand and runs either program for one
// timed round. Both print {"fds","messages","fds_per_message","seconds"},
// as does our own round program (ours-sender.ts), run by the same helper.
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

/** `batch` > 1: the C sender hands the kernel that many messages per sendmmsg. */
export function runCRound(
  messages: number,
  fdsPerMessage: number,
  batch = 1,
): Promise<NativeRound> {
  return runRoundProgram(cBinary, [String(messages), String(fdsPerMessage), '1', String(batch)]);
}

export function runPythonRound(messages: number, fdsPerMessage: number): Promise<NativeRound> {
  const python = process.env.PYTHON ?? 'python3';
  return runRoundProgram(python, [pyScript, String(messages), String(fdsPerMessage), '1']);
}

/** Runs one round program (C, Python or ours-sender.ts) and reads its JSON line. */
export async function runRoundProgram(file: string, args: string[]): Promise<NativeRound> {
  const { stdout } = await run(file, args, { cwd: benchRoot });
  const last = stdout.trim().split('\n').at(-1) ?? '';
  const parsed = JSON.parse(last) as { fds?: unknown; seconds?: unknown };
  if (typeof parsed.fds !== 'number' || typeof parsed.seconds !== 'number') {
    throw new Error(`${file}: unexpected output ${JSON.stringify(stdout)}`);
  }
  return { fds: parsed.fds, seconds: parsed.seconds };
}
