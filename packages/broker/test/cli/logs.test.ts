// `handoff-broker logs` in process (runCli with captured output) over log
// files written in the broker's format: the last N lines across rotated
// files and versions, text and JSON, the exit codes, and where the state
// directory comes from (flag, the running broker's STATUS, the default).
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.js';
import { followRecords, readLastRecords } from '../../src/logs/reader.js';
import { encodeRecord, type LogRecord } from '../../src/logs/record.js';
import { fakeBroker, startAdminServer, tempDir } from '../admin-harness.js';

const tmp = tempDir('cli-logs');
afterAll(() => tmp.remove());

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: (t) => {
      stdout += typeof t === 'string' ? t : Buffer.from(t).toString();
    },
    stderr: (t) => {
      stderr += t;
    },
    env: { HANDOFF_BROKER_SOCKET: join(tmp.dir, 'no-broker.sock'), ...env },
  });
  return { code, stdout, stderr };
}

const T0 = Date.UTC(2026, 11, 3, 7, 0, 0);
const rec = (i: number, extra: Partial<LogRecord> = {}): LogRecord => ({
  t: T0 + i * 1000,
  pid: 100 + (i % 2),
  stream: i % 2 === 0 ? 'stdout' : 'stderr',
  line: `line ${i}`,
  ...extra,
});

function writeLog(stateDir: string, name: string, records: LogRecord[]): void {
  mkdirSync(join(stateDir, 'logs'), { recursive: true });
  writeFileSync(join(stateDir, 'logs', name), records.map(encodeRecord).join(''));
}

/** A state dir with svc@1.0.0 rotated twice (0–9, 10–19, 20–24), svc@2.0.0, and a lookalike service. */
function fixtureDir(name: string): string {
  const dir = tmp.path(name);
  const range = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, k) => rec(from + k));
  writeLog(dir, 'svc-1.0.0.log.2', range(0, 10));
  writeLog(dir, 'svc-1.0.0.log.1', range(10, 20));
  writeLog(dir, 'svc-1.0.0.log', range(20, 25));
  writeLog(dir, 'svc-2.0.0.log', [rec(19.5, { line: 'v2 a' }), rec(30, { line: 'v2 b' })]);
  writeLog(dir, 'svc-extra-1.0.0.log', [rec(99, { line: 'not svc' })]);
  return dir;
}

describe('handoff-broker logs', () => {
  it('prints the last N lines of one version across its rotated files, oldest first', async () => {
    const dir = fixtureDir('n');
    const run = await cli(['logs', 'svc', '--version', '1.0.0', '-n', '12', '--state-dir', dir]);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split(' ').slice(3).join(' '))).toEqual(
      Array.from({ length: 12 }, (_, k) => `line ${13 + k}`),
    );
    expect(lines[0]).toBe(`${new Date(T0 + 13_000).toISOString()} 101 stderr line 13`);
  });

  it('merges every version by time by default, and prints one JSON document with --json', async () => {
    const dir = fixtureDir('json');
    const run = await cli(['logs', 'svc', '-n', '4', '--json', '--state-dir', dir]);
    expect(run.code).toBe(0);
    expect(run.stdout.endsWith('}\n')).toBe(true);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ schema_version: 1, ok: true, service: 'svc', version: null });
    expect(doc.lines.map((l: LogRecord) => l.line)).toEqual([
      'line 22',
      'line 23',
      'line 24',
      'v2 b',
    ]);
    expect(doc.lines[0]).toEqual(rec(22));
    const all = JSON.parse(
      (await cli(['logs', 'svc', '-n', '100', '--json', '--state-dir', dir])).stdout,
    );
    // 25 + 2 records; never the lookalike service svc-extra.
    expect(all.lines).toHaveLength(27);
    expect(all.lines.map((l: LogRecord) => l.line)).toContain('v2 a');
    expect(all.lines.map((l: LogRecord) => l.line)).not.toContain('not svc');
  });

  it('fails with exit 1 for a service without logs, in text and as a JSON document', async () => {
    const dir = fixtureDir('none');
    const text = await cli(['logs', 'nope', '--state-dir', dir]);
    expect(text.code).toBe(1);
    expect(text.stdout).toBe('');
    expect(text.stderr).toMatch(
      /^handoff-broker logs: no logs of service "nope" in .*\/logs \(unknown service/,
    );
    const json = await cli(['logs', 'svc', '--version', '9.9.9', '--json', '--state-dir', dir]);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      schema_version: 1,
      ok: false,
      code: 'NO_LOGS',
      message: expect.stringContaining('svc@9.9.9'),
    });
    const missingDir = await cli(['logs', 'svc', '--state-dir', tmp.path('does-not-exist')]);
    expect(missingDir.code).toBe(1);
  });

  it('answers --help with every option, and usage errors with exit 2', async () => {
    const help = await cli(['logs', '--help']);
    expect(help.code).toBe(0);
    for (const option of [
      '--version V',
      '-n N',
      '-f, --follow',
      '--json',
      '--state-dir DIR',
      '--socket PATH',
    ])
      expect(help.stdout).toContain(option);
    expect((await cli(['logs'])).code).toBe(2);
    const badN = await cli(['logs', 'svc', '-n', 'many']);
    expect(badN.code).toBe(2);
    // Named as it is typed: -n, not --n.
    expect(badN.stderr).toContain('logs: -n takes a non-negative integer, not "many"');
    expect((await cli(['logs', 'svc', '--bogus'])).code).toBe(2);
    expect((await cli(['--help'])).stdout).toMatch(/logs +print a service's daemon output/);
  });

  it("reads the running broker's state dir from its status, else the default", async () => {
    const dir = fixtureDir('from-broker');
    const socketPath = tmp.path('broker.sock');
    const provider = fakeBroker(socketPath);
    const status = provider.status.bind(provider);
    provider.status = () => ({
      ...status(),
      logs: { stateDir: dir, files: [], spawnFailures: [] },
    });
    const server = await startAdminServer(socketPath, provider);
    try {
      const run = await cli(['logs', 'svc', '-n', '1', '--socket', socketPath]);
      expect(run).toMatchObject({ code: 0, stdout: expect.stringContaining('v2 b') });
    } finally {
      await server.close();
    }
    // No broker: $XDG_STATE_HOME/handoff.
    const xdg = tmp.path('xdg');
    writeLog(join(xdg, 'handoff'), 'solo-1.0.0.log', [rec(1, { line: 'from the default' })]);
    const fallback = await cli(['logs', 'solo'], { XDG_STATE_HOME: xdg });
    expect(fallback).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('from the default'),
    });
  });

  it('follows from where the last lines were read, even when the file rotated in between', async () => {
    const dir = tmp.path('between');
    writeLog(dir, 'svc-1.0.0.log', [rec(0), rec(1)]);
    const path = join(dir, 'logs', 'svc-1.0.0.log');
    const { records, positions } = await readLastRecords(dir, 'svc', 1);
    expect(records.map((r) => r.line)).toEqual(['line 1']);
    // Between the read and the follow: one more line, a rotation, a new file.
    appendFileSync(path, encodeRecord(rec(2)));
    renameSync(path, `${path}.1`);
    writeFileSync(path, encodeRecord(rec(3)));
    const seen: string[] = [];
    const stop = new AbortController();
    const following = followRecords(
      dir,
      'svc',
      (r) => {
        seen.push(r.line);
        if (r.line === 'line 4') stop.abort();
      },
      stop.signal,
      undefined,
      positions,
    );
    appendFileSync(path, encodeRecord(rec(4)));
    await following;
    expect(seen).toEqual(['line 2', 'line 3', 'line 4']);
  });
});
