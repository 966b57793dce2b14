#!/usr/bin/env node
// The demo-kv executable (package.json "bin" → dist/cli/main.js): real
// process I/O around runCli, which does everything else.
import { runCli } from './run.js';

void runCli(process.argv.slice(2), {
  stdout: (data) => process.stdout.write(data),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
}).then((code) => {
  // exitCode, not exit(): let pending writes to a pipe drain first.
  process.exitCode = code;
});
