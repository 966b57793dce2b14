// Shared by the scaffold tests: a throwaway repository holding a copy of the
// real template (never the real apps/) and a snapshot of a directory tree to
// prove it was not touched. Temp dirs and child counting are @handoff/testkit's.
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { TEMPLATE_APP } from '@handoff/create-daemon/rename';

export { childPids, tempDir } from '@handoff/testkit';

/** The real repository: read, never written. */
export const realRoot = join(import.meta.dirname, '..', '..', '..');

/**
 * A repository in `dir` with apps/<template> copied (build output aside)
 * and, with `linked`, what the template needs to install, build and test:
 * a symlink to the real packages/, node_modules/ as links to the real
 * one's entries (nothing is installed or copied from them) and copies of
 * the root config files.
 */
export function makeRepository(dir: string, options: { linked?: boolean } = {}): void {
  mkdirSync(join(dir, 'apps'), { recursive: true });
  cpSync(join(realRoot, 'apps', TEMPLATE_APP), join(dir, 'apps', TEMPLATE_APP), {
    recursive: true,
    filter: (source) => !/\/(?:dist|node_modules)$|\.tsbuildinfo$/.test(source),
  });
  if (!options.linked) return;
  symlinkSync(join(realRoot, 'packages'), join(dir, 'packages'));
  shadowNodeModules(join(realRoot, 'node_modules'), join(dir, 'node_modules'));
  // The template's tests reach @handoff/testkit through the linked node_modules.
  mkdirSync(join(dir, 'tools', 'testkit', 'src'), { recursive: true });
  for (const file of [
    'package.json',
    'tsconfig.base.json',
    'vitest.shared.ts',
    // vitest.shared.ts registers these for every project, the new app's too.
    'tools/testkit/src/fd-ownership-guard.ts',
    'tools/testkit/src/isolated-state.ts',
    'biome.json',
    '.gitignore',
  ]) {
    copyFileSync(join(realRoot, file), join(dir, file));
  }
}

/**
 * node_modules as a directory of links to the real one's entries (and
 * .bin and scopes as directories of links), so a test can link one more
 * workspace into it, as npm install would, without touching the real one.
 */
function shadowNodeModules(real: string, shadow: string): void {
  mkdirSync(shadow);
  for (const entry of readdirSync(real, { withFileTypes: true })) {
    const from = join(real, entry.name);
    if (entry.isDirectory() && (entry.name === '.bin' || entry.name.startsWith('@'))) {
      mkdirSync(join(shadow, entry.name));
      for (const inner of readdirSync(from)) {
        symlinkSync(join(from, inner), join(shadow, entry.name, inner));
      }
    } else {
      symlinkSync(from, join(shadow, entry.name));
    }
  }
}

/** Path → content hash and mode for every file under `dir`: equal snapshots, untouched tree. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
        out[relative(dir, path)] = `${hash} ${(statSync(path).mode & 0o777).toString(8)}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** Collects what a ScaffoldIo writes. */
export function captureIo(signal?: AbortSignal) {
  const io = {
    out: '',
    err: '',
    stdout: (text: string) => {
      io.out += text;
    },
    stderr: (text: string) => {
      io.err += text;
    },
    ...(signal ? { signal } : {}),
  };
  return io;
}
