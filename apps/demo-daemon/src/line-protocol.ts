// The legacy line wire, sans-io: cutting a byte stream into capped lines,
// parsing a line into a KvCommand, and formatting replies (and commands, for
// clients) as lines. No sockets here — line-connection.ts does the I/O.
//
//   GET <key>                    → VALUE <value> | NOT_FOUND
//   SET <key> <value> [<ttl-ms>] → STORED
//   DEL <key>                    → DELETED | NOT_FOUND
//   STATS                        → STATS entries=… bytes=… …
//   anything else                → ERROR <CODE> <message>
//
// One command per line, ended by \n (a \r before it is ignored); command
// names are case-insensitive; tokens are separated by spaces or tabs. Keys
// and values are bytes: a token holds any byte except controls, space, DEL
// and `%`, which are written %XX — so every key and value has a spelling.
import type { LegacyClassification } from '@handoff/backend-sdk';
import type { KvCommand, KvReply } from './kv-service.js';
import { MAX_TTL_MS } from './kv-store.js';

/** A line longer than this (before its \n) ends the connection. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

export type LineErrorCode =
  | 'LINE_TOO_LONG'
  | 'UNKNOWN_COMMAND'
  | 'WRONG_ARGUMENTS'
  | 'BAD_CHARACTER'
  | 'BAD_ESCAPE'
  | 'BAD_NUMBER';

/** A line that is not a command. Answered with an ERROR line; only LINE_TOO_LONG ends the connection. */
export class LineProtocolError extends Error {
  override readonly name = 'LineProtocolError';
  readonly code: LineErrorCode;
  constructor(code: LineErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

const NL = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const PERCENT = 0x25;

/**
 * Says whether a connection speaks the line wire, from its first byte: a
 * command starts with a letter. The mux sends every other first byte except
 * the framing byte (0x01) to the line wire too, where it gets an ERROR line;
 * this detector is what would let a legacy wire that *can* start with 0x01
 * claim it first.
 */
export function detectLineProtocol(buf: Uint8Array): LegacyClassification {
  const first = buf[0];
  if (first === undefined) return 'NeedMoreBytes';
  return (first | 0x20) >= 0x61 && (first | 0x20) <= 0x7a ? 'Legacy' : 'NotLegacy';
}

/**
 * Cuts a byte stream into lines without their \n, one line per next() call,
 * so a connection can stop taking lines while its answers pile up and leave
 * the rest here. Holds what was pushed and not yet taken; an unfinished line
 * longer than `maxLineBytes` is an error, and the splitter is spent from
 * then on.
 */
export class LineSplitter {
  /** Bytes pushed and not taken: the first chunk from `at` on, the others whole. */
  private readonly chunks: Uint8Array[] = [];
  private at = 0;
  /** Where the search for the next \n resumes: chunk index, and offset in that chunk. */
  private scanChunk = 0;
  private scanOffset = 0;
  /** Bytes of the line in progress before the scan point: already known to hold no \n. */
  private lineBytes = 0;
  private failure: LineProtocolError | undefined;

  constructor(readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /** Bytes pushed and not yet taken as lines. */
  get bufferedBytes(): number {
    let total = 0;
    for (const chunk of this.chunks) total += chunk.length;
    return total - this.at;
  }

  /**
   * Every byte pushed and not yet taken as a line, in order (a copy), and
   * empties the splitter: what a connection hands a successor daemon at a
   * cut-over (line-cutover.ts).
   */
  takeRest(): Uint8Array {
    const rest = new Uint8Array(this.bufferedBytes);
    let offset = 0;
    for (const [i, chunk] of this.chunks.entries()) {
      const part = i === 0 ? chunk.subarray(this.at) : chunk;
      rest.set(part, offset);
      offset += part.length;
    }
    this.chunks.length = 0;
    this.at = 0;
    this.scanChunk = 0;
    this.scanOffset = 0;
    this.lineBytes = 0;
    return rest;
  }

  /** Adds bytes; they are not looked at until next(). */
  push(chunk: Uint8Array): void {
    if (chunk.length > 0 && !this.failure) this.chunks.push(chunk);
  }

  /**
   * The next whole line, or null until more bytes are pushed. A line that
   * lies in one chunk is a view into it, else a copy. Throws LINE_TOO_LONG
   * once the line in progress passes the cap — at once, without waiting for
   * its end — and from then on; the lines before it were all handed out.
   */
  next(): Uint8Array | null {
    if (this.failure) throw this.failure;
    for (; this.scanChunk < this.chunks.length; this.scanChunk++, this.scanOffset = 0) {
      const chunk = this.chunks[this.scanChunk]!;
      const from = this.scanChunk === 0 ? Math.max(this.at, this.scanOffset) : this.scanOffset;
      const nl = chunk.indexOf(NL, from);
      if (nl === -1) {
        this.lineBytes += chunk.length - from;
        if (this.lineBytes > this.maxLineBytes) this.fail();
        continue;
      }
      if (this.lineBytes + (nl - from) > this.maxLineBytes) this.fail();
      return this.take(nl);
    }
    return null;
  }

  /** Takes the line that ends at `nl` in the chunk being scanned. */
  private take(nl: number): Uint8Array {
    const last = this.chunks[this.scanChunk]!;
    let line: Uint8Array;
    if (this.scanChunk === 0) line = last.subarray(this.at, nl);
    else {
      line = new Uint8Array(this.lineBytes + (nl - this.scanOffset));
      let offset = 0;
      for (let i = 0; i < this.scanChunk; i++) {
        const part = i === 0 ? this.chunks[0]!.subarray(this.at) : this.chunks[i]!;
        line.set(part, offset);
        offset += part.length;
      }
      line.set(last.subarray(0, nl), offset);
      this.chunks.splice(0, this.scanChunk);
    }
    this.at = nl + 1;
    if (this.at === last.length) {
      this.chunks.shift();
      this.at = 0;
    }
    this.scanChunk = 0;
    this.scanOffset = this.at;
    this.lineBytes = 0;
    return line;
  }

  private fail(): never {
    this.chunks.length = 0;
    this.at = this.scanChunk = this.scanOffset = this.lineBytes = 0;
    this.failure = new LineProtocolError(
      'LINE_TOO_LONG',
      `a line is longer than ${this.maxLineBytes} bytes`,
    );
    throw this.failure;
  }
}

const USAGE = {
  GET: 'GET <key>',
  SET: 'SET <key> <value> [<ttl-ms>]',
  DEL: 'DEL <key>',
  STATS: 'STATS',
} as const;

/** Parses one line (without its \n); null for a blank line. Throws LineProtocolError. */
export function parseCommandLine(line: Uint8Array): KvCommand | null {
  const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
  const tokens = splitTokens(line.subarray(0, end));
  const [word, ...args] = tokens;
  if (word === undefined) return null;
  const name = asciiUpper(word);
  switch (name) {
    case 'GET':
      arity(name, args, 1, 1);
      return { op: 'get', key: unescapeToken(args[0]!), waitMs: 0 };
    case 'SET':
      arity(name, args, 2, 3);
      return {
        op: 'set',
        key: unescapeToken(args[0]!),
        value: unescapeToken(args[1]!),
        ttlMs: args[2] === undefined ? 0 : parseTtl(args[2]),
      };
    case 'DEL':
      arity(name, args, 1, 1);
      return { op: 'delete', key: unescapeToken(args[0]!) };
    case 'STATS':
      arity(name, args, 0, 0);
      return { op: 'stats' };
    default:
      throw new LineProtocolError(
        'UNKNOWN_COMMAND',
        `unknown command ${quoted(word)}; commands: ${Object.values(USAGE).join(', ')}`,
      );
  }
}

/** A command as a line, for clients of the line wire. A waiting GET has no spelling there. */
export function formatCommandLine(command: KvCommand): Uint8Array {
  switch (command.op) {
    case 'get':
      if (command.waitMs !== 0) throw new TypeError('the line wire has no waiting GET');
      return line('GET ', escapeToken(command.key));
    case 'set': {
      const ttl = command.ttlMs === 0 ? '' : ` ${command.ttlMs}`;
      return line('SET ', escapeToken(command.key), ' ', escapeToken(command.value), ttl);
    }
    case 'delete':
      return line('DEL ', escapeToken(command.key));
    case 'stats':
      return line('STATS');
  }
}

/** A reply as a line. */
export function formatReplyLine(reply: KvReply): Uint8Array {
  switch (reply.result) {
    case 'found':
      return line('VALUE ', escapeToken(reply.value));
    case 'notFound':
      return line('NOT_FOUND');
    case 'stored':
      return line('STORED');
    case 'deleted':
      return line('DELETED');
    case 'stats': {
      const s = reply.stats;
      const fields: [string, number | bigint][] = [
        ['entries', s.entries],
        ['bytes', s.bytes],
        ['max_entries', s.maxEntries],
        ['max_bytes', s.maxBytes],
        ['hits', s.hits],
        ['misses', s.misses],
        ['sets', s.sets],
        ['deletes', s.deletes],
        ['expired', s.expired],
        ['evicted', s.evicted],
        ['connections', s.connections],
        ['handoffs', s.handoffs],
        ['uptime_ms', s.uptimeMs],
        ['waiting', s.waiting],
      ];
      return line('STATS ', fields.map(([k, v]) => `${k}=${v}`).join(' '));
    }
    case 'failure':
      return formatErrorLine(reply.code, reply.message);
  }
}

/** `ERROR <CODE> <message>`; control characters in the message become "?", so it stays one line. */
export function formatErrorLine(code: string, message: string): Uint8Array {
  let safe = '';
  for (const c of message) safe += c < ' ' || c === '\x7f' ? '?' : c;
  return line('ERROR ', code, ' ', safe);
}

function splitTokens(bytes: Uint8Array): Uint8Array[] {
  const tokens: Uint8Array[] = [];
  let start = -1;
  for (let i = 0; i <= bytes.length; i++) {
    const b = i < bytes.length ? bytes[i] : SPACE;
    const separator = b === SPACE || b === TAB;
    if (separator && start !== -1) {
      tokens.push(bytes.subarray(start, i));
      start = -1;
    } else if (!separator && start === -1) start = i;
  }
  return tokens;
}

function arity(name: keyof typeof USAGE, args: Uint8Array[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    throw new LineProtocolError(
      'WRONG_ARGUMENTS',
      `${name} takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, not ${args.length}; usage: ${USAGE[name]}`,
    );
  }
}

/** A decimal TTL in milliseconds, 0 to 2^32 − 1 (digits only: no sign, no exponent). */
function parseTtl(token: Uint8Array): number {
  // Ten digits hold 2^32 − 1; a longer token is refused without reading it.
  let value = token.length <= 10 ? 0 : Number.NaN;
  for (let i = 0; i < token.length && !Number.isNaN(value); i++) {
    const digit = token[i]! - 0x30;
    value = digit >= 0 && digit <= 9 ? value * 10 + digit : Number.NaN;
  }
  if (!(value <= MAX_TTL_MS)) {
    throw new LineProtocolError(
      'BAD_NUMBER',
      `ttl ${quoted(token)} is not a number of milliseconds from 0 to ${MAX_TTL_MS}`,
    );
  }
  return value;
}

/** Decodes %XX escapes; a raw control byte, or a % without two hex digits, is an error. */
function unescapeToken(token: Uint8Array): Uint8Array {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (let i = 0; i < token.length; i++) {
    const b = token[i]!;
    if (b === PERCENT) {
      const hi = hexValue(token[i + 1]);
      const lo = hexValue(token[i + 2]);
      if (hi < 0 || lo < 0) {
        throw new LineProtocolError(
          'BAD_ESCAPE',
          `a % at byte ${i} of a token is not followed by two hex digits`,
        );
      }
      out[n++] = (hi << 4) | lo;
      i += 2;
    } else if (b < SPACE || b === 0x7f) {
      throw new LineProtocolError(
        'BAD_CHARACTER',
        `byte 0x${hex2(b)} is not allowed in a token; write it as %${hex2(b)}`,
      );
    } else out[n++] = b;
  }
  return out.subarray(0, n);
}

/** Bytes a token cannot hold raw (controls, space, DEL, %) become %XX; the rest, UTF-8 included, stay. */
export function escapeToken(bytes: Uint8Array): Uint8Array {
  let escapes = 0;
  for (const b of bytes) if (mustEscape(b)) escapes++;
  if (escapes === 0) return bytes;
  const out = new Uint8Array(bytes.length + 2 * escapes);
  let n = 0;
  for (const b of bytes) {
    if (mustEscape(b)) {
      out[n++] = PERCENT;
      out[n++] = HEX[b >> 4]!;
      out[n++] = HEX[b & 0xf]!;
    } else out[n++] = b;
  }
  return out;
}

const HEX = new TextEncoder().encode('0123456789ABCDEF');
const mustEscape = (b: number) => b <= SPACE || b === 0x7f || b === PERCENT;

function hexValue(b: number | undefined): number {
  if (b === undefined) return -1;
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  const lower = b | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

const encoder = new TextEncoder();

/** Joins text and byte parts into one line ending in \n. */
function line(...parts: (string | Uint8Array)[]): Uint8Array {
  const bytes = parts.map((p) => (typeof p === 'string' ? encoder.encode(p) : p));
  const out = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0) + 1);
  let at = 0;
  for (const b of bytes) {
    out.set(b, at);
    at += b.length;
  }
  out[at] = NL;
  return out;
}

/** ASCII-uppercases a short command word; other bytes stay, so no stray byte matches a name. */
function asciiUpper(word: Uint8Array): string {
  if (word.length > 8) return '';
  let name = '';
  for (const b of word) name += String.fromCharCode(b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
  return name;
}

/** A client's token in an error message: printable ASCII kept, every other byte %XX, cut at 40 bytes. */
function quoted(token: Uint8Array): string {
  let shown = '';
  for (const b of token.subarray(0, 40)) {
    shown += b > SPACE && b < 0x7f && b !== PERCENT ? String.fromCharCode(b) : `%${hex2(b)}`;
  }
  return `"${shown}${token.length > 40 ? '…' : ''}"`;
}

const hex2 = (b: number) => b.toString(16).padStart(2, '0').toUpperCase();
