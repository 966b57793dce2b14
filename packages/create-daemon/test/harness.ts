// Shared by the create-daemon tests: private temp directories outside the
// repository, and a generated project's files read back.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The repository this package is in: read, never written. */
export const repoRoot = join(import.meta.dirname, '..', '..', '..');

export function tempDir(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), `create-daemon-${prefix}-`));
  return {
    dir,
    path: (...names: string[]) => join(dir, ...names),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Every file under `dir`, relative with `/`, sorted; node_modules aside. */
export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.name === 'node_modules') continue;
    if (entry.isDirectory()) out.push(...listFiles(dir, path));
    else out.push(path);
  }
  return out.sort();
}

export const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** The version in packages/<dir>/package.json now. */
export const workspaceVersion = (dir: string): string =>
  readJson(join(repoRoot, 'packages', dir, 'package.json')).version;
