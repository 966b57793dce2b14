// Shared by the create-daemon tests: a generated project's files read back;
// private temp directories outside the repository are @handoff/testkit's.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir as kitTempDir, type TempDir } from '@handoff/testkit';

/** The repository this package is in: read, never written. */
export const repoRoot = join(import.meta.dirname, '..', '..', '..');

export const tempDir = (prefix: string): TempDir => kitTempDir(`create-daemon-${prefix}`);

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
