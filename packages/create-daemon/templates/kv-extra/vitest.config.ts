import { defineConfig } from 'vitest/config';

// Unit tests, and integration tests (*.int.test.ts) that start real brokers
// and daemon processes, each in a process of its own. A test whose
// assertions never ran fails (requireAssertions): it proved nothing.
const expect = { requireAssertions: true };

export default defineConfig({
  test: {
    projects: [
      {
        root: import.meta.dirname,
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.int.test.ts', '**/node_modules/**'],
          testTimeout: 20_000,
          expect,
        },
      },
      {
        root: import.meta.dirname,
        test: {
          name: 'int',
          include: ['test/**/*.int.test.ts'],
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 60_000,
          expect,
        },
      },
    ],
  },
});
