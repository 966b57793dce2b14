// Shared by every package's *.fuzz.test.ts: the checked-in corpora of
// captured traffic (hex JSON, read and rewritten with REGENERATE_CORPUS=1)
// and the trap that fails a test when anything escapes to the process.
// Test-only; the pure mutators live in packages/protocol/test/mutations.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, expect } from 'vitest';
import { type CorpusFile, fromHex, toHex } from '../../packages/protocol/test/mutations.js';

export function readCorpus(file: URL): Record<string, Uint8Array> {
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as CorpusFile;
  return Object.fromEntries(Object.entries(parsed.entries).map(([k, v]) => [k, fromHex(v)]));
}

export function writeCorpus(file: URL, regenerate: string, entries: Record<string, Uint8Array>) {
  const out: CorpusFile = {
    regenerate,
    entries: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, toHex(v)])),
  };
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
}

/**
 * Collects what escapes to the process during each test of the calling
 * suite (uncaught exceptions, unhandled rejections), and fails the test
 * unless it stayed empty. Returns the live list, for checks mid-property.
 */
export function trapUncaught(): unknown[] {
  const escaped: unknown[] = [];
  const onError = (error: unknown) => escaped.push(error);
  beforeEach(() => {
    escaped.length = 0;
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
  });
  afterEach(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
    expect(escaped).toEqual([]);
  });
  return escaped;
}
