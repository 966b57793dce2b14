import { ErrorCode, VERSION_PATTERN } from '@handoff/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseServiceDefinition, type ServiceDefinition } from '../src/config/definition.js';
import {
  compareVersions,
  DEFAULT_BLOCKED_RETRY_AFTER_MS,
  selectDefinition,
} from '../src/version-policy.js';

function def(
  version: string,
  extra: Record<string, unknown> = {},
  name = 'demo',
): ServiceDefinition {
  return parseServiceDefinition(
    { name, version, command: '/usr/bin/true', ...extra },
    `/cfg/${name}-${version}.json`,
  );
}

function pick(defs: ServiceDefinition[], wanted: string, name = 'demo') {
  const r = selectDefinition(defs, name, wanted);
  return r.ok ? r.definition.version : r;
}

const numeric = fc.oneof(
  fc.nat({ max: 20 }).map(String),
  fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
);
const identifier = fc.oneof(
  numeric,
  fc.stringMatching(/^[a-z0-9]{1,6}$/),
  fc.constantFrom('alpha', 'beta', 'rc', 'x1', '1x'),
);
const version = fc
  .tuple(numeric, numeric, numeric, fc.array(identifier, { maxLength: 4 }))
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre.length > 0 ? `-${pre.join('.')}` : ''}`);
/** Versions drawn from a small pool so that ties and near-ties are common. */
const nearVersion = fc
  .tuple(
    fc.constantFrom('0', '1', '2', '10'),
    fc.constantFrom('0', '1', '9', '10'),
    fc.constantFrom('0', '1'),
    fc.array(fc.constantFrom('1', '2', '11', 'a', 'b', 'rc'), { maxLength: 3 }),
  )
  .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre.length > 0 ? `-${pre.join('.')}` : ''}`);
const anyVersion = fc.oneof(version, nearVersion);

describe('compareVersions', () => {
  it('orders the semver.org precedence example', () => {
    const chain = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '1.0.1',
      '1.1.0',
      '1.10.0',
      '2.0.0',
      '10.0.0',
    ];
    for (let i = 0; i < chain.length; i++) {
      for (let j = 0; j < chain.length; j++) {
        expect(compareVersions(chain[i]!, chain[j]!), `${chain[i]} vs ${chain[j]}`).toBe(
          Math.sign(i - j),
        );
      }
    }
  });

  it('compares numbers of any size as numbers, leading zeros included', () => {
    expect(compareVersions('99999999999999999999.0.0', '100000000000000000000.0.0')).toBe(-1);
    expect(compareVersions('1.02.3', '1.2.3')).toBe(0);
    expect(compareVersions('1.0.0-rc.010', '1.0.0-rc.9')).toBe(1);
  });

  it('throws RangeError for something that is not a version', () => {
    expect(() => compareVersions('1.2', '1.2.3')).toThrow(RangeError);
    expect(() => compareVersions('1.2.3', 'v1.2.3')).toThrow(/not a version/);
  });

  it('accepts exactly what VERSION_PATTERN accepts', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), anyVersion, fc.stringMatching(/^[0-9a-z.-]{0,12}$/)),
        (s) => {
          let threw = false;
          try {
            compareVersions(s, '1.0.0');
          } catch (error) {
            expect(error).toBeInstanceOf(RangeError);
            threw = true;
          }
          expect(threw).toBe(!VERSION_PATTERN.test(s));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('is reflexive and antisymmetric', () => {
    fc.assert(
      fc.property(anyVersion, anyVersion, (a, b) => {
        expect(compareVersions(a, a)).toBe(0);
        expect(compareVersions(a, b)).toBe(-compareVersions(b, a) || 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(anyVersion, anyVersion, anyVersion, (a, b, c) => {
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0) {
          expect(compareVersions(a, c)).toBeLessThanOrEqual(0);
        }
        if (compareVersions(a, b) === 0 && compareVersions(b, c) === 0) {
          expect(compareVersions(a, c)).toBe(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('sorts consistently: every pair of a sorted list is in order', () => {
    fc.assert(
      fc.property(fc.array(anyVersion, { maxLength: 12 }), (list) => {
        const sorted = [...list].sort(compareVersions);
        for (let i = 0; i < sorted.length; i++) {
          for (let j = i + 1; j < sorted.length; j++) {
            expect(compareVersions(sorted[i]!, sorted[j]!)).toBeLessThanOrEqual(0);
          }
        }
      }),
    );
  });

  it('agrees with numeric tuple order on releases, and puts a prerelease below its release', () => {
    fc.assert(
      fc.property(
        fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 25n }), fc.nat(50), fc.nat(50)),
        fc.tuple(fc.bigInt({ min: 0n, max: 10n ** 25n }), fc.nat(50), fc.nat(50)),
        fc.array(identifier, { minLength: 1, maxLength: 3 }),
        (x, y, pre) => {
          const vx = x.join('.');
          const vy = y.join('.');
          const expected =
            x[0] !== y[0]
              ? x[0] < y[0]
                ? -1
                : 1
              : Math.sign(x[1] - y[1]) || Math.sign(x[2] - y[2]);
          expect(compareVersions(vx, vy)).toBe(expected);
          expect(compareVersions(`${vx}-${pre.join('.')}`, vx)).toBe(-1);
        },
      ),
    );
  });
});

describe('selectDefinition', () => {
  it('is SERVICE_UNKNOWN when no definition has the name', () => {
    const r = selectDefinition([def('1.0.0')], 'other', '1.0.0');
    expect(r).toMatchObject({ ok: false, code: ErrorCode.SERVICE_UNKNOWN });
    expect(r.ok === false && r.retryAfterMs).toBe(undefined);
    expect(selectDefinition([], 'demo', '1.0.0')).toMatchObject({
      ok: false,
      code: ErrorCode.SERVICE_UNKNOWN,
      reason: 'no service named "demo"',
    });
  });

  it('prefers the exact version over a newer compatible one', () => {
    expect(pick([def('1.5.0'), def('1.2.0'), def('1.9.9')], '1.2.0')).toBe('1.2.0');
  });

  it('otherwise picks the highest version with the same major that is at least the one wanted', () => {
    const defs = [def('1.3.0'), def('1.10.0'), def('1.4.2'), def('2.0.0'), def('1.0.0')];
    expect(pick(defs, '1.2.0')).toBe('1.10.0');
    expect(pick(defs, '1.10.0')).toBe('1.10.0');
    expect(pick(defs, '2.0.0')).toBe('2.0.0');
  });

  it('is VERSION_BLOCKED without a retry hint when nothing compatible exists', () => {
    const defs = [def('1.3.0'), def('2.1.0')];
    for (const wanted of ['1.4.0', '3.0.0', '0.9.0', '2.1.1']) {
      const r = selectDefinition(defs, 'demo', wanted);
      expect(r, wanted).toMatchObject({ ok: false, code: ErrorCode.VERSION_BLOCKED });
      expect(r.ok === false && r.retryAfterMs, wanted).toBe(undefined);
      expect(r.ok === false && r.reason).toContain('available: 1.3.0, 2.1.0');
    }
  });

  it('blocks a version below minVersion with a retry hint', () => {
    const defs = [def('1.8.0', { minVersion: '1.4.0' })];
    expect(pick(defs, '1.4.0')).toBe('1.8.0');
    expect(selectDefinition(defs, 'demo', '1.3.9')).toEqual({
      ok: false,
      code: ErrorCode.VERSION_BLOCKED,
      reason: 'demo@1.8.0: 1.3.9 is below minVersion 1.4.0',
      retryAfterMs: DEFAULT_BLOCKED_RETRY_AFTER_MS,
    });
    // Prerelease of the minimum is still below it.
    expect(pick([def('2.0.0', { minVersion: '2.0.0' })], '2.0.0-rc.1')).toMatchObject({
      code: ErrorCode.VERSION_BLOCKED,
      retryAfterMs: 30_000,
    });
    // A policy on a definition of another major still explains the refusal.
    expect(pick([def('2.0.0', { minVersion: '2.0.0' })], '1.0.0')).toMatchObject({
      code: ErrorCode.VERSION_BLOCKED,
      retryAfterMs: 30_000,
    });
  });

  it('blocks a version not in allowVersions, and takes a custom retry hint', () => {
    const defs = [def('1.8.0', { allowVersions: ['1.2.0', '1.8.0'] })];
    expect(pick(defs, '1.2.0')).toBe('1.8.0');
    expect(pick(defs, '1.8.0')).toBe('1.8.0');
    expect(selectDefinition(defs, 'demo', '1.5.0', { retryAfterMs: 5 })).toEqual({
      ok: false,
      code: ErrorCode.VERSION_BLOCKED,
      reason: 'demo@1.8.0: 1.5.0 is not in allowVersions [1.2.0, 1.8.0]',
      retryAfterMs: 5,
    });
  });

  it('applies each definition its own policy', () => {
    const defs = [def('1.2.0', { minVersion: '1.1.0' }), def('1.5.0')];
    expect(pick(defs, '1.0.0')).toBe('1.5.0');
    expect(pick(defs, '1.2.0')).toBe('1.2.0');
    // The exact definition refuses; a compatible newer one serves instead.
    expect(pick([def('1.2.0', { allowVersions: ['1.1.0'] }), def('1.3.0')], '1.2.0')).toBe('1.3.0');
  });

  it('matches a prerelease only within the same major.minor.patch', () => {
    const defs = [def('1.2.0-rc.2'), def('1.2.0'), def('1.3.0'), def('1.2.0-rc.1')];
    expect(pick(defs, '1.2.0-rc.1')).toBe('1.2.0-rc.1');
    expect(pick(defs, '1.2.0-beta')).toBe('1.2.0');
    expect(pick([def('1.3.0')], '1.2.0-rc.1')).toMatchObject({ code: ErrorCode.VERSION_BLOCKED });
    expect(pick([def('1.2.0-rc.1')], '1.2.0-rc.2')).toMatchObject({
      code: ErrorCode.VERSION_BLOCKED,
    });
    // A prerelease definition does not answer a release request of another line.
    expect(pick([def('1.3.0-beta.1')], '1.2.0')).toMatchObject({ code: ErrorCode.VERSION_BLOCKED });
    expect(pick([def('1.3.0-beta.1'), def('1.2.5')], '1.2.0')).toBe('1.2.5');
  });

  it('treats each 0.y minor (and 0.0.z patch) as its own compatibility line', () => {
    expect(pick([def('0.2.5'), def('0.3.0')], '0.2.1')).toBe('0.2.5');
    expect(pick([def('0.3.0')], '0.2.1')).toMatchObject({ code: ErrorCode.VERSION_BLOCKED });
    expect(pick([def('0.0.4')], '0.0.3')).toMatchObject({ code: ErrorCode.VERSION_BLOCKED });
    expect(pick([def('0.0.3')], '0.0.3')).toBe('0.0.3');
  });

  it('matches by precedence, so a leading-zero request finds its version', () => {
    expect(pick([def('1.2.3')], '01.2.3')).toBe('1.2.3');
  });

  it('refuses a wanted version that is not one', () => {
    expect(selectDefinition([def('1.0.0')], 'demo', 'latest')).toMatchObject({
      ok: false,
      code: ErrorCode.VERSION_BLOCKED,
      reason: '"latest" is not a version',
    });
  });

  it('only ever picks a definition that serves the request (property)', () => {
    const defsArb = fc.uniqueArray(nearVersion, { maxLength: 6 }).map((vs) =>
      vs.flatMap((v) => {
        try {
          return [def(v)];
        } catch {
          return []; // e.g. a leading-zero prerelease the config refuses
        }
      }),
    );
    fc.assert(
      fc.property(defsArb, nearVersion, (defs, wanted) => {
        const r = selectDefinition(defs, 'demo', wanted);
        const exact = defs.find((d) => compareVersions(d.version, wanted) === 0);
        if (exact !== undefined) {
          expect(r).toEqual({ ok: true, definition: exact });
          return;
        }
        if (!r.ok) {
          expect(r.code).toBe(
            defs.length === 0 ? ErrorCode.SERVICE_UNKNOWN : ErrorCode.VERSION_BLOCKED,
          );
          return;
        }
        const chosen = r.definition.version;
        expect(compareVersions(chosen, wanted)).toBe(1);
        expect(chosen.split('.')[0]).toBe(wanted.split('.')[0]);
        // Nothing newer than the chosen one would have served as well.
        for (const d of defs) {
          if (compareVersions(d.version, chosen) > 0) {
            expect(pick([d], wanted)).toMatchObject({ ok: false });
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
