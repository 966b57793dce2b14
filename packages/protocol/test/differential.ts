// What the differential tests of the hand-written codecs share: the result of
// a decode (its message, or 'error' where it throws), and inputs made of
// random bytes or of valid encodings with a few bytes overwritten.
import fc from 'fast-check';
import type { MessageType } from '../src/index.js';

export const outcome = <T>(decode: () => T): T | 'error' => {
  try {
    return decode();
  } catch {
    return 'error';
  }
};

/** Random bytes, and valid encodings with a few bytes overwritten. */
export const randomAndMutated = <T extends object>(type: MessageType<T>, arb: fc.Arbitrary<T>) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc
      .tuple(
        arb,
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 255 })), { minLength: 1, maxLength: 6 }),
      )
      .map(([message, edits]) => {
        const body = type.encode(message).slice();
        for (const [at, value] of edits) if (body.length) body[at % body.length] = value;
        return body;
      }),
  );
