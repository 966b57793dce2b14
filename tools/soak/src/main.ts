// `npm run soak`: flags, --help, exit codes. The campaign itself is loaded
// only once the flags are good, so --help and usage errors answer at once.
import { parseSoakArgs, type SoakOptions, USAGE, UsageError } from './options.js';

let options: SoakOptions | 'help';
try {
  options = parseSoakArgs(process.argv.slice(2));
} catch (error) {
  if (!(error instanceof UsageError)) throw error;
  process.stderr.write(`soak: ${error.message}\n\n${USAGE}`);
  process.exit(2);
}
if (options === 'help') {
  process.stdout.write(USAGE);
} else {
  const { runSoak } = await import('./campaign.js');
  const ok = await runSoak(options);
  process.exitCode = ok ? 0 : 1;
  // Everything is closed by now; should a handle linger anyway, do not hang CI over it.
  setTimeout(() => process.exit(process.exitCode), 5000).unref();
}
