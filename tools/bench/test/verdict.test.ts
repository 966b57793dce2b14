// verdictOf: a missed target is only ever "out of reach" when every part
// missed was missed by its same-run floor too, and never becomes "met".
import { describe, expect, it } from 'vitest';
import { verdictOf } from '../src/verdict.ts';

describe('verdictOf', () => {
  it('is met only when every part is met, whatever the floors say', () => {
    expect(verdictOf([{ met: true }, { met: true, reachable: false }])).toBe('met');
    expect(verdictOf([])).toBe('met');
  });

  it('is out of reach only when every missed part was out of reach', () => {
    expect(verdictOf([{ met: true }, { met: false, reachable: false }])).toBe('out_of_reach');
    expect(
      verdictOf([
        { met: false, reachable: false },
        { met: false, reachable: false },
      ]),
    ).toBe('out_of_reach');
    // One missed part its floor allowed: a plain miss.
    expect(
      verdictOf([
        { met: false, reachable: false },
        { met: false, reachable: true },
      ]),
    ).toBe('missed');
    // No floor stated is no excuse.
    expect(verdictOf([{ met: false }])).toBe('missed');
  });

  it('is undecidable when a missed part was within its A/A drift and the rest out of reach', () => {
    expect(verdictOf([{ met: true }, { met: false, resolvable: false }])).toBe('undecidable');
    expect(
      verdictOf([
        { met: false, reachable: false },
        { met: false, resolvable: false },
      ]),
    ).toBe('undecidable');
    expect(verdictOf([{ met: false }, { met: false, resolvable: false }])).toBe('missed');
    expect(verdictOf([{ met: false, resolvable: true }])).toBe('missed');
  });
});
