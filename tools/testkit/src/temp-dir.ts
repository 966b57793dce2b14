// A private directory per test file or test, under the OS temp dir: where
// tests bind sockets and write files. Owns creation and removal only; what
// goes inside is the test's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  /** The directory itself (mkdtemp makes it 0700: private enough for sockets). */
  readonly dir: string;
  /** A path inside it. */
  path(...names: string[]): string;
  /** Removes it and everything in it; safe to call twice. */
  remove(): void;
}

/** A fresh `<tmpdir>/handoff-<prefix>-XXXXXX`. */
export function tempDir(prefix: string): TempDir {
  const dir = mkdtempSync(join(tmpdir(), `handoff-${prefix}-`));
  return {
    dir,
    path: (...names) => join(dir, ...names),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
