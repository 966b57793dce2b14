// What demo-kv commands share: the common flags (--json, --socket,
// --timeout) and their help, where the broker socket is, integer flags, and
// `kvCommand`, which turns a command with named positionals into the shape
// the shared runner (@handoff/backend-sdk/cli) runs.

import {
  type CliIo,
  type Command,
  type OptionSpecs,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import { defaultBrokerSocketPath } from '@handoff/broker/client';

export const COMMON_OPTIONS: OptionSpecs = {
  json: { type: 'boolean' },
  socket: { type: 'string' },
  timeout: { type: 'string' },
};

/** The runner adds `-h, --help` after these. */
export const COMMON_HELP = [
  '--json          print one JSON object (schema_version 1) instead of text',
  '--socket PATH   the broker socket (default: $HANDOFF_BROKER_SOCKET, else the per-user default)',
  '--timeout MS    for connecting (a daemon start included) and for the request (default 10000)',
];

export interface KvCommandSpec {
  name: string;
  summary: string;
  /** Positional argument names, e.g. ['KEY', 'VALUE']; all required. */
  positionals: string[];
  /** Its own flags, beyond the common ones. */
  options: OptionSpecs;
  /** Help lines for its own flags, aligned like COMMON_HELP. */
  help: string[];
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}

/** A command whose usage line is its name, its positionals, then its own flags. */
export function kvCommand(spec: KvCommandSpec): Command {
  const flags = Object.keys(spec.options).map((o) => `[--${o} …]`);
  return {
    ...spec,
    usage: [spec.name, ...spec.positionals, ...flags].join(' '),
    minPositionals: spec.positionals.length,
    maxPositionals: spec.positionals.length,
    positionalNames: spec.positionals,
  };
}

/** --socket, else $HANDOFF_BROKER_SOCKET, else the per-user default. */
export function brokerSocketPath(args: ParsedArgs, env: NodeJS.ProcessEnv): string {
  const flag = args.values.socket;
  return typeof flag === 'string' && flag !== '' ? flag : defaultBrokerSocketPath(env);
}

/** A non-negative integer flag up to `max`; a usage error otherwise. */
export function integerOption(
  args: ParsedArgs,
  name: string,
  fallback: number,
  max: number,
): number {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw) || Number(raw) > max) {
    throw new UsageError(`--${name} takes an integer from 0 to ${max}, not ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}
