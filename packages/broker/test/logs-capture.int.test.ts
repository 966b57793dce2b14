// Daemon output capture end to end with real processes and real pipes:
// launchDaemon spawns the log-writer fixture, the broker side writes JSON
// lines into <stateDir>/logs, rotates by size, splits long lines, keeps a
// partial last line, shares one file between two daemons, survives a full
// disk (/dev/full), and hands its pipes over (detach → adopt).
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { duplicateFd } from '@handoff/fdpass';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseServiceDefinition, type ServiceDefinition } from '../src/config/definition.js';
import { adoptDaemonOutput, type DaemonOutput, launchDaemon } from '../src/daemon-spawn.js';
import { acquireLogFile, type LogNotice, logFileStats } from '../src/logs/log-file.js';
import { readLastRecords } from '../src/logs/reader.js';
import { decodeRecord, type LogRecord, logFilePath, logsDir } from '../src/logs/record.js';
import { fixtures, openFds, tempDir, tsxArgs } from './harness.js';

const dirs: ReturnType<typeof tempDir>[] = [];
afterAll(() => {
  for (const d of dirs) d.remove();
});
let fdsBefore = 0;
const children: number[] = [];
afterEach(() => {
  for (const pid of children.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
});

function stateDir(): string {
  const d = tempDir('logs');
  dirs.push(d);
  fdsBefore = openFds();
  return d.dir;
}

function definition(name: string, extra: Record<string, unknown> = {}): ServiceDefinition {
  return parseServiceDefinition(
    {
      name,
      version: '1.0.0',
      command: process.execPath,
      args: [...tsxArgs, join(fixtures, 'log-writer.ts')],
      ...extra,
    },
    'test',
  );
}

/** Runs the fixture with `args` as a daemon of `def`, to its exit; returns pid, output and exit code. */
async function run(
  def: ServiceDefinition,
  dir: string,
  args: string[],
  notice: LogNotice = () => {},
): Promise<{ pid: number; output: DaemonOutput; code: number | null }> {
  const launched = await launchDaemon(
    { ...def, args: [...def.args, ...args] },
    { endpoint: '/nonexistent', controlPath: '/nonexistent', stateDir: dir, logNotice: notice },
  );
  children.push(launched.child.pid);
  const [code] = (await once(launched.child, 'exit')) as [number | null];
  await launched.output.settled(10_000);
  await written(def, dir);
  return { pid: launched.child.pid, output: launched.output, code };
}

/** Waits until everything captured so far for `def` reached its file. */
async function written(def: ServiceDefinition, dir: string): Promise<void> {
  const file = acquireLogFile(
    logFilePath(dir, def.name, def.version),
    { maxBytes: def.logMaxBytes, files: def.logFiles },
    () => {},
  );
  await file.idle();
  file.release();
}

function records(path: string): LogRecord[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const r = decodeRecord(l);
      if (!r) throw new Error(`not a record: ${l}`);
      return r;
    });
}

const index = (r: LogRecord) => Number(r.line.split(' ')[0]);

describe('daemon log files', () => {
  it('rotates by size, keeps logFiles rotated files, and reads the last N across them in order', async () => {
    const dir = stateDir();
    const def = definition('rot', { logMaxBytes: 4096, logFiles: 2 });
    const { pid, code } = await run(def, dir, ['lines', '200', '100']);
    expect(code).toBe(0);
    const path = logFilePath(dir, 'rot', '1.0.0');
    expect(existsSync(`${path}.1`)).toBe(true);
    expect(existsSync(`${path}.2`)).toBe(true);
    expect(existsSync(`${path}.3`)).toBe(false);
    for (const p of [path, `${path}.1`, `${path}.2`])
      expect(statSync(p).size).toBeLessThanOrEqual(4096);
    expect((statSync(logsDir(dir)).mode & 0o777).toString(8)).toBe('700');
    const kept = [`${path}.2`, `${path}.1`, path].flatMap(records);
    // Contiguous, oldest file first, ending with the last line written.
    expect(kept.at(-1)!.line.startsWith('199 ')).toBe(true);
    expect(kept.map(index)).toEqual(kept.map((_, i) => 200 - kept.length + i));
    expect(kept.every((r) => r.pid === pid && r.stream === 'stdout')).toBe(true);
    expect(kept[0]!.line.length).toBe(99);
    // -n spanning the current file and the one before it.
    const current = records(path).length;
    const last = await readLastRecords(dir, 'rot', current + 2);
    expect(last.records.map(index)).toEqual(kept.slice(-(current + 2)).map(index));
    expect((await readLastRecords(dir, 'rot', 1000)).records.map(index)).toEqual(kept.map(index));
    expect(openFds()).toBe(fdsBefore);
  });

  it('truncates in place when logFiles is 0', async () => {
    const dir = stateDir();
    const def = definition('trunc', { logMaxBytes: 4096, logFiles: 0 });
    await run(def, dir, ['lines', '200', '100']);
    const path = logFilePath(dir, 'trunc', '1.0.0');
    expect(existsSync(`${path}.1`)).toBe(false);
    expect(statSync(path).size).toBeLessThanOrEqual(4096);
    expect(records(path).at(-1)!.line.startsWith('199 ')).toBe(true);
    expect(openFds()).toBe(fdsBefore);
  });

  it('splits a line over the cap into marked pieces on UTF-8 boundaries', async () => {
    const dir = stateDir();
    const def = definition('long');
    await run(def, dir, ['long', '40000']);
    const pieces = records(logFilePath(dir, 'long', '1.0.0'));
    expect(pieces.length).toBe(3);
    expect(pieces.slice(0, -1).every((r) => r.split === true)).toBe(true);
    expect(pieces.at(-1)!.split).toBeUndefined();
    for (const p of pieces) expect(Buffer.byteLength(p.line)).toBeLessThanOrEqual(16 * 1024);
    const whole = pieces.map((p) => p.line).join('');
    expect(whole).not.toContain('\ufffd');
    let expected = '';
    for (let i = 0; expected.length < 40000; i++) expected += i % 100 === 99 ? 'é' : 'a';
    expect(whole).toBe(expected);
  });

  it('writes a last line without a newline when the pipe closes, marked noeol', async () => {
    const dir = stateDir();
    const def = definition('part');
    const { output } = await run(def, dir, ['partial', 'no newline here']);
    expect(records(logFilePath(dir, 'part', '1.0.0'))).toEqual([
      expect.objectContaining({ line: 'no newline here', noeol: true, stream: 'stdout' }),
    ]);
    expect(output.tail()).toBe('no newline here');
  });

  it('tags stdout and stderr, and two daemons of one service share one file with their pids', async () => {
    const dir = stateDir();
    const def = definition('two');
    const [a, b] = await Promise.all([
      run(def, dir, ['both', '40']),
      run(def, dir, ['both', '40']),
    ]);
    expect(a.pid).not.toBe(b.pid);
    const all = records(logFilePath(dir, 'two', '1.0.0'));
    for (const { pid, output } of [a, b]) {
      const mine = all.filter((r) => r.pid === pid);
      expect(mine.length).toBe(40);
      // Each stream keeps its own order.
      const out = mine.filter((r) => r.stream === 'stdout').map((r) => r.line);
      const err = mine.filter((r) => r.stream === 'stderr').map((r) => r.line);
      expect(out).toEqual(Array.from({ length: 20 }, (_, i) => `out ${2 * i}`));
      expect(err).toEqual(Array.from({ length: 20 }, (_, i) => `err ${2 * i + 1}`));
      expect(output.tail()).toContain('out 38');
      expect(output.tail()).toContain('err 39');
    }
    expect(openFds()).toBe(fdsBefore);
  });
});

describe('a full log disk', () => {
  it('drops and counts lines without blocking the daemon, warns once, and recovers', async () => {
    const dir = stateDir();
    const def = definition('full', { logMaxBytes: 4096, logFiles: 1 });
    const notices: [string, string, Record<string, unknown>][] = [];
    const notice: LogNotice = (level, message, fields) => notices.push([level, message, fields]);
    const path = logFilePath(dir, 'full', '1.0.0');
    await run(def, dir, ['lines', '1', '10'], notice);
    unlinkSync(path);
    symlinkSync('/dev/full', path);
    // 2000 lines of 300 bytes: well past the write queue's bound, so a
    // capture that waited for the disk would block the daemon for good.
    const full = await run(def, dir, ['lines', '2000', '300'], notice);
    expect(full.code).toBe(0);
    expect(full.output.tail()).toContain('1999 ');
    expect(logFileStats(logsDir(dir))).toEqual([{ path, dropped: 2000, failing: 'ENOSPC' }]);
    expect(notices.filter(([level]) => level === 'warn')).toEqual([
      [
        'warn',
        expect.stringContaining('dropping lines'),
        expect.objectContaining({ code: 'ENOSPC', path }),
      ],
    ]);
    // The disk has room again (the file is a file): writing resumes, and says what was lost.
    unlinkSync(path);
    await run(def, dir, ['lines', '3', '20'], notice);
    const after = records(path);
    expect(after[0]).toMatchObject({ stream: 'broker', dropped: 2000 });
    expect(after.slice(1).map(index)).toEqual([0, 1, 2]);
    expect(logFileStats(logsDir(dir))).toEqual([{ path, dropped: 2000, failing: null }]);
    expect(notices.map(([level]) => level)).toEqual(['warn', 'info']);
    expect(openFds()).toBe(fdsBefore);
  });
});

describe('a daemon that writes as fast as it can', () => {
  it("to a slow disk: the broker's memory stays bounded and the daemon is slowed, not stopped", async () => {
    const dir = stateDir();
    const def = definition('flood', { logMaxBytes: 2 ** 30 });
    const path = logFilePath(dir, 'flood', '1.0.0');
    mkdirSync(logsDir(dir), { mode: 0o700 });
    // The "disk": a FIFO drained at ~2.5 MB/s, far slower than the daemon writes.
    expect(spawnSync('mkfifo', [path]).status).toBe(0);
    const reader = spawn(
      'sh',
      [
        '-c',
        'exec 3<"$0"; while :; do head -c 262144 <&3 >/dev/null || exit; sleep 0.1; done',
        path,
      ],
      { stdio: 'ignore' },
    );
    children.push(reader.pid!);
    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = used();
    let peak = baseline;
    const sampler = setInterval(() => {
      peak = Math.max(peak, used());
    }, 10);
    try {
      const flood = await run(def, dir, ['flood', '1500']);
      expect(flood.code).toBe(0);
      expect(flood.output.tail()).toMatch(/flooded \d+/);
    } finally {
      clearInterval(sampler);
      reader.kill('SIGKILL');
    }
    // Unbounded, the ~1.5 s of output read at pipe speed would be hundreds of MiB.
    expect(peak - baseline).toBeLessThan(48 * 2 ** 20);
    expect(openFds()).toBe(fdsBefore);
  });
});

describe('handing the pipes over (upgrade)', () => {
  it('detaches, resumes, and a successor adopts the pipes without losing or repeating a line', async () => {
    const dir = stateDir();
    const def = definition('tick');
    const launched = await launchDaemon(
      { ...def, args: [...def.args, 'tick', '5'] },
      { endpoint: '/nonexistent', controlPath: '/nonexistent', stateDir: dir },
    );
    const pid = launched.child.pid;
    children.push(pid);
    const ticks = async (output: DaemonOutput, atLeast: number) => {
      const deadline = Date.now() + 10_000;
      while (!new RegExp(`tick ${atLeast}\\b`).test(output.tail())) {
        if (Date.now() > deadline) throw new Error(`no tick ${atLeast}: ${output.tail()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await ticks(launched.output, 3);
    const first = launched.output.detach();
    expect(first.stdout).toBeGreaterThan(2);
    expect(first.stderr).toBeGreaterThan(2);
    // The upgrade failed: reading goes on.
    launched.output.resume();
    const seen = Number(/tick (\d+)\s*$/.exec(launched.output.tail())![1]);
    await ticks(launched.output, seen + 3);
    // The upgrade: the old side stops reading, the new one gets its own fds
    // to the same pipes (here: duplicates, as receiving them over fdpass makes).
    const fds = launched.output.detach();
    const dup = (fd: number | null) => (fd === null ? null : duplicateFd(fd));
    const adopted = adoptDaemonOutput(
      def,
      pid,
      { stdout: dup(fds.stdout), stderr: dup(fds.stderr) },
      { stateDir: dir },
    );
    launched.output.close();
    const handedAt = Number(/tick (\d+)\s*$/.exec(launched.output.tail())![1]);
    await ticks(adopted, handedAt + 5);
    process.kill(pid, 'SIGTERM');
    await once(launched.child, 'exit');
    await adopted.settled(10_000);
    await written(def, dir);
    const lines = records(logFilePath(dir, 'tick', '1.0.0')).filter((r) => !r.split);
    const numbers = lines
      .filter((r) => r.line.startsWith('tick '))
      .map((r) => Number(r.line.slice(5)));
    expect(numbers).toEqual(numbers.map((_, i) => i));
    expect(lines.at(-1)!.line).toBe(`stopped at ${numbers.length}`);
    expect(lines.every((r) => r.pid === pid)).toBe(true);
    expect(openFds()).toBe(fdsBefore);
  });
});
