// Shared test plumbing: fd accounting through /proc, event waiting, and
// temporary directories for socket paths. No mocks: everything is real.

import type { EventEmitter } from 'node:events';
import { once } from 'node:events';
import { fstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';

export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** The fds this process has open, as numbers. */
export function openFds(): Set<number> {
  return new Set(readdirSync('/proc/self/fd').map(Number));
}

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
  const path = mkdtempSync(join(tmpdir(), 'fdpass-'));
  return {
    path,
    file: (name) => join(path, name),
    cleanup: () => rmSync(path, { recursive: true, force: true }),
  };
}
