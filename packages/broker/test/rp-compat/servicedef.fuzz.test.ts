// Property tests of the `.servicedef` decoder and mapping (src/rp-compat/):
// random bytes, and the protoc-encoded golden files mutated. Nothing but a
// ServicedefError escapes either; a decode that succeeds never holds more
// than the caps allow; a decoded golden re-decodes the same (no hidden state).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arbMutated } from '@handoff/testkit/mutations';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ServicedefError } from '../../src/rp-compat/errors.js';
import { servicedefToDefinition } from '../../src/rp-compat/servicedef.js';
import {
  decodeServicedef,
  MAX_SERVICEDEF_LIST,
  MAX_SERVICEDEF_STRING_BYTES,
  type RpServicedef,
} from '../../src/rp-compat/servicedef-wire.js';

const fixtures = join(import.meta.dirname, 'fixtures');
const corpus = Object.fromEntries(
  ['demo-echo', 'private-default', 'explicit-instance'].map((name) => [
    name,
    new Uint8Array(readFileSync(join(fixtures, `${name}.servicedef`))),
  ]),
);

/** Decodes and maps; returns the outcome, rethrowing anything that is not a ServicedefError. */
function outcome(bytes: Uint8Array): RpServicedef | ServicedefError {
  let def: RpServicedef;
  try {
    def = decodeServicedef(bytes);
  } catch (error) {
    if (error instanceof ServicedefError) return error;
    throw error;
  }
  const strings = [
    def.serviceName,
    def.binaryPath,
    def.explicitInstance,
    def.perVersionBinaryDir,
    def.minVersion,
    ...def.versionAllowList,
    ...def.labels.keys(),
    ...def.labels.values(),
  ];
  for (const s of strings)
    expect(Buffer.byteLength(s)).toBeLessThanOrEqual(MAX_SERVICEDEF_STRING_BYTES);
  expect(def.versionAllowList.length).toBeLessThanOrEqual(MAX_SERVICEDEF_LIST);
  expect(def.labels.size).toBeLessThanOrEqual(MAX_SERVICEDEF_LIST);
  expect(Number.isInteger(def.isolation)).toBe(true);
  try {
    servicedefToDefinition(def, `/cfg/${def.serviceName}.servicedef`);
  } catch (error) {
    if (!(error instanceof ServicedefError)) throw error;
  }
  return def;
}

describe('servicedef decoder fuzz', () => {
  it('random bytes: a record or a ServicedefError, nothing else', () => {
    let refused = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        if (outcome(bytes) instanceof ServicedefError) refused++;
      }),
      { numRuns: 3000 },
    );
    expect(refused).toBeGreaterThan(0);
  });

  it('mutated golden files: a record or a ServicedefError, and decoding is deterministic', () => {
    let decoded = 0;
    let refused = 0;
    fc.assert(
      fc.property(arbMutated(corpus, 4096), ({ bytes }) => {
        const first = outcome(bytes);
        if (first instanceof ServicedefError) {
          refused++;
          expect(first.field).not.toBe('');
        } else {
          decoded++;
          expect(decodeServicedef(bytes)).toEqual(first);
        }
      }),
      { numRuns: 2000 },
    );
    // Both paths ran: a mutator that only ever broke (or never touched) the bytes would test little.
    expect(decoded).toBeGreaterThan(0);
    expect(refused).toBeGreaterThan(0);
  });
});
