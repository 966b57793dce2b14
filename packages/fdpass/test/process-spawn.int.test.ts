// spawnProcess: real programs started by posix_spawn, what they receive
// (argv, env, cwd, exactly the fds listed, default signal state, a new
// session), how their exit is reported, the errors of a program that cannot
// start, and no fd or process left behind.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { alive, childPids } from '@handoff/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  closeFd,
  FdPassError,
  memfdCreate,
  SpawnedProcess,
  spawnProcess,
  spawnProcessAsync,
} from '../src/index.js';
import { expectFdCount, makeTempDir, openFdCount } from './helpers.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function readAll(socket: Socket | null): Promise<string> {
  if (socket === null) throw new Error('no pipe');
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  await once(socket, 'close');
  return Buffer.concat(chunks).toString();
}

/** Runs the program to its end: its stdout, stderr and exit. */
async function run(command: string, args: string[], options = {}) {
  const child = spawnProcess(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const [stdout, stderr, [code, signal]] = await Promise.all([
    readAll(child.stdout),
    readAll(child.stderr),
    once(child, 'exit'),
  ]);
  return { child, stdout, stderr, code, signal };
}

describe('spawnProcess', () => {
  it('runs a program with its argv, env and cwd, and reports its exit status', async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    const baseline = openFdCount();
    const r = await run(
      'python3',
      [
        '-c',
        'import os, sys; print(sys.argv[1:], os.environ["ONLY"], os.getcwd()); ' +
          'print("to stderr", file=sys.stderr); sys.exit(7)',
        'a b',
        'c',
      ],
      { cwd: tmp.path, env: { ONLY: 'this', PATH: process.env.PATH } },
    );
    expect(r.stdout).toBe(`['a b', 'c'] this ${tmp.path}\n`);
    expect(r.stderr).toBe('to stderr\n');
    expect([r.code, r.signal]).toEqual([7, null]);
    expect([r.child.exitCode, r.child.signalCode]).toEqual([7, null]);
    expect(r.child).toBeInstanceOf(SpawnedProcess);
    await expectFdCount(baseline);
  });

  it('reports a signal death by name, and kill() is false once the child is gone', async () => {
    const child = spawnProcess('sleep', ['30']);
    expect(alive(child.pid)).toBe(true);
    expect(child.kill('SIGTERM')).toBe(true);
    const [code, signal] = await once(child, 'exit');
    expect([code, signal]).toEqual([null, 'SIGTERM']);
    expect(child.signalCode).toBe('SIGTERM');
    expect(child.kill()).toBe(false);
    // Reaped: not even a zombie is left under that pid.
    expect(() => process.kill(child.pid, 0)).toThrow(/ESRCH/);
  });

  it('gives the child exactly the fds listed, and every signal at its default', async () => {
    const memfd = memfdCreate('spawn-test');
    cleanups.push(() => closeFd(memfd));
    // The shell lists its own fds: 0-3 and nothing of ours beyond them.
    // Its signal state is read by the shell itself (builtins only): a grep
    // child could read it while the shell blocks every signal around a fork
    // (dash does), and see that passing mask instead of the one it runs with.
    const script =
      'ls /proc/$$/fd; while IFS= read -r l; do case "$l" in SigBlk*|SigIgn*) echo "$l";; esac; done < /proc/$$/status';
    const r = await run('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe', memfd] });
    const lines = r.stdout.trimEnd().split('\n');
    const sig = lines.splice(-2);
    expect(lines.join(' ')).toBe('0 1 2 3');
    // Node ignores SIGPIPE; the child must not inherit that. Signals 32
    // and 33 are glibc's own (thread cancellation, setxid): its posix_spawn
    // leaves them ignored, and the next glibc program installs its handlers.
    const [blocked, ignored] = sig.map((line) => BigInt(`0x${line.split('\t')[1]}`)) as [
      bigint,
      bigint,
    ];
    expect(blocked).toBe(0n);
    expect(ignored & ~(3n << 31n)).toBe(0n);
    expect(r.code).toBe(0);
  });

  it('passes an fd of ours as the child fd asked for', async () => {
    const memfd = memfdCreate('spawn-state');
    cleanups.push(() => closeFd(memfd));
    const r = await run('python3', ['-c', 'import os; os.write(5, b"written by the child")'], {
      stdio: ['ignore', 'pipe', 'pipe', 'ignore', 'ignore', memfd],
    });
    expect(r.code).toBe(0);
    const check = await run(
      'python3',
      ['-c', 'import os; os.lseek(3, 0, 0); print(os.read(3, 64).decode())'],
      {
        stdio: ['ignore', 'pipe', 'pipe', memfd],
      },
    );
    expect(check.stdout).toBe('written by the child\n');
  });

  it('starts a new session when detached, and stays in ours otherwise', async () => {
    const script = 'import os; print(os.getsid(0) == os.getpid(), os.getsid(0))';
    const detached = await run('python3', ['-c', script], { detached: true });
    expect(detached.stdout.split(' ')[0]).toBe('True');
    const attached = await run('python3', ['-c', script]);
    expect(attached.stdout).toBe(`False ${ownSessionId()}\n`);
  });

  it("looks a bare command up in the child's PATH, not ours", async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    writeFileSync(tmp.file('only-here'), '#!/bin/sh\necho found "$1"\n');
    chmodSync(tmp.file('only-here'), 0o755);
    const r = await run('only-here', ['it'], { env: { PATH: `/nonexistent:${tmp.path}` } });
    expect(r.stdout).toBe('found it\n');
  });

  it('throws ENOENT or EACCES and starts nothing when the program cannot run', async () => {
    const tmp = makeTempDir();
    cleanups.push(tmp.cleanup);
    writeFileSync(tmp.file('not-executable'), '#!/bin/sh\n');
    const baseline = openFdCount();
    const cases: Array<[string, object, string]> = [
      ['no-such-command-anywhere', {}, 'ENOENT'],
      [tmp.file('missing'), {}, 'ENOENT'],
      ['sh', { cwd: tmp.file('no-such-dir') }, 'ENOENT'],
      [tmp.file('not-executable'), {}, 'EACCES'],
    ];
    for (const [command, options, code] of cases) {
      let error: unknown;
      try {
        spawnProcess(command, [], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(FdPassError);
      expect(error).toMatchObject({ code, syscall: 'posix_spawn' });
      expect((error as Error).message).toContain(command);
    }
    expect(openFdCount()).toBe(baseline);
    expect(() => spawnProcess('sh', ['-c', 'a\0b'])).toThrow(TypeError);
    expect(() => spawnProcess('sh', [], { stdio: ['ignore', -1 as never] })).toThrow(TypeError);
  });

  it('leaves no process, zombie or fd behind after 50 children at once', async () => {
    const baseline = openFdCount();
    const children = Array.from({ length: 50 }, (_, i) =>
      spawnProcess('sh', ['-c', `exit ${i % 3}`], { stdio: ['ignore', 'pipe', 'ignore'] }),
    );
    const codes = await Promise.all(
      children.map(async (child) => {
        const [code] = await Promise.all([once(child, 'exit'), readAll(child.stdout)]);
        return code[0];
      }),
    );
    expect(codes).toEqual(children.map((_, i) => i % 3));
    const pids = new Set(children.map((c) => c.pid));
    expect(childPids().filter((pid) => pids.has(pid))).toEqual([]);
    await expectFdCount(baseline);
  });

  it('lets the event loop end once unref()ed, the child still running', async () => {
    const index = fileURLToPath(new URL('../src/index.ts', import.meta.url));
    const script = `import { spawnProcess } from ${JSON.stringify(index)};
const child = spawnProcess('sleep', ['30'], { detached: true });
child.unref();
console.log(child.pid);`;
    const parent = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    parent.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    const started = performance.now();
    const [code] = await once(parent, 'exit');
    const pid = Number(out.trim());
    cleanups.push(() => {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    });
    expect(code).toBe(0);
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(alive(pid)).toBe(true);
  });
});

/** Our session id: field 6 of /proc/self/stat (the name before it may hold spaces). */
function ownSessionId(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

describe('spawnProcessAsync', () => {
  it('starts the child off this thread: same child, same exit, and our fds may close at once', async () => {
    const memfd = memfdCreate('spawn-async');
    writeSync(memfd, 'state for the child');
    const baseline = openFdCount();
    const pending = spawnProcessAsync(
      'python3',
      ['-c', 'import os, sys; os.lseek(3, 0, 0); print(os.read(3, 64).decode()); sys.exit(4)'],
      { stdio: ['ignore', 'pipe', 'pipe', memfd] },
    );
    // The child's copy was made before the call returned.
    closeFd(memfd);
    const child = await pending;
    expect(child).toBeInstanceOf(SpawnedProcess);
    const [stdout, [code, signal]] = await Promise.all([
      readAll(child.stdout),
      once(child, 'exit'),
      readAll(child.stderr),
    ]);
    expect(stdout).toBe('state for the child\n');
    expect([code, signal]).toEqual([4, null]);
    await expectFdCount(baseline - 1);
  });

  it('rejects with ENOENT and leaves nothing open; bad arguments throw at once', async () => {
    const baseline = openFdCount();
    const children = childPids();
    await expect(
      spawnProcessAsync('no-such-command-anywhere', [], { stdio: ['ignore', 'pipe', 'pipe'] }),
    ).rejects.toMatchObject({ code: 'ENOENT', syscall: 'posix_spawn' });
    await expect(
      spawnProcessAsync('sh', [], { cwd: '/nonexistent/dir', stdio: ['ignore', 'pipe'] }),
    ).rejects.toBeInstanceOf(FdPassError);
    await expectFdCount(baseline);
    await expect(spawnProcessAsync('sh', ['a\0b'])).rejects.toThrow(TypeError);
    expect(childPids()).toEqual(children);
  });
});
