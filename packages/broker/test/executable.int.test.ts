// bin/handoff-broker, the executable npm links: a sh script that starts the
// CLI with the broker's node flags. Run here for real, through a symlink as
// npm's bin directory holds it, with the CLI entry beside it replaced by a
// script that reports what it was started with (the CLI itself needs dist/,
// which the release e2e installs and runs).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type TempDir, tempDir } from '@handoff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BROKER_NODE_FLAGS } from '../src/systemd/units.js';

const script = join(import.meta.dirname, '..', 'bin', 'handoff-broker');
let tmp: TempDir;

// The package as installed: <pkg>/bin/handoff-broker and <pkg>/dist/cli/main.js,
// linked from a bin directory elsewhere by a relative symlink.
beforeAll(() => {
  tmp = tempDir('broker-executable');
  const pkg = tmp.path('node_modules', '@handoff', 'broker');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  mkdirSync(join(pkg, 'dist', 'cli'), { recursive: true });
  copyFileSync(script, join(pkg, 'bin', 'handoff-broker'));
  chmodSync(join(pkg, 'bin', 'handoff-broker'), 0o755);
  writeFileSync(
    join(pkg, 'dist', 'cli', 'main.js'),
    [
      'const report = { pid: process.pid, execArgv: process.execArgv, args: process.argv.slice(2) };',
      'console.log(JSON.stringify(report));',
      "process.exitCode = process.argv.includes('--fail') ? 3 : 0;",
    ].join('\n'),
  );
  mkdirSync(tmp.path('node_modules', '.bin'));
  symlinkSync(
    '../@handoff/broker/bin/handoff-broker',
    tmp.path('node_modules', '.bin', 'handoff-broker'),
  );
});
afterAll(() => tmp.remove());

interface Started {
  status: number | null;
  pid: number;
  report: { pid: number; execArgv: string[]; args: string[] };
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  const { NODE_OPTIONS: _, ...rest } = process.env;
  const result = spawnSync(tmp.path('node_modules', '.bin', 'handoff-broker'), args, {
    // The node running the tests first on PATH, as npm puts it for a bin.
    env: { ...rest, PATH: `${dirname(process.execPath)}:/usr/bin:/bin`, ...env },
    encoding: 'utf8',
  });
  expect(result.stderr).toBe('');
  return { status: result.status, pid: result.pid!, report: JSON.parse(result.stdout) };
}

describe('bin/handoff-broker', () => {
  it('starts the CLI with BROKER_NODE_FLAGS, in the process it was started as, arguments verbatim', () => {
    const args = ['serve', '--config-dir', '/tmp/a b/$HOME', '', "it's", '*', '--'];
    const started = run(args);
    expect(started.status).toBe(0);
    expect(started.report.execArgv).toEqual([...BROKER_NODE_FLAGS]);
    expect(started.report.args).toEqual(args);
    // exec, not a child: a supervisor's pid and signals reach the broker itself.
    expect(started.report.pid).toBe(started.pid);
  });

  it("passes the CLI's exit status on", () => {
    expect(run(['status', '--fail']).status).toBe(3);
  });

  it('leaves the flag to a semi-space size set in NODE_OPTIONS, and adds it beside other NODE_OPTIONS', () => {
    expect(run(['status'], { NODE_OPTIONS: '--max-semi-space-size=16' }).report.execArgv).toEqual(
      [],
    );
    expect(run(['status'], { NODE_OPTIONS: '--no-warnings' }).report.execArgv).toEqual([
      ...BROKER_NODE_FLAGS,
    ]);
  });

  it('is executable in the repository, so the packed tarball keeps the mode', () => {
    expect(statSync(script).mode & 0o111).toBe(0o111);
  });
});
