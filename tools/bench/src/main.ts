// `npm run bench -- [--runs N] [suite...]`: runs the named suites (all when
// none is named) and prints one JSON line per case on stdout; progress goes
// to stderr so the output stays machine-readable. With --runs N the suites
// run N times over, every line carries `"run": i`, and one summary line per
// case follows the last run (bench-main.ts, runs.ts).
import { benchMain } from './bench-main.ts';
import { suites } from './suites.ts';

process.exitCode = await benchMain(process.argv.slice(2), suites);
