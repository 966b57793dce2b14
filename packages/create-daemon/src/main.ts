#!/usr/bin/env node
// The create-daemon executable: real process I/O around runCli.
import { runCli } from './cli.js';

void runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  cwd: process.cwd(),
}).then((code) => {
  // exitCode, not exit(): let pending writes to a pipe drain first.
  process.exitCode = code;
});
