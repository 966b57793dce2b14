// `serve --rp-compat`: the flag, its help line, and the BrokerOptions it
// turns into. One flag turns on both halves of the drop-in (the listener at
// RP's address and the `.servicedef` directory); both follow RP's own variables.
import type { OptionSpecs, ParsedArgs } from '@handoff/backend-sdk/cli';
import type { RpCompatOptions } from './rp-compat.js';

export const rpCompatOptions: OptionSpecs = { 'rp-compat': { type: 'boolean' } };

export const RP_COMPAT_HELP = [
  '--rp-compat         also serve running-process clients: listen at their shared v1 broker address',
  '                    ($XDG_RUNTIME_DIR/running-process/broker/rpb-v1-<h>-shared.sock, else under',
  '                    /tmp/running-process-<uid>/broker) and load the .servicedef files in',
  '                    $RUNNING_PROCESS_SERVICE_DEF_DIR (else ~/.config/running-process/services)',
];

export function rpCompatFromArgs(
  args: ParsedArgs,
  env: NodeJS.ProcessEnv,
): { rpCompat?: RpCompatOptions } {
  return args.values['rp-compat'] === true ? { rpCompat: { env } } : {};
}
