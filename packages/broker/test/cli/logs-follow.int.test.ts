// `handoff-broker logs -f` as a real process: it prints the last lines,
// then every line appended — including the rest of a file that is rotated
// away and the new file after it — and exits 0 on SIGINT.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { encodeRecord, type LogRecord } from '../../src/logs/record.js';
import { tempDir } from '../harness.js';

const tmp = tempDir('cli-logs-follow');
afterAll(() => tmp.remove());
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

const repo = join(import.meta.dirname, '../../../..');
const main = join(import.meta.dirname, '../../src/cli/main.ts');

const rec = (line: string): LogRecord => ({ t: Date.now(), pid: 42, stream: 'stdout', line });

/** The CLI, with its stdout collected and a way to wait for a line in it. */
function follow(args: string[]) {
  const child = spawn(
    process.execPath,
    ['--conditions=@handoff/source', '--import', 'tsx', main, 'logs', ...args],
    { cwd: repo, env: { ...process.env, HANDOFF_BROKER_SOCKET: tmp.path('none.sock') } },
  );
  running.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: (() => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    for (const w of waiters.splice(0)) w();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const seen = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`never printed ${text}: ${stdout} ${stderr}`)),
        20_000,
      );
      const check = () => {
        if (stdout.includes(text)) {
          clearTimeout(timer);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  return { child, seen, out: () => stdout };
}

describe('handoff-broker logs -f', () => {
  it('follows appends across a rotation until SIGINT', async () => {
    const dir = tmp.path('state');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const path = join(dir, 'logs', 'svc-1.0.0.log');
    writeFileSync(path, [rec('old 1'), rec('old 2')].map(encodeRecord).join(''));
    const f = follow(['svc', '-n', '1', '-f', '--state-dir', dir]);
    await f.seen('old 2');
    appendFileSync(path, encodeRecord(rec('new 1')));
    await f.seen('new 1');
    // A rotation as the broker does it: a last line into the old file,
    // rename, a new file. The follower must print both, in order.
    appendFileSync(path, encodeRecord(rec('last in old')));
    renameSync(path, `${path}.1`);
    writeFileSync(path, encodeRecord(rec('first in new')));
    await f.seen('first in new');
    appendFileSync(path, encodeRecord(rec('new 2')));
    await f.seen('new 2');
    f.child.kill('SIGINT');
    const [code] = await once(f.child, 'exit');
    expect(code).toBe(0);
    const lines = f
      .out()
      .trimEnd()
      .split('\n')
      .map((l) => l.split(' ').slice(3).join(' '));
    expect(lines).toEqual(['old 2', 'new 1', 'last in old', 'first in new', 'new 2']);
    expect(f.out()).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z 42 stdout old 2\n/);
  });

  it('prints one JSON record per line with --json', async () => {
    const dir = tmp.path('state-json');
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const path = join(dir, 'logs', 'svc-1.0.0.log');
    writeFileSync(path, encodeRecord(rec('before')));
    const f = follow(['svc', '-f', '--json', '--state-dir', dir]);
    await f.seen('before');
    appendFileSync(path, encodeRecord(rec('after')));
    await f.seen('after');
    f.child.kill('SIGINT');
    const [code] = await once(f.child, 'exit');
    expect(code).toBe(0);
    const docs = f
      .out()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as LogRecord);
    expect(docs.map((d) => d.line)).toEqual(['before', 'after']);
    expect(docs[0]).toMatchObject({ pid: 42, stream: 'stdout' });
  });
});
