// Property tests of the legacy line wire over mutated captured traffic
// (formatCommandLine's commands and a hand-typed telnet session, recorded
// going to a real demo daemon): LineSplitter is chunking-independent and
// stops at its cap, parseCommandLine throws only LineProtocolError and
// what it accepts survives formatCommandLine, and a real daemon answers
// every line once, in order, over a real socket. Keeps the corpus fresh.
import { once } from 'node:events';
import { connect } from 'node:net';
import { arbEvenCuts, arbMutatedEvenly } from '@handoff/testkit';
import { chunk } from '@handoff/testkit/mutations';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DemoDaemon } from '../src/daemon.js';
import type { KvCommand } from '../src/kv-service.js';
import {
  formatCommandLine,
  LineProtocolError,
  LineSplitter,
  parseCommandLine,
} from '../src/line-protocol.js';
import { openFds, startTestDaemon, tempDir } from './harness.js';
import {
  captureLineSessions,
  corpusDir,
  maskStats,
  readCorpus,
  writeCorpus,
} from './line-capture.js';

const CORPUS = new URL('line-sessions.json', corpusDir);
const REGENERATE =
  'REGENERATE_CORPUS=1 npx vitest run apps/demo-daemon/test/line-protocol.fuzz.test.ts';

describe('line-wire corpus (test/fixtures/corpus/line-sessions.json)', () => {
  it('is what formatCommandLine, a telnet user and the demo daemon write today', async () => {
    const fresh = await captureLineSessions();
    if (process.env.REGENERATE_CORPUS === '1') writeCorpus(CORPUS, REGENERATE, fresh);
    const stored = readCorpus(CORPUS);
    expect(Object.keys(stored).sort()).toEqual(Object.keys(fresh).sort());
    for (const [name, bytes] of Object.entries(fresh)) {
      expect(maskStats(stored[name]!), name).toEqual(maskStats(bytes));
    }
  }, 30_000);
});

/** What clients send: the inputs to mutate. */
const clientCorpus = () => {
  const all = readCorpus(CORPUS);
  return { commands: all['client-commands']!, telnet: all['telnet-session']! };
};

/** Line caps to run at: tiny (most mutated lines pass it), mid, and the default. */
const arbCap = fc.constantFrom(8, 40, 64 * 1024);

type Split = { lines: string[]; error: string | null };

/**
 * Feeds `pieces` to a fresh splitter, taking every line after each push as
 * a connection does; checks the cap after each piece.
 */
function split(pieces: Uint8Array[], cap: number): Split {
  const splitter = new LineSplitter(cap);
  const lines: string[] = [];
  for (const piece of pieces) {
    splitter.push(piece);
    try {
      for (let l = splitter.next(); l !== null; l = splitter.next()) {
        expect(l.length).toBeLessThanOrEqual(cap);
        lines.push(Buffer.from(l).toString('hex'));
      }
    } catch (error) {
      // The property: nothing but a LineProtocolError escapes the splitter.
      if (!(error instanceof LineProtocolError)) throw error;
      expect(splitter.bufferedBytes).toBe(0);
      return { lines, error: error.code };
    }
    // What it keeps between lines is the unfinished one: never more than the cap.
    expect(splitter.bufferedBytes).toBeLessThanOrEqual(cap);
  }
  return { lines, error: null };
}

describe('LineSplitter over mutated captured traffic', () => {
  it('is chunking-independent, never holds more than its cap, fails only with LINE_TOO_LONG (numRuns 1500)', () => {
    fc.assert(
      fc.property(
        arbMutatedEvenly(clientCorpus(), 64 * 1024),
        arbEvenCuts,
        arbCap,
        ({ bytes }, cuts, cap) => {
          const whole = split([bytes], cap);
          expect(split(chunk(bytes, cuts), cap)).toEqual(whole);
          // One byte at a time is the extreme chunking.
          if (bytes.length < 400) {
            expect(
              split(
                Array.from(bytes, (b) => Uint8Array.of(b)),
                cap,
              ),
            ).toEqual(whole);
          }
          if (whole.error) expect(whole.error).toBe('LINE_TOO_LONG');
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('a 1 MiB line without a newline fails at the next take, and the splitter stays spent (numRuns 20)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4096 }), (cap) => {
        const splitter = new LineSplitter(cap);
        splitter.push(new Uint8Array(1024 * 1024).fill(0x61));
        let first: unknown;
        try {
          splitter.next();
        } catch (error) {
          first = error;
        }
        expect(first).toBeInstanceOf(LineProtocolError);
        expect((first as LineProtocolError).code).toBe('LINE_TOO_LONG');
        // Spent, holding nothing: the rest of the stream cannot be told from the next command.
        expect(splitter.bufferedBytes).toBe(0);
        splitter.push(new TextEncoder().encode('STATS\n'));
        expect(splitter.bufferedBytes).toBe(0);
        expect(() => splitter.next()).toThrow(first as Error);
      }),
      { numRuns: 20 },
    );
  });
});

/** parseCommandLine's verdict on a line: a command, blank, or an error code. */
function parse(line: Uint8Array): KvCommand | null | LineProtocolError {
  try {
    return parseCommandLine(line);
  } catch (error) {
    // The property: nothing but a LineProtocolError escapes the parser.
    if (error instanceof LineProtocolError) return error;
    throw error;
  }
}

/** The lines of a byte stream, as the daemon's splitter cuts them (no cap). */
function linesOf(bytes: Uint8Array): Uint8Array[] {
  return split([bytes], Number.MAX_SAFE_INTEGER).lines.map((hex) => Buffer.from(hex, 'hex'));
}

describe('parseCommandLine over mutated captured lines', () => {
  it('throws only LineProtocolError; a parsed command formats and parses back to itself (numRuns 2000)', () => {
    fc.assert(
      fc.property(arbMutatedEvenly(clientCorpus(), 64 * 1024), ({ bytes }) => {
        for (const line of linesOf(bytes)) {
          const command = parse(line);
          if (command === null || command instanceof LineProtocolError) continue;
          const formatted = formatCommandLine(command);
          expect(formatted.at(-1)).toBe(0x0a);
          // One line: escaping kept every \n of a key or value out of it.
          expect(formatted.indexOf(0x0a)).toBe(formatted.length - 1);
          expect(parse(formatted.subarray(0, -1))).toEqual(command);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('the captured telnet session yields every error code the parser has (1 run)', () => {
    const codes = linesOf(clientCorpus().telnet)
      .map(parse)
      .filter((v): v is LineProtocolError => v instanceof LineProtocolError)
      .map((e) => e.code);
    expect(new Set(codes)).toEqual(
      new Set(['WRONG_ARGUMENTS', 'UNKNOWN_COMMAND', 'BAD_ESCAPE', 'BAD_NUMBER', 'BAD_CHARACTER']),
    );
  });
});

/** The answers a line must get: an ERROR with the parser's code, or one of its command's answers. */
function expectedAnswer(line: Uint8Array): RegExp | null {
  const verdict = parse(line);
  if (verdict === null) return null;
  if (verdict instanceof LineProtocolError) return new RegExp(`^ERROR ${verdict.code} `);
  switch (verdict.op) {
    case 'get':
      // One token as escapeToken writes it: printable ASCII, and bytes >= 0x80
      // raw (not \S: JS counts latin1 0xa0 as a space).
      return /^(VALUE [!-~\x80-\xff]*|NOT_FOUND|ERROR [A-Z_]+ .*)$/;
    case 'set':
      return /^(STORED|ERROR [A-Z_]+ .*)$/;
    case 'delete':
      return /^(DELETED|NOT_FOUND|ERROR [A-Z_]+ .*)$/;
    case 'stats':
      return /^STATS( [a-z_]+=\d+)+$/;
  }
}

/** Short enough that the captured SET of a binary key passes it, long enough for the telnet lines. */
const MAX_LINE = 40;

describe('a real demo daemon over mutated line traffic, sent in random pieces', () => {
  const tmp = tempDir('line-fuzz');
  let daemon: DemoDaemon;
  beforeAll(async () => {
    daemon = await startTestDaemon(tmp.path('kv.sock'), { maxLineBytes: MAX_LINE });
  }, 60_000);
  afterAll(async () => {
    await daemon.close();
    tmp.remove();
  });

  /** Sends the pieces; reads until every line is answered (connection left open) or the daemon closes. */
  async function session(pieces: Uint8Array[], answersDue: number) {
    const socket = connect(daemon.endpoint);
    socket.on('error', () => {});
    await once(socket, 'connect');
    let text = '';
    let ended = false;
    let wake = () => {};
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      wake();
    });
    socket.on('close', () => {
      ended = true;
      wake();
    });
    for (const p of pieces) if (p.length > 0) socket.write(p);
    const answers = () => text.split('\n').slice(0, -1);
    const giveUp = setTimeout(() => wake(), 10_000);
    const started = Date.now();
    while (!ended && answers().length < answersDue && Date.now() - started < 10_000) {
      await new Promise<void>((r) => (wake = r));
    }
    clearTimeout(giveUp);
    socket.destroy();
    await once(socket, 'close').catch(() => {});
    return { answers: answers(), ended, tail: text.slice(text.lastIndexOf('\n') + 1) };
  }

  it('answers every line once and in order; an over-long line is the last, then it closes (numRuns 200)', async () => {
    const before = openFds();
    await fc.assert(
      fc.asyncProperty(
        arbMutatedEvenly(clientCorpus(), MAX_LINE),
        arbEvenCuts,
        async ({ bytes }, cuts) => {
          // A first byte 0x01 makes it a framed connection: not this wire.
          fc.pre(bytes.length > 0 && bytes[0] !== 0x01);
          const { lines, error } = split([bytes], MAX_LINE);
          const due = lines.map((hex) => expectedAnswer(Buffer.from(hex, 'hex')));
          const want = due.filter((d): d is RegExp => d !== null);
          if (error) want.push(/^ERROR LINE_TOO_LONG /);
          const got = await session(chunk(bytes, cuts), want.length);
          expect(got.answers).toHaveLength(want.length);
          for (const [i, a] of got.answers.entries()) expect(a).toMatch(want[i]!);
          expect(got.tail).toBe('');
          if (error) expect(got.ended).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
    // Still serving, and nothing of the sessions left open on either side.
    const after = await session([new TextEncoder().encode('STATS\n')], 1);
    expect(after.answers[0]).toMatch(/^STATS /);
    // The daemon closes its side of the last session on its own time.
    await vi.waitFor(() => expect(openFds()).toBe(before), { timeout: 5000, interval: 5 });
  }, 120_000);
});
