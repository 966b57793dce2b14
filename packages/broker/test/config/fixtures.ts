// Shared by the config/*.test.ts files: a valid definition to vary, JSON as
// a definition file holds it, and scratch directories. The tests themselves
// live in definition, load and watch.test.ts.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

export const base = { name: 'demo', version: '1.2.3', command: '/usr/bin/demo' };
export const json = (value: unknown) => JSON.stringify(value, null, 2);

/**
 * Call at the top of a test file: makes a scratch root removed after the
 * file's tests, and returns a function giving each test a fresh directory
 * in it, so tests never see each other's files.
 */
export function scratchDirs(): () => string {
  const root = mkdtempSync(join(tmpdir(), 'handoff-service-config-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let counter = 0;
  return () => {
    const dir = join(root, `t${counter++}`);
    mkdirSync(dir);
    return dir;
  };
}
