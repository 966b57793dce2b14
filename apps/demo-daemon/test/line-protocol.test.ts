import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KvCommand } from '../src/kv-service.js';
import {
  detectLineProtocol,
  escapeToken,
  formatCommandLine,
  formatErrorLine,
  formatReplyLine,
  LineProtocolError,
  LineSplitter,
  parseCommandLine,
} from '../src/line-protocol.js';
import { str, text } from './harness.js';

const parse = (line: string | Uint8Array) =>
  parseCommandLine(typeof line === 'string' ? Buffer.from(line, 'latin1') : line);

function parseError(line: string | Uint8Array): string {
  try {
    parse(line);
  } catch (error) {
    expect(error).toBeInstanceOf(LineProtocolError);
    return (error as LineProtocolError).code;
  }
  return 'parsed';
}

const bytes = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

describe('parseCommandLine', () => {
  it('parses the four commands', () => {
    expect(parse('GET greeting')).toEqual({ op: 'get', key: bytes('greeting'), waitMs: 0 });
    expect(parse('SET k v')).toEqual({ op: 'set', key: bytes('k'), value: bytes('v'), ttlMs: 0 });
    expect(parse('SET k v 1500')).toEqual({
      op: 'set',
      key: bytes('k'),
      value: bytes('v'),
      ttlMs: 1500,
    });
    expect(parse('DEL k')).toEqual({ op: 'delete', key: bytes('k') });
    expect(parse('STATS')).toEqual({ op: 'stats' });
  });

  it('is forgiving where a person at a terminal would slip', () => {
    expect(parse('get k\r')).toEqual(parse('GET k'));
    expect(parse('  sEt \t k   v  ')).toEqual(parse('SET k v'));
    expect(parse('')).toBeNull();
    expect(parse(' \t \r')).toBeNull();
  });

  it('decodes %XX escapes and keeps UTF-8 as it is', () => {
    expect(parse('SET a%20b %00%ff%25')).toMatchObject({
      key: bytes('a b'),
      value: new Uint8Array([0, 0xff, 0x25]),
    });
    expect(parse(Buffer.from('GET café', 'utf8'))).toMatchObject({ key: text('café') });
  });

  it('names what is wrong with a line that is not a command', () => {
    expect(parseError('FLUSH')).toBe('UNKNOWN_COMMAND');
    expect(parseError('GETX k')).toBe('UNKNOWN_COMMAND');
    expect(parseError('GET')).toBe('WRONG_ARGUMENTS');
    expect(parseError('GET a b')).toBe('WRONG_ARGUMENTS');
    expect(parseError('SET k')).toBe('WRONG_ARGUMENTS');
    expect(parseError('SET k v 1 2')).toBe('WRONG_ARGUMENTS');
    expect(parseError('STATS now')).toBe('WRONG_ARGUMENTS');
    expect(parseError('SET k v -1')).toBe('BAD_NUMBER');
    expect(parseError('SET k v 1e3')).toBe('BAD_NUMBER');
    expect(parseError('SET k v 4294967296')).toBe('BAD_NUMBER');
    expect(parseError(`SET k v ${'9'.repeat(60_000)}`)).toBe('BAD_NUMBER');
    expect(parse('SET k v 4294967295')).toMatchObject({ ttlMs: 4294967295 });
    expect(parseError('GET a%2')).toBe('BAD_ESCAPE');
    expect(parseError('GET a%zz')).toBe('BAD_ESCAPE');
    expect(parseError('GET a\x00b')).toBe('BAD_CHARACTER');
    expect(parseError('GET a\rb')).toBe('BAD_CHARACTER');
    expect(parseError('GET a\x7f')).toBe('BAD_CHARACTER');
  });

  it('quotes a client token in an error only escaped and cut short', () => {
    try {
      parse(`\x00\x1b[2J${'x'.repeat(100)}`);
      expect.unreachable();
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('"%00%1B[2Jxxx');
      expect(message).toContain('…"');
      expect([...message].every((c) => c >= ' ')).toBe(true);
    }
  });
});

describe('formatting', () => {
  it('formats replies as single lines', () => {
    const line = (reply: Parameters<typeof formatReplyLine>[0]) => str(formatReplyLine(reply));
    expect(line({ result: 'found', value: text('a b\n%'), ttlRemainingMs: 5 })).toBe(
      'VALUE a%20b%0A%25\n',
    );
    expect(line({ result: 'notFound' })).toBe('NOT_FOUND\n');
    expect(line({ result: 'stored' })).toBe('STORED\n');
    expect(line({ result: 'deleted' })).toBe('DELETED\n');
    expect(line({ result: 'failure', code: 'INVALID_KEY', message: 'bad\nkey' })).toBe(
      'ERROR INVALID_KEY bad?key\n',
    );
    const stats = line({
      result: 'stats',
      stats: {
        entries: 1,
        bytes: 2n,
        maxEntries: 3,
        maxBytes: 4n,
        hits: 5n,
        misses: 6n,
        sets: 7n,
        deletes: 8n,
        expired: 9n,
        evicted: 10n,
        connections: 11,
        handoffs: 12n,
        uptimeMs: 2n ** 64n - 1n,
        waiting: 13,
      },
    });
    expect(stats).toBe(
      'STATS entries=1 bytes=2 max_entries=3 max_bytes=4 hits=5 misses=6 sets=7 deletes=8 expired=9 evicted=10 connections=11 handoffs=12 uptime_ms=18446744073709551615 waiting=13\n',
    );
    expect(str(formatErrorLine('X', 'a\x00b'))).toBe('ERROR X a?b\n');
  });

  it('has no spelling for a waiting GET', () => {
    expect(() => formatCommandLine({ op: 'get', key: text('k'), waitMs: 5 })).toThrow(TypeError);
  });
});

describe('detectLineProtocol', () => {
  it('claims a connection that starts with a letter, and leaves 0x01 to framing', () => {
    expect(detectLineProtocol(text('GET k'))).toBe('Legacy');
    expect(detectLineProtocol(text('stats'))).toBe('Legacy');
    expect(detectLineProtocol(new Uint8Array([1, 0, 0]))).toBe('NotLegacy');
    expect(detectLineProtocol(new Uint8Array([0x40]))).toBe('NotLegacy');
    expect(detectLineProtocol(new Uint8Array([0x5b]))).toBe('NotLegacy');
    expect(detectLineProtocol(new Uint8Array(0))).toBe('NeedMoreBytes');
  });
});

/** Pushes `chunk` and takes every line it completes; `error` once a line passes the cap. */
function feed(splitter: LineSplitter, chunk: Uint8Array) {
  splitter.push(chunk);
  const lines: Uint8Array[] = [];
  try {
    for (let line = splitter.next(); line !== null; line = splitter.next()) lines.push(line);
  } catch (error) {
    if (!(error instanceof LineProtocolError)) throw error;
    return { lines, error };
  }
  return { lines, error: undefined };
}

describe('LineSplitter', () => {
  it('cuts lines across chunks and keeps an unfinished one', () => {
    const splitter = new LineSplitter(100);
    expect(feed(splitter, text('GET a\nSE')).lines.map(str)).toEqual(['GET a']);
    expect(feed(splitter, text('T b c\n\nST')).lines.map(str)).toEqual(['SET b c', '']);
    expect(feed(splitter, text('ATS\n')).lines.map(str)).toEqual(['STATS']);
  });

  it('hands out one line per call, and keeps the others until asked', () => {
    const splitter = new LineSplitter(100);
    splitter.push(text('GET a\nGET b\nGE'));
    expect(str(splitter.next()!)).toBe('GET a');
    expect(splitter.bufferedBytes).toBe(8);
    splitter.push(text('T c\n'));
    expect(str(splitter.next()!)).toBe('GET b');
    expect(str(splitter.next()!)).toBe('GET c');
    expect(splitter.next()).toBeNull();
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('fails as soon as a line passes the cap, even before its end arrives', () => {
    const splitter = new LineSplitter(10);
    expect(feed(splitter, text('0123456789')).error).toBeUndefined();
    const over = feed(splitter, text('x'));
    expect(over.error).toMatchObject({ code: 'LINE_TOO_LONG' });
    // Spent: nothing more comes out of it, and it holds nothing.
    expect(feed(splitter, text('\nGET a\n'))).toEqual({ lines: [], error: over.error });
    expect(splitter.bufferedBytes).toBe(0);
  });

  it('still hands out the lines before an over-long one', () => {
    const result = feed(new LineSplitter(4), text('GET\nSTATS\n'));
    expect(result.lines.map(str)).toEqual(['GET']);
    expect(result.error?.code).toBe('LINE_TOO_LONG');
  });

  it('counts a line at exactly the cap as fine, and a \\r as part of it', () => {
    expect(feed(new LineSplitter(5), text('STATS\n')).error).toBeUndefined();
    expect(feed(new LineSplitter(5), text('STATS\r\n')).error?.code).toBe('LINE_TOO_LONG');
  });

  it('gathers a line dripped in one byte at a time without looking at a byte twice', () => {
    const cap = 64 * 1024;
    const splitter = new LineSplitter(cap);
    const started = performance.now();
    for (let i = 0; i < cap; i++) expect(feed(splitter, text('x')).lines).toEqual([]);
    const [line] = feed(splitter, text('\n')).lines;
    expect(line?.length).toBe(cap);
    // Rescanning the whole unfinished line on every byte would take minutes.
    expect(performance.now() - started).toBeLessThan(10_000);
  });
});

// ---- properties ---------------------------------------------------------

const arbToken = fc.uint8Array({ minLength: 1, maxLength: 40 });
const arbCommand: fc.Arbitrary<KvCommand> = fc.oneof(
  arbToken.map((key) => ({ op: 'get' as const, key, waitMs: 0 })),
  fc
    .tuple(arbToken, arbToken, fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff_ffff })))
    .map(([key, value, ttlMs]) => ({ op: 'set' as const, key, value, ttlMs })),
  arbToken.map((key) => ({ op: 'delete' as const, key })),
  fc.constant({ op: 'stats' as const }),
);

/** Parses, and says what happened; anything but a command, null or a LineProtocolError fails. */
function outcome(line: Uint8Array): string {
  try {
    const command = parseCommandLine(line);
    return command === null ? 'blank' : command.op;
  } catch (error) {
    if (error instanceof LineProtocolError) return error.code;
    throw error;
  }
}

/** A formatted command line without its \n. */
const lineOf = (command: KvCommand) => {
  const line = formatCommandLine(command);
  return line.subarray(0, line.length - 1);
};

describe('line wire properties', () => {
  it('property: every command survives format → parse', () => {
    fc.assert(
      fc.property(arbCommand, (command) => {
        expect(parseCommandLine(lineOf(command))).toEqual(command);
      }),
      { numRuns: 1000 },
    );
  });

  it('property: a formatted line is one line of printable bytes', () => {
    fc.assert(
      fc.property(arbCommand, (command) => {
        const line = formatCommandLine(command);
        expect(line.indexOf(0x0a)).toBe(line.length - 1);
        expect(line.subarray(0, -1).every((b) => b >= 0x20 && b !== 0x7f)).toBe(true);
      }),
    );
  });

  it('property: escaping is reversible for any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), (value) => {
        const parsed = parseCommandLine(Buffer.concat([text('GET '), escapeToken(value)]));
        expect(parsed).toEqual({ op: 'get', key: value, waitMs: 0 });
      }),
    );
  });

  it('property: random bytes parse to a command, a blank, or a typed error — never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (line) => {
        expect(outcome(line)).toMatch(/^(get|set|delete|stats|blank|[A-Z_]+)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: mutated command lines parse to a command or a typed error', () => {
    const arbMutation = fc.array(
      fc.tuple(fc.nat(), fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constant(-1))),
      { minLength: 1, maxLength: 6 },
    );
    fc.assert(
      fc.property(arbCommand, arbMutation, (command, mutations) => {
        const bytes = [...lineOf(command)];
        for (const [at, byte] of mutations) {
          const i = at % (bytes.length + 1);
          if (byte === -1) bytes.splice(i, 1);
          else bytes.splice(i, 0, byte);
        }
        expect(outcome(new Uint8Array(bytes))).toMatch(/^(get|set|delete|stats|blank|[A-Z_]+)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: any chunking yields the same lines, and fails exactly where a line passes the cap', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.uint8Array({ maxLength: 30 }).map((b) => b.filter((x) => x !== 0x0a)),
          {
            maxLength: 10,
          },
        ),
        fc.array(fc.nat({ max: 400 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 40 }),
        (lines, cuts, cap) => {
          const stream = Buffer.concat(lines.map((l) => Buffer.concat([l, text('\n')])));
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort(
            (a, b) => a - b,
          );
          const splitter = new LineSplitter(cap);
          const out: string[] = [];
          let failed = false;
          let from = 0;
          for (const to of [...points, stream.length]) {
            const result = feed(splitter, stream.subarray(from, to));
            out.push(...result.lines.map((l) => Buffer.from(l).toString('hex')));
            failed ||= result.error !== undefined;
            from = to;
          }
          const tooLong = lines.findIndex((l) => l.length > cap);
          const expected = (tooLong === -1 ? lines : lines.slice(0, tooLong)).map((l) =>
            Buffer.from(l).toString('hex'),
          );
          expect(out).toEqual(expected);
          expect(failed).toBe(tooLong !== -1);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
