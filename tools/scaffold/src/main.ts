// The new-daemon executable (`npm run new-daemon -- <name>`): real process
// I/O around runScaffold. SIGINT/SIGTERM abort the run, which removes its
// staging directory and kills a running step, instead of dying mid-copy.
import { runScaffold } from './cli.js';

const controller = new AbortController();
const abort = () => controller.abort();
process.once('SIGINT', abort);
process.once('SIGTERM', abort);

void runScaffold(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  signal: controller.signal,
}).then((code) => {
  process.off('SIGINT', abort);
  process.off('SIGTERM', abort);
  // exitCode, not exit(): let pending writes to a pipe drain first.
  process.exitCode = controller.signal.aborted && code !== 0 ? 130 : code;
});
