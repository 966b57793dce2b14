// Shared test plumbing: fd flags and identity, fd-count settling, event
// waiting, and temp dirs for socket paths. No mocks: everything is real.
// Counting fds and making temp dirs are @handoff/testkit's.

import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import { fstatSync, readFileSync } from 'node:fs';
import { openFds as openFdCount, tempDir } from '@handoff/testkit';
import { vi } from 'vitest';

// fdpass tests call the count openFdCount and the set of fd numbers openFds.
export { openFdSet as openFds, openFds as openFdCount } from '@handoff/testkit';

/** The fd's open flags (octal "flags:" line of /proc/self/fdinfo). */
export function fdInfoFlags(fd: number): number {
  const text = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
  const m = /^flags:\s+([0-7]+)$/m.exec(text);
  if (!m?.[1]) throw new Error(`no flags for fd ${fd}`);
  return Number.parseInt(m[1], 8);
}

export const O_CLOEXEC = 0o2000000;

export function sameFile(a: number, b: number): boolean {
  const sa = fstatSync(a);
  const sb = fstatSync(b);
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

export function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Waits (by polling, never sleeping blindly) until the fd count settles back. */
export async function expectFdCount(expected: number, timeout = 5_000): Promise<void> {
  await vi.waitFor(
    () => {
      const now = openFdCount();
      if (now !== expected) throw new Error(`open fds: ${now}, expected ${expected}`);
    },
    { timeout, interval: 10 },
  );
}

export async function nextEvent<T = unknown>(emitter: EventEmitter, name: string): Promise<T> {
  const [value] = await once(emitter, name);
  return value as T;
}

export interface TempDir {
  path: string;
  file(name: string): string;
  cleanup(): void;
}

export function makeTempDir(): TempDir {
  const tmp = tempDir('fdpass');
  return { path: tmp.dir, file: (name) => tmp.path(name), cleanup: tmp.remove };
}
