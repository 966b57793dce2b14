import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidTraceparent, MAX_TRACESTATE_BYTES, traceContext } from '../src/trace-context.js';

const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context from a client frame', () => {
  it('keeps a valid traceparent and its tracestate', () => {
    expect(traceContext({ traceparent: valid, tracestate: 'vendor=abc' })).toEqual({
      traceparent: valid,
      tracestate: 'vendor=abc',
    });
  });

  it.each([
    ['uppercase hex', valid.toUpperCase()],
    ['version ff', `ff${valid.slice(2)}`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['all-zero parent id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['short', valid.slice(0, -1)],
    ['trailing data', `${valid}-extra`],
  ])('drops a traceparent with %s (and its tracestate)', (_why, traceparent) => {
    expect(isValidTraceparent(traceparent)).toBe(false);
    expect(traceContext({ traceparent, tracestate: 'a=b' })).toEqual({
      traceparent: '',
      tracestate: '',
    });
  });

  it('drops an oversize or non-printable tracestate but keeps the traceparent', () => {
    expect(
      traceContext({ traceparent: valid, tracestate: 'a'.repeat(MAX_TRACESTATE_BYTES + 1) }),
    ).toEqual({ traceparent: valid, tracestate: '' });
    expect(traceContext({ traceparent: valid, tracestate: 'a=\nb' })).toEqual({
      traceparent: valid,
      tracestate: '',
    });
  });

  it('never passes on anything but a well-formed value (random strings)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.string({ maxLength: 600 }), (tp, ts) => {
        const out = traceContext({ traceparent: tp, tracestate: ts });
        if (out.traceparent !== '') expect(isValidTraceparent(out.traceparent)).toBe(true);
        expect(out.tracestate.length).toBeLessThanOrEqual(MAX_TRACESTATE_BYTES);
        if (out.traceparent === '') expect(out.tracestate).toBe('');
      }),
      { numRuns: 2000 },
    );
  });
});
