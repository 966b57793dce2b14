// The CLI contract, for every handoff-broker subcommand (the rows of
// contract-table.ts), run as the real CLI: --help exits 0 and names every
// option the command declares; --json success is one document with ok: true;
// --json failure (no broker, a bad argument, an unknown service) is one
// document with ok: false, code and message, exit 1 or 2.
import { mkdirSync, writeFileSync } from 'node:fs';
import { undocumentedOptions } from '@handoff/backend-sdk/cli';
import { openFds, processesMentioning, TestBroker } from '@handoff/testkit';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerCommands } from '../../src/cli/run.js';
import { connectService } from '../../src/client/connect-service.js';
import { eventsFilePath } from '../../src/events/event.js';
import { encodeRecord, logFilePath } from '../../src/logs/record.js';
import { runBrokerCli } from '../cli-process.js';
import { echoService, tempDir } from '../harness.js';
import { CONTRACT_ROWS } from './contract-table.js';

const tmp = tempDir('cli-contract');
const silent = pino({ level: 'silent' });
let live: TestBroker;
let spare: TestBroker;
let fdsBefore: number;

beforeAll(async () => {
  fdsBefore = openFds();
  // Mentions the temp dir, so a leaked daemon is found by processesMentioning.
  const echo = echoService('echo', { env: { CONTRACT_DIR: tmp.dir } });
  live = await TestBroker.start({ prefix: 'contract', services: [echo], logger: silent });
  spare = await TestBroker.start({ prefix: 'contract-spare', logger: silent });
  // A running daemon, so that list/probe/restart have one to show.
  const { socket } = await connectService('echo', {
    version: '1.0.0',
    brokerPath: live.socketPath,
    timeoutMs: 30_000,
  });
  socket.destroy();
  const state = tmp.path('state');
  mkdirSync(tmp.path('state', 'logs'), { recursive: true });
  writeFileSync(
    logFilePath(state, 'echo', '1.0.0'),
    encodeRecord({ t: Date.now(), pid: 4242, stream: 'stdout', line: 'hello' }),
  );
  writeFileSync(eventsFilePath(state), `${JSON.stringify({ t: Date.now(), kind: 'spawn' })}\n`);
}, 60_000);

afterAll(async () => {
  await live.close();
  await spare.close().catch(() => undefined);
  expect(processesMentioning(tmp.dir)).toEqual([]);
  tmp.remove();
  expect(openFds()).toBeLessThanOrEqual(fdsBefore);
});

function fill(argv: readonly string[]): string[] {
  return argv.map((a) =>
    a
      .replace('{live}', live.socketPath)
      .replace('{spare}', spare.socketPath)
      .replace('{dead}', tmp.path('nobody-here.sock'))
      .replace('{tmp}', tmp.dir)
      .replace('{state}', tmp.path('state')),
  );
}

/** The one JSON document on stdout: exactly one line, parsed. */
function oneDocument(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n').filter((l) => l !== '');
  expect(lines, `stdout: ${stdout}`).toHaveLength(1);
  const doc = JSON.parse(lines[0]!) as Record<string, unknown>;
  expect(Object.keys(doc).slice(0, 2)).toEqual(['schema_version', 'ok']);
  expect(doc.schema_version).toBe(1);
  return doc;
}

describe('every subcommand has a contract row', () => {
  it('the table covers cli/run.ts, and --help lists exactly those commands', async () => {
    const names = brokerCommands().map((c) => c.name);
    expect(CONTRACT_ROWS.map((r) => r.command).sort()).toEqual([...names].sort());
    const help = await runBrokerCli(['--help']);
    expect(help.code).toBe(0);
    for (const name of names) expect(help.stdout).toMatch(new RegExp(`^ {2}${name} `, 'm'));
  });
});

describe.each(CONTRACT_ROWS)('handoff-broker $command', (row) => {
  const command = () => {
    const found = brokerCommands().find((c) => c.name === row.command);
    if (!found) throw new Error(`no command ${row.command} in cli/run.ts`);
    return found;
  };

  it('--help: exit 0, every declared option named, --timeout and --json on the usage line', async () => {
    const run = await runBrokerCli([row.command, '--help']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(undocumentedOptions(command(), run.stdout)).toEqual([]);
    const usage = run.stdout.split('\n')[0]!;
    for (const flag of ['timeout', 'json'])
      if (flag in command().options) expect(usage).toContain(`--${flag}`);
  });

  it.skipIf(!Array.isArray(row.success))(
    '--json success: one document, ok: true, exit 0',
    async () => {
      const run = await runBrokerCli(fill(row.success as string[]));
      expect(run.code, run.stderr).toBe(0);
      expect(oneDocument(run.stdout).ok).toBe(true);
    },
    60_000,
  );

  it(`--json failure: one document, ok: false, code ${row.failure.code}, exit ${row.failure.exit}`, async () => {
    const run = await runBrokerCli(fill(row.failure.argv));
    expect(run.code, run.stderr).toBe(row.failure.exit);
    const doc = oneDocument(run.stdout);
    expect(doc).toMatchObject({ ok: false, code: row.failure.code });
    expect(typeof doc.message).toBe('string');
    expect(doc.message).not.toBe('');
  });
});

describe('the runner under --json', () => {
  it('an unknown command or option is a USAGE document, exit 2', async () => {
    for (const argv of [
      ['frobnicate', '--json'],
      ['status', '--bogus', '--json'],
    ]) {
      const run = await runBrokerCli(argv);
      expect(run.code).toBe(2);
      expect(oneDocument(run.stdout)).toMatchObject({ ok: false, code: 'USAGE' });
    }
  });
});
