// `handoff-broker events`, `dump` and `diagnose` as real processes: their
// text and --json output (success and failure), --since/--service/-n, a
// garbled journal, `dump --output`, and `events -f` following a journal
// the broker's own writer rotates under it, until SIGINT.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { TestBroker } from '@handoff/testkit';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventsFilePath } from '../../src/events/event.js';
import { EventJournal } from '../../src/events/journal.js';
import { runBrokerCli } from '../cli-process.js';
import { echoService, tempDir } from '../harness.js';

const tmp = tempDir('cli-diagnostics');
afterAll(() => tmp.remove());
const running: ChildProcess[] = [];
const brokers: TestBroker[] = [];
afterEach(async () => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
  await Promise.all(brokers.splice(0).map((b) => b.close(500)));
});

const repo = join(import.meta.dirname, '../../../..');
const main = join(import.meta.dirname, '../../src/cli/main.ts');
const noBroker = { HANDOFF_BROKER_SOCKET: tmp.path('none.sock') };
let n = 0;
const newStateDir = () => tmp.path(`state-${++n}`);

function journalWith(dir: string, lines: string[]): void {
  mkdirSync(dir, { recursive: true });
  appendFileSync(eventsFilePath(dir), lines.join(''));
}
const line = (e: Record<string, unknown>) => `${JSON.stringify(e)}\n`;

describe('handoff-broker events', () => {
  it('prints the last events as text or one JSON document, filtered, skipping garbage', async () => {
    const dir = newStateDir();
    const now = Date.now();
    journalWith(dir, [
      line({ t: now - 7200_000, kind: 'spawn', service: 'a', version: '1.0.0', pid: 11 }),
      'garbage\n',
      line({
        t: now - 600_000,
        kind: 'exit',
        service: 'a',
        version: '1.0.0',
        pid: 11,
        signal: 'SIGKILL',
        message: 'process exited (SIGKILL)',
      }),
      '{"t":1,"kind":"exit","pid":{"nested":1}}\n',
      line({
        t: now - 60_000,
        kind: 'refused',
        service: 'b',
        code: 'SERVICE_UNKNOWN',
        message: 'Hello refused',
      }),
    ]);
    const text = await runBrokerCli(['events', '--state-dir', dir], noBroker);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(
      /^\S+Z exit a@1\.0\.0 pid 11 signal SIGKILL: process exited \(SIGKILL\)$/,
    );
    expect(lines[2]).toMatch(/^\S+Z refused b SERVICE_UNKNOWN: Hello refused$/);

    const json = await runBrokerCli(
      ['events', '--json', '--state-dir', dir, '--since', '15m'],
      noBroker,
    );
    expect(json.code).toBe(0);
    const doc = JSON.parse(json.stdout);
    expect(doc).toMatchObject({ schema_version: 1, ok: true, state_dir: dir });
    expect(doc.events.map((e: { kind: string }) => e.kind)).toEqual(['exit', 'refused']);

    const one = await runBrokerCli(
      ['events', '--json', '--state-dir', dir, '--service', 'a', '-n', '1'],
      noBroker,
    );
    expect(JSON.parse(one.stdout).events).toEqual([
      expect.objectContaining({ kind: 'exit', service: 'a' }),
    ]);
  });

  it('fails as documented: no journal (exit 1, one JSON document), a bad --since (exit 2)', async () => {
    const empty = newStateDir();
    const none = await runBrokerCli(['events', '--json', '--state-dir', empty], noBroker);
    expect(none.code).toBe(1);
    expect(JSON.parse(none.stdout)).toMatchObject({
      ok: false,
      code: 'NO_EVENTS',
      message: expect.stringContaining(empty),
    });
    const textNone = await runBrokerCli(['events', '--state-dir', empty], noBroker);
    expect(textNone.code).toBe(1);
    expect(textNone.stdout).toBe('');
    expect(textNone.stderr).toMatch(/no event journal in/);
    const bad = await runBrokerCli(
      ['events', '--json', '--since', 'yesterday', '--state-dir', empty],
      noBroker,
    );
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, code: 'USAGE' });
  });

  it('-f follows new events across the writer’s rotations, each once, until SIGINT', async () => {
    const dir = newStateDir();
    const journal = new EventJournal({ stateDir: dir, maxBytes: 600, files: 2 });
    journal.record({ kind: 'spawn', service: 'kv', message: 'before' });
    await journal.idle();
    const child = spawn(
      process.execPath,
      [
        '--conditions=@handoff/source',
        '--import',
        'tsx',
        main,
        'events',
        '-f',
        '--json',
        '--state-dir',
        dir,
      ],
      { cwd: repo, env: { ...process.env, ...noBroker } },
    );
    running.push(child);
    let stdout = '';
    const waiters: (() => void)[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const w of waiters.splice(0)) w();
    });
    const seen = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`never printed ${text}: ${stdout}`)),
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
    await seen('"before"');
    // Four batches, each under one file's size: the writer rotates between
    // some of them, while the follower reads.
    for (let batch = 0; batch < 4; batch++) {
      for (let i = batch * 5; i < batch * 5 + 5; i++)
        journal.record({ kind: 'ready', service: 'kv', message: `m${i}` });
      await journal.idle();
      await seen(`"m${batch * 5 + 4}"`);
    }
    await seen('"m19"');
    expect(readFileSync(`${eventsFilePath(dir)}.1`, 'utf8')).not.toBe('');
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    const messages = stdout
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { message: string }).message);
    expect(messages).toEqual(['before', ...Array.from({ length: 20 }, (_, i) => `m${i}`)]);
    await journal.close();
  });
});

describe('handoff-broker dump and diagnose', () => {
  it('print the snapshot and a service’s diagnosis, as text, JSON and to a file', async () => {
    const state = newStateDir();
    const b = await TestBroker.start({
      services: [echoService('echo')],
      stateDir: state,
      logger: pino({ level: 'silent' }),
    });
    brokers.push(b);
    const socket = b.broker.socketPath;
    const dump = await runBrokerCli(['dump', '--json', '--socket', socket]);
    expect(dump.code).toBe(0);
    const doc = JSON.parse(dump.stdout);
    expect(doc).toMatchObject({
      schema_version: 1,
      ok: true,
      services: [{ name: 'echo' }],
      daemons: [],
    });
    const text = await runBrokerCli(['dump', '--socket', socket]);
    expect(text.stdout).toMatch(/^broker: pid \d+/);
    expect(text.stdout).toContain('service echo@1.0.0 (<embedded>)');

    const file = tmp.path('dump.json');
    const saved = await runBrokerCli(['dump', '--output', file, '--json', '--socket', socket]);
    expect(JSON.parse(saved.stdout)).toMatchObject({ ok: true, code: 'WRITTEN', path: file });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({
      ok: true,
      services: [{ name: 'echo' }],
    });

    const diagnose = await runBrokerCli(['diagnose', 'echo', '--json', '--socket', socket]);
    expect(diagnose.code).toBe(0);
    expect(JSON.parse(diagnose.stdout)).toMatchObject({
      ok: true,
      service: 'echo',
      daemons: [],
      log_tail: [],
    });
    const unknown = await runBrokerCli(['diagnose', 'nosuch', '--json', '--socket', socket]);
    expect(unknown.code).toBe(1);
    expect(JSON.parse(unknown.stdout)).toMatchObject({ ok: false, code: 'SERVICE_UNKNOWN' });
    const unknownText = await runBrokerCli(['diagnose', 'nosuch', '--socket', socket]);
    expect(unknownText.code).toBe(1);
    expect(unknownText.stderr).toMatch(/unknown service "nosuch"/);
  });

  it('without a broker: exit 1, one JSON document on stdout', async () => {
    for (const args of [['dump'], ['diagnose', 'echo']]) {
      const run = await runBrokerCli([...args, '--json'], noBroker);
      expect(run.code).toBe(1);
      expect(JSON.parse(run.stdout)).toMatchObject({ ok: false, code: 'CONNECT' });
    }
    const usage = await runBrokerCli(['diagnose', '--json'], noBroker);
    expect(usage.code).toBe(2);
  });
});
