// Shared by the broker's integration tests: a private temp dir, service
// definitions for the echo-daemon fixture, and starting fixture processes.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const fixtures = join(import.meta.dirname, 'fixtures');
export const tsxArgs = ['--conditions=@handoff/source', '--import', 'tsx'];
export const openFds = () => readdirSync('/proc/self/fd').length;
export const text = (s: string) => new TextEncoder().encode(s);
export const str = (b: Uint8Array) => new TextDecoder().decode(b);

export function tempDir(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), `handoff-${prefix}-`));
  return {
    dir,
    path: (name: string) => join(dir, name),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A service definition running the echo-daemon fixture with extra flags. */
export function echoService(
  name: string,
  extra: Record<string, unknown> = {},
  flags: string[] = [],
) {
  return {
    name,
    version: '1.0.0',
    command: process.execPath,
    args: [...tsxArgs, join(fixtures, 'echo-daemon.ts'), ...flags],
    readyTimeoutMs: 30_000,
    stopGraceMs: 2000,
    ...extra,
  };
}

export async function startProcess(
  args: string[],
): Promise<{ child: ChildProcess; pid: number; kill(signal?: NodeJS.Signals): Promise<void> }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    child.once('exit', (code) =>
      reject(new Error(`process exited with ${code} before ready: ${stderr}`)),
    );
  });
  return {
    child,
    pid: Number(line.split(' ')[1]),
    async kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill(signal);
      await exited;
    },
  };
}

/** Kills a process we did not spawn and waits until it is gone. */
export async function killPid(pid: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
