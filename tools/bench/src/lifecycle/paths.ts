// Where the lifecycle suite finds what it runs: the broker's CLI and the
// demo daemon's entry, both as built (`dist/`), resolved through the
// workspace packages' names, never by a relative path into their folders.
// BENCH_FROM_SOURCE=1 runs them from TypeScript instead (tsx, the
// @handoff/source condition): a functional check while dist/ is stale,
// never a measurement.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const fromSource = process.env.BENCH_FROM_SOURCE === '1';

const packageDir = (name: string) =>
  dirname(fileURLToPath(import.meta.resolve(`${name}/package.json`)));

/**
 * Node flags for every process the suite starts: the source conditions with
 * BENCH_FROM_SOURCE=1, then $BENCH_NODE_FLAGS (space-separated, e.g.
 * `--trace-gc`; NODE_OPTIONS refuses some, such as --cpu-prof).
 */
export const nodeFlags = (): string[] => [
  ...(fromSource ? ['--conditions=@handoff/source', '--import', 'tsx'] : []),
  ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== ''),
];

/** `handoff-broker`, the compiled CLI users run. */
export const brokerCli = (): string =>
  fromSource
    ? join(packageDir('@handoff/broker'), 'src', 'cli', 'main.ts')
    : join(packageDir('@handoff/broker'), 'dist', 'cli', 'main.js');

/** The compiled demo daemon (`demo-daemon`), the daemon every case serves. */
export const demoDaemonMain = (): string =>
  fromSource
    ? join(packageDir('@handoff/demo-daemon'), 'src', 'daemon-main.ts')
    : join(packageDir('@handoff/demo-daemon'), 'dist', 'daemon-main.js');

/** Scripts of this suite that run in their own processes. */
export const suiteScript = (name: string): string => join(import.meta.dirname, name);
