// `handoff-broker serve` as a child process for the safety-rail tests: its
// outputs kept, ready once the broker answers an admin HEALTHZ (whichever
// stream its logs go to), stopped with SIGTERM and waited for.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../src/client/admin-client.js';
import { tsxArgs } from './harness.js';

const repo = join(import.meta.dirname, '../../..');
const main = join(import.meta.dirname, '../src/cli/main.ts');

export interface ServeChild {
  child: ChildProcess;
  output: () => string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** SIGTERM (unless gone already), then waits for the exit. */
  stop(): Promise<void>;
}

export function spawnServe(args: string[], env: NodeJS.ProcessEnv = {}): ServeChild {
  const child = spawn(process.execPath, [...tsxArgs, main, 'serve', ...args], {
    cwd: repo,
    env: { ...process.env, HANDOFF_BROKER_SOCKET: '', HANDOFF_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Resolves once the broker at `socketPath` answers HEALTHZ; rejects if `serve` exits first. */
export async function untilServing(serve: ServeChild, socketPath: string): Promise<void> {
  let exited = false;
  void serve.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`serve exited before serving: ${serve.output()}`);
    try {
      await adminRequest(socketPath, { verb: AdminVerb.HEALTHZ }, { timeoutMs: 1000 });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
