// verdictOf: a missed target is only ever "out of reach" when every part
// missed was missed by its same-run floor too, and never becomes "met".
import { describe, expect, it } from 'vitest';
import { beyondAaDrift, verdictOf } from '../src/verdict.ts';

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

describe('beyondAaDrift', () => {
  it('compares distances from 1 on either side, the A/A control in either direction', () => {
    // Two identical routes 1.4x apart: ours 1.2x above the baseline cannot be told from noise.
    expect(beyondAaDrift(1.2, 1.4)).toBe(false);
    expect(beyondAaDrift(1.2, 1 / 1.4)).toBe(false);
    // ...but 1.5x above can, and so can 1.5x below.
    expect(beyondAaDrift(1.5, 1.4)).toBe(true);
    expect(beyondAaDrift(1 / 1.5, 1.4)).toBe(true);
    // A slow side 0.93x against an A/A control of 0.97x: beyond it.
    expect(beyondAaDrift(0.93, 0.97)).toBe(true);
    expect(beyondAaDrift(0.93, 1.08)).toBe(false);
  });

  it('is never beyond a drift it equals, and an exact A/A leaves only exact ratios inside', () => {
    expect(beyondAaDrift(1.25, 0.8)).toBe(false);
    expect(beyondAaDrift(1, 1)).toBe(false);
    expect(beyondAaDrift(1.01, 1)).toBe(true);
  });
});
