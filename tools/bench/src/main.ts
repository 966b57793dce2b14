// `npm run bench -- [suite...]`: runs the named suites (all when none is
// named) and prints one JSON line per case on stdout; progress goes to
// stderr so the output stays machine-readable.
import { suites } from './suites.ts';

const usage = `Usage: npm run bench -- [--list] [suite ...]
Suites: ${Object.keys(suites).join(', ')}
Each case prints {"bench","ops_per_s","ns_per_op","baseline","ratio",...} on one line.`;

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage);
    return 0;
  }
  if (argv.includes('--list')) {
    for (const name of Object.keys(suites)) console.log(name);
    return 0;
  }
  const names = argv.length > 0 ? argv : Object.keys(suites);
  const unknown = names.filter((n) => !(n in suites));
  if (unknown.length > 0) {
    console.error(`unknown suite(s): ${unknown.join(', ')}\n${usage}`);
    return 2;
  }
  for (const name of names) {
    console.error(`# suite ${name}`);
    await suites[name]!();
  }
  // A case that could not measure (a missing feature: `"ok":false`) set it.
  return Number(process.exitCode ?? 0);
}

process.exitCode = await main(process.argv.slice(2));
