// One child of the `broker.import.client_entry` case: imports one entry of
// the built @handoff/broker in this fresh process and prints one JSON line:
// the import's wall time in ms, and the CommonJS modules in require.cache
// (CommonJS that CommonJS requires never reaches load-recorder.mjs's hooks).
//   import-entry.mjs <specifier>
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const specifier = process.argv[2];
const t0 = performance.now();
await import(specifier);
const ms = performance.now() - t0;
const cjs = Object.keys(createRequire(import.meta.url).cache).map((p) => pathToFileURL(p).href);
process.stdout.write(`${JSON.stringify({ ms, cjs })}\n`);
