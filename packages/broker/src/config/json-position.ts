// Where a JSON syntax error is, as a line and column a user can jump to.
// Node's JSON.parse says "at position N" for most errors but not all (an
// unexpected token is quoted without a position), so a small scanner of the
// RFC 8259 grammar finds the offset when the message does not carry one.

/** A 1-based line and column (columns count UTF-16 code units, as editors mostly do). */
export interface TextPosition {
  line: number;
  column: number;
}

/** The line and column of `offset` in `text` (an offset past the end is the end). */
export function positionAt(text: string, offset: number): TextPosition {
  const end = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/**
 * Where JSON.parse(text) failed: the offset its message names, else the
 * first offset at which `text` stops being JSON. Undefined when the text is
 * valid JSON (the error came from elsewhere).
 */
export function jsonErrorPosition(text: string, error: unknown): TextPosition | undefined {
  const message = error instanceof Error ? error.message : '';
  const named = /\bposition (\d+)\b/.exec(message);
  const offset = named ? Number(named[1]) : jsonErrorOffset(text);
  return offset === undefined ? undefined : positionAt(text, offset);
}

/** The offset of the first character at which `text` is not JSON, or undefined if it is. */
export function jsonErrorOffset(text: string): number | undefined {
  const scanner = new Scanner(text);
  try {
    scanner.space();
    scanner.value(0);
    scanner.space();
    if (scanner.at < text.length) return scanner.at;
    return undefined;
  } catch (error) {
    if (error instanceof SyntaxAt) return error.offset;
    throw error;
  }
}

class SyntaxAt {
  constructor(readonly offset: number) {}
}

/** Deep enough for any real config; deeper documents are refused, not overflowed. */
const MAX_DEPTH = 512;

class Scanner {
  at = 0;
  constructor(private readonly text: string) {}

  private fail(offset = this.at): never {
    throw new SyntaxAt(offset);
  }

  space(): void {
    while (this.at < this.text.length) {
      const c = this.text[this.at];
      if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') return;
      this.at++;
    }
  }

  private expect(literal: string): void {
    for (const ch of literal) {
      if (this.text[this.at] !== ch) this.fail();
      this.at++;
    }
  }

  value(depth: number): void {
    if (depth > MAX_DEPTH) this.fail();
    const c = this.text[this.at];
    if (c === '{') this.object(depth);
    else if (c === '[') this.array(depth);
    else if (c === '"') this.string();
    else if (c === 't') this.expect('true');
    else if (c === 'f') this.expect('false');
    else if (c === 'n') this.expect('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) this.number();
    else this.fail();
  }

  private object(depth: number): void {
    this.at++;
    this.space();
    if (this.text[this.at] === '}') {
      this.at++;
      return;
    }
    for (;;) {
      if (this.text[this.at] !== '"') this.fail();
      this.string();
      this.space();
      this.expect(':');
      this.space();
      this.value(depth + 1);
      this.space();
      const c = this.text[this.at];
      if (c === '}') {
        this.at++;
        return;
      }
      if (c !== ',') this.fail();
      this.at++;
      this.space();
    }
  }

  private array(depth: number): void {
    this.at++;
    this.space();
    if (this.text[this.at] === ']') {
      this.at++;
      return;
    }
    for (;;) {
      this.value(depth + 1);
      this.space();
      const c = this.text[this.at];
      if (c === ']') {
        this.at++;
        return;
      }
      if (c !== ',') this.fail();
      this.at++;
      this.space();
    }
  }

  private string(): void {
    this.at++;
    for (;;) {
      if (this.at >= this.text.length) this.fail();
      const code = this.text.charCodeAt(this.at);
      if (code === 0x22) {
        this.at++;
        return;
      }
      if (code < 0x20) this.fail();
      if (code !== 0x5c) {
        this.at++;
        continue;
      }
      this.at++;
      const escaped = this.text[this.at];
      if (escaped === 'u') {
        for (let i = 1; i <= 4; i++) {
          if (!/[0-9a-fA-F]/.test(this.text[this.at + i] ?? '')) this.fail(this.at + i);
        }
        this.at += 5;
      } else if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) {
        this.at++;
      } else {
        this.fail();
      }
    }
  }

  private number(): void {
    if (this.text[this.at] === '-') this.at++;
    if (this.text[this.at] === '0') this.at++;
    else this.digits();
    if (this.text[this.at] === '.') {
      this.at++;
      this.digits();
    }
    const e = this.text[this.at];
    if (e === 'e' || e === 'E') {
      this.at++;
      const sign = this.text[this.at];
      if (sign === '+' || sign === '-') this.at++;
      this.digits();
    }
  }

  private digits(): void {
    const start = this.at;
    while (this.at < this.text.length) {
      const c = this.text[this.at]!;
      if (c < '0' || c > '9') break;
      this.at++;
    }
    if (this.at === start) this.fail();
  }
}
