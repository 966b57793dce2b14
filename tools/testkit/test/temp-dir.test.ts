// tempDir: a private directory that really goes away.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../src/temp-dir.js';

describe('tempDir', () => {
  it('makes a fresh 0700 directory under the OS temp dir, named for its prefix', () => {
    const a = tempDir('kit');
    const b = tempDir('kit');
    try {
      expect(dirname(a.dir)).toBe(tmpdir());
      expect(basename(a.dir)).toMatch(/^handoff-kit-\w{6}$/);
      expect(a.dir).not.toBe(b.dir);
      expect(statSync(a.dir).mode & 0o777).toBe(0o700);
    } finally {
      a.remove();
      b.remove();
    }
  });

  it('joins paths inside it', () => {
    const tmp = tempDir('kit');
    tmp.remove();
    expect(tmp.path('a.sock')).toBe(join(tmp.dir, 'a.sock'));
    expect(tmp.path('run', 'broker.sock')).toBe(join(tmp.dir, 'run', 'broker.sock'));
  });

  it('removes everything in it, and removing twice is harmless', () => {
    const tmp = tempDir('kit');
    mkdirSync(tmp.path('deep', 'er'), { recursive: true });
    writeFileSync(tmp.path('deep', 'er', 'file'), 'x');
    tmp.remove();
    expect(existsSync(tmp.dir)).toBe(false);
    expect(() => tmp.remove()).not.toThrow();
  });
});
