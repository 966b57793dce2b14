import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The tests start real daemons and brokers (one spawns a daemon through tsx).
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
