// The shape every handoff-broker command has — its options for
// node:util parseArgs, its help text, its run function — and the pieces
// they share: the usage error (exit 2) and where the broker socket is.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { defaultBrokerSocketPath } from '../paths.js';
import type { CliIo } from './output.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A command line that cannot be run as written: usage on stderr, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
  /** The command whose usage to print, if known. */
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.command = command;
  }
}

type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** `handoff-broker <name> …` line(s), without the program name. */
  usage: string;
  /** Option lines for --help, already aligned. */
  help: string;
  options: OptionSpecs;
  /** Most positionals accepted (default 0). */
  maxPositionals?: number;
  minPositionals?: number;
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}

export const socketOption: OptionSpecs = { socket: { type: 'string' } };
export const jsonOption: OptionSpecs = { json: { type: 'boolean' } };
export const helpOption: OptionSpecs = { help: { type: 'boolean', short: 'h' } };
export const timeoutOption: OptionSpecs = { timeout: { type: 'string' } };

export const SOCKET_HELP =
  '--socket PATH   the broker socket (default: $HANDOFF_BROKER_SOCKET, else the per-user default)';
export const JSON_HELP = '--json          print JSON (schema_version 1) instead of text';
export const TIMEOUT_HELP = '--timeout MS    how long to wait for the broker (default 5000)';

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...command.options, ...helpOption },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(parseErrorMessage(error as Error & { code?: string }), command.name);
  }
  const values = parsed.values as ParsedArgs['values'];
  if (values.help) return { values, positionals: parsed.positionals };
  const max = command.maxPositionals ?? 0;
  const min = command.minPositionals ?? 0;
  if (parsed.positionals.length > max) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(parsed.positionals[max])}`,
      command.name,
    );
  }
  if (parsed.positionals.length < min) throw new UsageError('missing argument', command.name);
  return { values, positionals: parsed.positionals };
}

/** parseArgs's words, minus its advice about `--`, which only confuses a mistyped flag. */
function parseErrorMessage(error: Error & { code?: string }): string {
  const option = /option '([^']+)'/i.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  return error.message;
}

/** --socket, else $HANDOFF_BROKER_SOCKET, else the per-user default. */
export function brokerSocketPath(args: ParsedArgs, env: NodeJS.ProcessEnv): string {
  const flag = args.values.socket;
  if (typeof flag === 'string' && flag !== '') return flag;
  const fromEnv = env.HANDOFF_BROKER_SOCKET;
  if (fromEnv) return fromEnv;
  return defaultBrokerSocketPath(env);
}

/** A non-negative integer flag (milliseconds, a uid); usage error otherwise. */
export function integerOption(
  args: ParsedArgs,
  name: string,
  fallback: number,
  command: string,
): number {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw new UsageError(
      `--${name} takes a non-negative integer, not ${JSON.stringify(raw)}`,
      command,
    );
  return Number(raw);
}

export function stringOption(args: ParsedArgs, name: string): string | undefined {
  const raw = args.values[name];
  return typeof raw === 'string' ? raw : undefined;
}
