// json-position.ts: the line and column of a JSON syntax error, from
// JSON.parse's "position N" or, when its message has none, from the scanner.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonErrorOffset, jsonErrorPosition, positionAt } from '../../src/config/json-position.js';

function parseError(text: string): unknown {
  try {
    JSON.parse(text);
  } catch (error) {
    return error;
  }
  throw new Error(`${JSON.stringify(text)} parsed`);
}

describe('jsonErrorPosition', () => {
  it.each([
    // A trailing comma: V8 names the position of the closing brace.
    ['{\n  "name": "demo",\n}\n', { line: 3, column: 1 }],
    // A missing comma between members, on line 3.
    ['{\n  "a": 1\n  "b": 2\n}', { line: 3, column: 3 }],
    // An unexpected token: V8's message quotes the text and gives no position.
    ['{\n  "a":\n    tru}', { line: 3, column: 8 }],
    // The end of the input: the position just past the last character.
    ['{"a": [1, 2', { line: 1, column: 12 }],
    ['', { line: 1, column: 1 }],
  ])('%j is at %j', (text, expected) => {
    expect(jsonErrorPosition(text, parseError(text))).toEqual(expected);
  });

  it('uses the scanner when the message names no position', () => {
    const text = '{"a":\n tru}';
    expect((parseError(text) as Error).message).not.toMatch(/position/);
    expect(jsonErrorPosition(text, parseError(text))).toEqual({ line: 2, column: 5 });
  });

  it('positionAt counts lines from 1 and columns from 1', () => {
    expect(positionAt('ab\ncd', 0)).toEqual({ line: 1, column: 1 });
    expect(positionAt('ab\ncd', 3)).toEqual({ line: 2, column: 1 });
    expect(positionAt('ab\ncd', 99)).toEqual({ line: 2, column: 3 });
  });
});

describe('jsonErrorOffset (property)', () => {
  it('agrees with JSON.parse on whether any text is JSON', () => {
    expect.hasAssertions();
    const nearJson = fc.oneof(
      fc.json(),
      fc.string(),
      // Valid JSON with one character dropped, doubled or replaced.
      fc
        .tuple(fc.json(), fc.nat(), fc.constantFrom('', ',', '}', ']', '"', ':', 'x', ' '))
        .map(([text, at, ch]) => {
          const i = text.length === 0 ? 0 : at % text.length;
          return text.slice(0, i) + ch + text.slice(i + 1);
        }),
    );
    fc.assert(
      fc.property(nearJson, (text) => {
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        const offset = jsonErrorOffset(text);
        expect(offset === undefined).toBe(valid);
        if (offset !== undefined) expect(offset).toBeLessThanOrEqual(text.length);
      }),
      { numRuns: 2000 },
    );
  });

  it('finds the same offset as V8 where V8 names one', () => {
    expect.hasAssertions();
    fc.assert(
      fc.property(
        fc.tuple(fc.json(), fc.nat(), fc.constantFrom(',', '}', ']', ':', '"')),
        ([text, at, ch]) => {
          const i = text.length === 0 ? 0 : at % text.length;
          const broken = text.slice(0, i) + ch + text.slice(i);
          let message = '';
          try {
            JSON.parse(broken);
            return;
          } catch (error) {
            message = (error as Error).message;
          }
          const named = /position (\d+)/.exec(message);
          if (named) expect(jsonErrorOffset(broken)).toBe(Number(named[1]));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
