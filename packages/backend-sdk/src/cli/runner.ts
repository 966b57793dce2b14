// One command-line program: picks the command, parses its flags, runs it,
// and maps what happened to an exit code — 0 ok, 1 failed, 2 a usage error
// (with the usage on stderr; under --json also one JSON document on stdout).
// It writes the top-level and per-command usage and answers --help, -h,
// help and --version. What the program is called, says and does (its
// commands, common flags, version) are its own.
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  type HelpLine,
  type OptionSpecs,
  parseCommandArgs,
  UsageError,
} from './command.js';
import { HELP_ENTRY, renderHelp } from './help.js';
import { type CliIo, columns, jsonFailure, wantsJson } from './output.js';

export interface CliProgram {
  /** The executable's name, e.g. `handoff-broker`. */
  readonly name: string;
  /** The paragraph under the top-level usage line (no trailing newline). */
  readonly description: string;
  readonly commands: readonly Command[];
  /** List commands by their usage line rather than their bare name. */
  readonly listByUsage?: boolean;
  /** Options every command takes (e.g. --json, --socket). */
  readonly commonOptions?: OptionSpecs;
  /** Their help lines (the runner aligns them); shown in every usage, top-level included. */
  readonly commonHelp?: readonly HelpLine[];
  /** What --version prints; without it, --version is an unknown option. */
  readonly version?: () => string;
  /** The lines closing the top-level usage: where to read more, the exit codes. */
  readonly footer: string;
}

/** The code of a failure nobody foresaw (a bug), in a --json document. */
export const UNEXPECTED_CODE = 'UNEXPECTED';

export class CliRunner {
  readonly #program: CliProgram;

  constructor(program: CliProgram) {
    this.#program = program;
  }

  get commands(): readonly Command[] {
    return this.#program.commands;
  }

  topLevelUsage(): string {
    const p = this.#program;
    const list = p.commands.map((c) => [`  ${p.listByUsage ? c.usage : c.name}`, c.summary]);
    const common = p.commonHelp ? `\nOptions:\n${renderHelp([...p.commonHelp, HELP_ENTRY])}` : '';
    return (
      `Usage: ${p.name} <command> [options]\n\n${p.description}\n\nCommands:\n` +
      `${columns(list)}${common}\n${p.footer}`
    );
  }

  commandUsage(command: Command): string {
    const p = this.#program;
    const options = renderHelp([...command.help, ...(p.commonHelp ?? []), HELP_ENTRY]);
    return `Usage: ${p.name} ${command.usage}\n\n${command.summary}\n\nOptions:\n${options}`;
  }

  /** Runs one command line; returns the exit code. Never throws for expected failures. */
  async run(argv: readonly string[], io: CliIo): Promise<number> {
    const p = this.#program;
    const json = wantsJson(argv);
    const [name, ...rest] = argv;
    if (name === undefined) {
      io.stderr(this.topLevelUsage());
      return EXIT_USAGE;
    }
    if (name === '--help' || name === '-h' || name === 'help') {
      io.stdout(this.topLevelUsage());
      return EXIT_OK;
    }
    if (name === '--version' && p.version) {
      io.stdout(`${p.version()}\n`);
      return EXIT_OK;
    }
    const command = p.commands.find((c) => c.name === name);
    if (!command) {
      const what = name.startsWith('-')
        ? `unknown option ${name}`
        : `unknown command ${JSON.stringify(name)}`;
      if (json) {
        io.stdout(jsonFailure('USAGE', what));
        io.stderr(`${p.name}: ${what}\n`);
      } else io.stderr(`${p.name}: ${what}\n\n${this.topLevelUsage()}`);
      return EXIT_USAGE;
    }
    try {
      const args = parseCommandArgs(command, rest, p.commonOptions);
      if (args.values.help === true) {
        io.stdout(this.commandUsage(command));
        return EXIT_OK;
      }
      return await command.run(args, io);
    } catch (error) {
      const where = `${p.name} ${command.name}`;
      if (error instanceof UsageError) {
        if (json) {
          io.stdout(jsonFailure('USAGE', error.message, { command: command.name }));
          io.stderr(`${where}: ${error.message} (see \`${where} --help\`)\n`);
        } else io.stderr(`${where}: ${error.message}\n\n${this.commandUsage(command)}`);
        return EXIT_USAGE;
      }
      // Not an expected failure: a bug, or an environment nobody foresaw.
      const stack = (error as Error)?.stack ?? String(error);
      if (json) {
        const message = `unexpected error: ${(error as Error)?.message ?? String(error)}`;
        io.stdout(jsonFailure(UNEXPECTED_CODE, message, { command: command.name }));
      }
      io.stderr(`${where}: unexpected error: ${stack}\n`);
      return EXIT_FAILED;
    }
  }
}
