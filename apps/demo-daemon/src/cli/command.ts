// The shape of a demo-kv command — its flags for node:util parseArgs, its
// help, its run function — and what commands share: the usage error (exit
// 2), the common flags, and where the broker socket is. Modelled on the
// handoff-broker CLI (packages/broker/src/cli/command.ts).
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultBrokerSocketPath } from '@handoff/broker/client';
import type { CliIo } from './output.js';

export const EXIT_OK = 0;
/** The key was not found, the daemon refused, or it could not be reached. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A command line that cannot be run as written: usage on stderr, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Command {
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

export const COMMON_OPTIONS: OptionSpecs = {
  json: { type: 'boolean' },
  socket: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = [
  '--json          print one JSON object (schema_version 1) instead of text',
  '--socket PATH   the broker socket (default: $HANDOFF_BROKER_SOCKET, else the per-user default)',
  '--timeout MS    for connecting (a daemon start included) and for the request (default 10000)',
  '-h, --help      show this help',
];

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, ...COMMON_OPTIONS },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const option = /option '([^']+)'/i.exec((error as Error).message)?.[1];
    throw new UsageError(option ? `unknown option ${option}` : (error as Error).message);
  }
  const args = parsed as ParsedArgs;
  if (args.values.help) return args;
  const wanted = command.positionals.length;
  if (args.positionals.length > wanted) {
    throw new UsageError(`unexpected argument ${JSON.stringify(args.positionals[wanted])}`);
  }
  if (args.positionals.length < wanted) {
    throw new UsageError(`missing ${command.positionals[args.positionals.length]}`);
  }
  return args;
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
