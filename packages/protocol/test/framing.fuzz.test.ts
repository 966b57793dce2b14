// Property tests of the framing layer and Hello validation over mutated
// captured traffic. The corpora are bytes real components wrote (see
// fixtures/corpus/framed-sessions.json, kept fresh by backend-sdk's
// mux.fuzz.test.ts, and broker's client-traffic.json, kept fresh by
// broker's control-channel.fuzz.test.ts).
import { readFileSync } from 'node:fs';
import { arbCuts, arbMutated, type CorpusFile, chunk, fromHex } from '@handoff/testkit/mutations';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CONTROL_PAYLOAD_PROTOCOL,
  encodeFramed,
  type Frame,
  FrameDecoder,
  FramingError,
  Hello,
  MAX_FRAME_BYTES,
  MAX_HELLO_BYTES,
  tryDecodeFramed,
  validateHello,
} from '../src/index.js';

const load = (url: URL): Record<string, Uint8Array> =>
  Object.fromEntries(
    Object.entries((JSON.parse(readFileSync(url, 'utf8')) as CorpusFile).entries).map(([k, v]) => [
      k,
      fromHex(v),
    ]),
  );
const corpus = {
  ...load(new URL('./fixtures/corpus/framed-sessions.json', import.meta.url)),
  ...load(new URL('../../broker/test/fixtures/corpus/client-traffic.json', import.meta.url)),
};

type Outcome = { frames: Frame[]; error: string | null; buffered: number };

/** Everything a decoder makes of `pieces`: frames, then the typed error (or what is left buffered). */
function decodeAll(pieces: Uint8Array[], maxFrameBytes: number): Outcome {
  const decoder = new FrameDecoder({ maxFrameBytes, copyPayloads: true });
  const frames: Frame[] = [];
  for (const piece of pieces) {
    try {
      frames.push(...decoder.push(piece));
    } catch (error) {
      // The property: nothing but a FramingError with a code escapes.
      if (!(error instanceof FramingError)) throw error;
      return { frames, error: error.code, buffered: 0 };
    }
  }
  try {
    decoder.end();
  } catch (error) {
    if (!(error instanceof FramingError)) throw error;
    return { frames, error: error.code, buffered: error.buffered ?? 0 };
  }
  return { frames, error: null, buffered: 0 };
}

describe('FrameDecoder over mutated captured traffic', () => {
  it('throws only FramingError and decodes the same frames however the stream is chunked (numRuns 1000)', () => {
    fc.assert(
      fc.property(
        arbMutated(corpus, MAX_HELLO_BYTES),
        arbCuts,
        fc.constantFrom(MAX_HELLO_BYTES, MAX_FRAME_BYTES),
        ({ bytes }, cuts, cap) => {
          const whole = decodeAll([bytes], cap);
          expect(decodeAll(chunk(bytes, cuts), cap)).toEqual(whole);
          // Byte at a time: the hardest chunking.
          if (bytes.length < 400) {
            expect(
              decodeAll(
                chunk(
                  bytes,
                  [...Array(bytes.length).keys()].map((i) => i / bytes.length),
                ),
                cap,
              ),
            ).toEqual(whole);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never buffers a body the header announced over the cap (numRuns 300)', () => {
    fc.assert(
      fc.property(arbMutated(corpus, MAX_HELLO_BYTES), ({ bytes }) => {
        const decoder = new FrameDecoder({ maxFrameBytes: MAX_HELLO_BYTES });
        for (const piece of chunk(bytes, [0.1, 0.3, 0.5, 0.7, 0.9])) {
          try {
            decoder.push(piece);
          } catch {
            break;
          }
          expect(decoder.bufferedBytes).toBeLessThanOrEqual(5 + MAX_HELLO_BYTES);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a header announcing 0, cap-1, cap, cap+1 or 2^32-1 bytes is judged from its 5 bytes (5 cases)', () => {
    for (const length of [
      0,
      MAX_HELLO_BYTES - 1,
      MAX_HELLO_BYTES,
      MAX_HELLO_BYTES + 1,
      0xffff_ffff,
    ]) {
      const header = new Uint8Array([1, 0, 0, 0, 0]);
      new DataView(header.buffer).setUint32(1, length, true);
      const decoder = new FrameDecoder({ maxFrameBytes: MAX_HELLO_BYTES });
      let code: string | null = null;
      try {
        decoder.push(header);
      } catch (error) {
        code = (error as FramingError).code;
      }
      expect(code).toBe(length > MAX_HELLO_BYTES ? 'FRAME_TOO_LARGE' : null);
      // Only the header is held: nothing was allocated for the body yet...
      if (code === null && length > 0) expect(decoder.bufferedBytes).toBe(5);
    }
  });
});

describe('tryDecodeFramed / encodeFramed over mutated captured traffic', () => {
  it('only FramingError escapes; what decodes re-encodes to a frame that decodes the same (numRuns 800)', () => {
    fc.assert(
      fc.property(arbMutated(corpus, MAX_HELLO_BYTES), ({ bytes }) => {
        let decoded: ReturnType<typeof tryDecodeFramed>;
        try {
          decoded = tryDecodeFramed(bytes, { maxFrameBytes: MAX_HELLO_BYTES });
        } catch (error) {
          expect(error).toBeInstanceOf(FramingError);
          return;
        }
        if (decoded === null) return;
        expect(decoded.consumed).toBeLessThanOrEqual(bytes.length);
        const again = tryDecodeFramed(encodeFramed(decoded.frame));
        expect(again?.frame).toEqual(decoded.frame);
      }),
      { numRuns: 800 },
    );
  });
});

describe('validateHello over mutated captured Hellos (connectService)', () => {
  const hello = corpus['client-hello']!;
  it('the captured Hello passes validation (1 run)', () => {
    const frame = tryDecodeFramed(hello)!.frame;
    expect(frame.payloadProtocol).toBe(CONTROL_PAYLOAD_PROTOCOL);
    expect(validateHello(Hello.decode(frame.payload))).toEqual({ ok: true });
  });

  it('decode throws only FramingError and validation returns a verdict, never throws (numRuns 800)', () => {
    fc.assert(
      fc.property(arbMutated({ hello }, MAX_HELLO_BYTES), fc.option(fc.nat()), ({ bytes }, pid) => {
        let frame: Frame;
        try {
          const decoded = tryDecodeFramed(bytes, { maxFrameBytes: MAX_HELLO_BYTES });
          if (decoded === null) return;
          frame = decoded.frame;
        } catch (error) {
          expect(error).toBeInstanceOf(FramingError);
          return;
        }
        let parsed: Hello;
        try {
          parsed = Hello.decode(frame.payload);
        } catch (error) {
          expect(error).toBeInstanceOf(FramingError);
          return;
        }
        const verdict = validateHello(parsed, pid === null ? {} : { peerPid: pid });
        if (!verdict.ok) expect(typeof verdict.code).toBe('number');
        // An accepted Hello still round-trips through the codec unchanged.
        if (verdict.ok) expect(Hello.decode(Hello.encode(parsed))).toEqual(parsed);
      }),
      { numRuns: 800 },
    );
  });
});
