// Where the fdpass suite's helper programs live and how a child Node
// process is started so it resolves @handoff/* to source like the bench.
import { fileURLToPath } from 'node:url';

/** tools/bench, whatever the working directory. */
export const benchRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Node flags for child processes: the bench's own TypeScript via tsx, the
 * packages from their built dist (what users run; `npm run bench` builds
 * first), so transpiler helpers never sit in a measured hot path.
 */
export const childExecArgv = ['--import', 'tsx'];
