// The shared command-line runner (src/cli/): under --json, every failure the
// runner itself answers — an unknown command or option, a usage error, a
// bug — is one JSON document on stdout with the usual exit code; help
// columns are aligned by computed widths; undocumented options are found.
import { describe, expect, it } from 'vitest';
import {
  type CliIo,
  CliRunner,
  type Command,
  renderHelp,
  UsageError,
  undocumentedOptions,
  wantsJson,
} from '../src/cli/index.js';

function capture(): { io: CliIo; out: () => string; err: () => string } {
  let stdout = '';
  let stderr = '';
  return {
    io: {
      stdout: (d) => {
        stdout += typeof d === 'string' ? d : Buffer.from(d).toString();
      },
      stderr: (t) => {
        stderr += t;
      },
      env: {},
    },
    out: () => stdout,
    err: () => stderr,
  };
}

const echo: Command = {
  name: 'echo',
  summary: 'print its argument',
  usage: 'echo WORD [--times N] [--json]',
  options: { times: { type: 'string' }, json: { type: 'boolean' } },
  help: [['--times N', 'how many times', 'and a second line'], '--json          print JSON'],
  minPositionals: 1,
  maxPositionals: 1,
  positionalNames: ['WORD'],
  async run(args, io) {
    if (args.values.times === 'boom') throw new Error('kaboom');
    if (args.values.times === 'bad') throw new UsageError('--times takes a number', 'echo');
    io.stdout(`${args.positionals[0]}\n`);
    return 0;
  },
};
const runner = new CliRunner({
  name: 'prog',
  description: 'A test program.',
  commands: [echo],
  commonOptions: { 'long-common-option': { type: 'string' } },
  commonHelp: [['--long-common-option X', 'shared by all']],
  footer: 'Exit codes: 0, 1, 2.\n',
});

async function run(argv: string[]) {
  const c = capture();
  const code = await runner.run(argv, c.io);
  return { code, stdout: c.out(), stderr: c.err() };
}

/** The one JSON document on stdout (throws unless there is exactly one). */
function oneDocument(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe('CliRunner under --json', () => {
  it.each([
    [['frobnicate', '--json'], 'unknown command "frobnicate"'],
    [['--json'], 'unknown option --json'],
    [['echo', '--json'], 'missing WORD'],
    [['echo', 'a', 'b', '--json'], 'unexpected argument "b"'],
    [['echo', 'a', '--bogus', '--json'], 'unknown option --bogus'],
    [['echo', 'a', '--json', '--times', 'bad'], '--times takes a number'],
  ])('%j is a usage error: one JSON document on stdout, exit 2', async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(oneDocument(r.stdout)).toMatchObject({
      schema_version: 1,
      ok: false,
      code: 'USAGE',
      message,
      error: { code: 'USAGE', message },
    });
    expect(r.stderr).toContain(message);
  });

  it('an unexpected error is one JSON document, code UNEXPECTED, exit 1; its stack on stderr', async () => {
    const r = await run(['echo', 'a', '--times', 'boom', '--json']);
    expect(r.code).toBe(1);
    expect(oneDocument(r.stdout)).toMatchObject({
      ok: false,
      code: 'UNEXPECTED',
      message: 'unexpected error: kaboom',
      command: 'echo',
    });
    expect(r.stderr).toMatch(/unexpected error: Error: kaboom\n\s+at /);
  });

  it('without --json the same failures print text on stderr and nothing on stdout', async () => {
    for (const argv of [['frobnicate'], ['echo'], ['echo', 'a', '--times', 'boom']]) {
      const r = await run(argv);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toBe('');
      expect(r.code).toBe(argv.length === 4 ? 1 : 2);
    }
  });

  it('finds --json in a line that does not parse, but not after `--`', () => {
    expect(wantsJson(['get', '--nope', '--json'])).toBe(true);
    expect(wantsJson(['get', '--', '--json'])).toBe(false);
    expect(wantsJson(['get', '--jsonx'])).toBe(false);
  });
});

describe('usage text', () => {
  it('aligns the option column by the widest flags, tuples and padded strings alike', async () => {
    const r = await run(['echo', '--help']);
    expect(r.code).toBe(0);
    const block = r.stdout.split('Options:\n')[1]!;
    const lines = block.split('\n').filter(Boolean);
    const textColumn = (line: string) => /^ {2}(?:\S+(?: \S+)*)? +/.exec(line)?.[0].length;
    const columnsSeen = new Set(lines.map(textColumn));
    expect(columnsSeen).toEqual(new Set(['  --long-common-option X  '.length]));
    expect(block).toContain('how many times\n');
    expect(lines[1]).toMatch(/^ {2,}and a second line$/);
    expect(block).toContain('-h, --help');
  });

  it('renderHelp keeps a free-form string and a continuation line', () => {
    expect(renderHelp(['--a X  first', '      more of it', ['--bb', 'second']])).toBe(
      '  --a X  first\n         more of it\n  --bb   second\n',
    );
  });

  it('undocumentedOptions names the options a help text leaves out', async () => {
    const help = (await run(['echo', '--help'])).stdout;
    expect(undocumentedOptions(echo, help, { 'long-common-option': { type: 'string' } })).toEqual(
      [],
    );
    const hidden: Command = { ...echo, options: { ...echo.options, secret: { type: 'boolean' } } };
    expect(undocumentedOptions(hidden, help)).toEqual(['--secret']);
  });
});
