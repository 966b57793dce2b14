// The release checks that need built packages (dist/, prebuilds/): tarball
// allow-lists and the local-registry end-to-end runs. They are named
// *.e2e.ts so the root `npm test` (which runs from sources, before any build)
// leaves them out; CI runs this config after `nx build`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: 'release:e2e',
    root: import.meta.dirname,
    include: ['test/**/*.e2e.ts'],
    pool: 'forks',
    // One registry and one npm cache are shared by every file: run them in order.
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
