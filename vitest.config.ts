// The root run: every workspace project with a test/ folder, in one vitest
// invocation so CI prints one summary.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { projectsFor } from './vitest.shared.ts';

const here = import.meta.dirname;
const roots = ['packages', 'apps', 'tools'].flatMap((group) => {
  const dir = join(here, group);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((entry) => join(dir, entry))
    .filter((root) => existsSync(join(root, 'test')));
});

export default defineConfig({
  test: { projects: roots.flatMap(projectsFor) },
});
