// The shape of one command of a handoff command line — its options for
// node:util parseArgs, its help lines, how many positionals it takes, its run
// function — and the parsing and usage error every program shares. The
// runner (runner.ts) picks the command; the program supplies its commands.
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { BackendSdkError } from '../errors.js';
import type { CliIo } from './output.js';

export const EXIT_OK = 0;
/** The command ran and failed: a check, a request, an unreachable peer, a bug. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export type UsageErrorCode = 'USAGE';

/** A command line that cannot be run as written: usage on stderr, exit 2. */
export class UsageError extends BackendSdkError {
  static override readonly brand: string = '@handoff/backend-sdk:UsageError';
  override readonly name = 'UsageError';
  declare readonly code: UsageErrorCode;
  /** The command whose usage to print, if known. */
  readonly command: string | undefined;

  constructor(message: string, command?: string) {
    super('USAGE', message);
    this.command = command;
  }
}

/**
 * One option's help: its flags (`--timeout MS`) and what it does; further
 * strings are continuation lines, aligned under the first.
 */
export type OptionHelp = readonly [flags: string, text: string, ...more: string[]];

/**
 * A help line: an OptionHelp, or (as before) a string. A string is read as
 * flags, two or more spaces, text — and an indented string as a
 * continuation — so hand-padded lines are re-aligned with the rest.
 */
export type HelpLine = string | OptionHelp;

/** Options in node:util parseArgs's form. */
export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** What follows the program name on its usage line, e.g. `get KEY [--wait …]`. */
  readonly usage: string;
  /** Its own options; the program's common ones and -h/--help are added. */
  readonly options: OptionSpecs;
  /** Help for its own options (the runner aligns them); common ones and -h follow. */
  readonly help: readonly HelpLine[];
  /** Fewest positionals accepted (default 0). */
  readonly minPositionals?: number;
  /** Most positionals accepted (default 0). */
  readonly maxPositionals?: number;
  /** Their names, so a missing one is named ("missing KEY"); else "missing argument". */
  readonly positionalNames?: readonly string[];
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}

export const HELP_OPTION: OptionSpecs = { help: { type: 'boolean', short: 'h' } };
/** -h's help line as a string (kept for programs that print their own usage). */
export const HELP_LINE = '-h, --help      show this help';

/**
 * Parses `argv` for `command`, with `common` options beside its own; throws
 * UsageError. With --help the positional counts are not checked.
 */
export function parseCommandArgs(
  command: Command,
  argv: readonly string[],
  common: OptionSpecs = {},
): ParsedArgs {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...command.options, ...common, ...HELP_OPTION },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(parseErrorMessage(error as Error & { code?: string }), command.name);
  }
  const values = parsed.values as ParsedArgs['values'];
  const positionals = parsed.positionals;
  if (values.help) return { values, positionals };
  const max = command.maxPositionals ?? 0;
  const min = command.minPositionals ?? 0;
  if (positionals.length > max) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`, command.name);
  }
  if (positionals.length < min) {
    const name = command.positionalNames?.[positionals.length] ?? 'argument';
    throw new UsageError(`missing ${name}`, command.name);
  }
  return { values, positionals };
}

/** parseArgs's words, minus its advice about `--`, which only confuses a mistyped flag. */
function parseErrorMessage(error: Error & { code?: string }): string {
  const option = /option '([^']+)'/i.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  return error.message;
}
