import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A test whose assertions never ran fails: it proved nothing.
    expect: { requireAssertions: true },
    // The tests start real daemons and brokers (one spawns a daemon through tsx).
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
