// One place that says how a workspace project is tested: unit tests
// (`test/**/*.test.ts`) and process-spawning integration tests
// (`test/**/*.int.test.ts`) run as separate vitest projects, and
// workspace packages resolve to their TypeScript sources (no build needed).
import { basename, join } from 'node:path';
import type { TestProjectInlineConfiguration } from 'vitest/config';

// Fails a test that closed, through fs, an fd that fs never opened (two owners).
const fdOwnershipGuard = join(import.meta.dirname, 'tools/testkit/src/fd-ownership-guard.ts');
// A state directory of the run's own (daemon logs never land in a real home).
const isolatedState = join(import.meta.dirname, 'tools/testkit/src/isolated-state.ts');

export const sourceConditions = ['@handoff/source', 'module', 'node', 'import', 'default'];

export function projectsFor(root: string): TestProjectInlineConfiguration[] {
  const name = basename(root);
  const shared = {
    root,
    resolve: { conditions: sourceConditions },
    ssr: { resolve: { conditions: sourceConditions, externalConditions: ['@handoff/source'] } },
  };
  const setupFiles = [fdOwnershipGuard];
  // A test that asserts nothing proves nothing: it fails instead of passing.
  const expect = { requireAssertions: true };
  return [
    {
      ...shared,
      test: {
        name,
        include: ['test/**/*.test.ts'],
        exclude: ['test/**/*.int.test.ts', '**/node_modules/**'],
        testTimeout: 20_000,
        globalSetup: [isolatedState],
        setupFiles,
        expect,
      },
    },
    {
      ...shared,
      test: {
        name: `${name}:int`,
        include: ['test/**/*.int.test.ts'],
        pool: 'forks',
        testTimeout: 120_000,
        hookTimeout: 60_000,
        globalSetup: [isolatedState],
        setupFiles,
        expect,
      },
    },
  ];
}
