// The real handoff-broker CLI as a child process, from source, the way the
// CLI integration tests run it: its exit code and both outputs, whatever
// happens. HANDOFF_BROKER_SOCKET is blanked so a developer's own setting
// never leaks into a test.
import { execFile } from 'node:child_process';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '../../..');
const main = join(import.meta.dirname, '../src/cli/main.ts');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runBrokerCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=@handoff/source', '--import', 'tsx', main, ...args],
      { cwd: repo, env: { ...process.env, HANDOFF_BROKER_SOCKET: '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : -1) : 0,
          stdout,
          stderr,
        }),
    );
  });
}
