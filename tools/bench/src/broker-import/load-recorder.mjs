// Preloaded (--import) into an import-entry.mjs child when counting what an
// import loads: appends every file URL loaded to $HANDOFF_LOAD_LOG. It slows
// every load, so timed runs go without it.
import { register } from 'node:module';

register('./load-hooks.mjs', import.meta.url, { data: { log: process.env.HANDOFF_LOAD_LOG } });
