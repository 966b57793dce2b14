// `serve`'s safety-rail flags: --allow-root (the broker refuses euid 0
// without it, src/root-refusal.ts) and the per-uid Hello rate limit
// (--hello-rate, --hello-burst; src/hello-rate-limit.ts), read into BrokerOptions.
import type { OptionSpecs, ParsedArgs } from '@handoff/backend-sdk/cli';
import { UsageError } from '@handoff/backend-sdk/cli';
import type { BrokerOptions } from '../broker-api.js';
import { HELLO_RATE_DEFAULTS } from '../hello-rate-limit.js';
import { type RootRefusalError, refuseRoot } from '../root-refusal.js';
import { integerOption } from './command.js';
import type { CliIo } from './output.js';

export const railsOptions: OptionSpecs = {
  'allow-root': { type: 'boolean' },
  'hello-rate': { type: 'string' },
  'hello-burst': { type: 'string' },
};

export const RAILS_HELP = [
  '--allow-root       run even as root (refused otherwise: a root broker spawns root daemons',
  '                   for every peer it admits); HANDOFF_ALLOW_ROOT=1 does the same',
  `--hello-rate N     Hellos per second each peer uid may send (default ${HELLO_RATE_DEFAULTS.perSecond};`,
  '                   0 turns the limit off); over it: Refused{RATE_LIMITED, retry_after_ms}',
  `--hello-burst N    Hellos a peer uid may send at once, at least 1 (default ${HELLO_RATE_DEFAULTS.burst})`,
];

export function railsFromArgs(
  args: ParsedArgs,
  io: CliIo,
): Pick<BrokerOptions, 'allowRoot' | 'helloRateLimit'> {
  const rate = integerOption(args, 'hello-rate', HELLO_RATE_DEFAULTS.perSecond, 'serve');
  const burst = integerOption(args, 'hello-burst', HELLO_RATE_DEFAULTS.burst, 'serve');
  // A burst of 0 would refuse every Hello while the rate says otherwise:
  // refused as a usage error rather than quietly read as 1.
  if (burst === 0)
    throw new UsageError('--hello-burst takes an integer of at least 1, not "0"', 'serve');
  const allowRoot = args.values['allow-root'] === true;
  if (allowRoot && process.geteuid?.() === 0)
    io.stderr(
      'handoff-broker serve: running as root (--allow-root): the daemons it spawns run as root too\n',
    );
  return {
    ...(allowRoot ? { allowRoot: true } : {}),
    helloRateLimit: rate === 0 ? false : { perSecond: rate, burst },
  };
}

/** The refusal `serve` must print for running as root without an opt-in, or null. */
export function rootRefusal(
  rails: Pick<BrokerOptions, 'allowRoot'>,
  env: NodeJS.ProcessEnv,
): RootRefusalError | null {
  try {
    refuseRoot(rails.allowRoot, env);
    return null;
  } catch (error) {
    return error as RootRefusalError;
  }
}
