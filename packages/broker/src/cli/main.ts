#!/usr/bin/env node
// The handoff-broker CLI's entry, which bin/handoff-broker (package.json
// "bin") starts with the broker's node flags: real process I/O around
// runCli, which does everything else.
import { runCli } from './run.js';

// Not a top-level await: `serve` may end by its event loop emptying (the
// broker closed), and an unsettled top-level await would turn that into exit 13.
void runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
}).then((code) => {
  // exitCode, not exit(): let pending writes to a pipe drain first.
  process.exitCode = code;
});
