// The demo-kv command line: picks the command, parses its flags, runs it,
// and maps what happened to an exit code — 0 ok, 1 not found / refused /
// unreachable, 2 usage error (with the usage on stderr).
import {
  COMMON_HELP,
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  parseCommandArgs,
  UsageError,
} from './command.js';
import { delCommand, getCommand, setCommand, statsCommand } from './kv-commands.js';
import type { CliIo } from './output.js';

const PROGRAM = 'demo-kv';

export const COMMANDS: readonly Command[] = [getCommand, setCommand, delCommand, statsCommand];

const synopsis = (c: Command) =>
  [c.name, ...c.positionals, ...Object.keys(c.options).map((o) => `[--${o} …]`)].join(' ');

export function topLevelUsage(): string {
  const width = Math.max(...COMMANDS.map((c) => synopsis(c).length));
  return (
    `Usage: ${PROGRAM} <command> [options]\n\n` +
    'A client of the demo-kv cache daemon, reached through the handoff broker\n' +
    '(which starts the daemon when none runs).\n\nCommands:\n' +
    COMMANDS.map((c) => `  ${synopsis(c).padEnd(width)}  ${c.summary}\n`).join('') +
    `\nOptions:\n${COMMON_HELP.map((line) => `  ${line}\n`).join('')}` +
    '\nThe route — handoff (the broker passed this very connection to the daemon) or\n' +
    'reconnect (we dialled the daemon’s own socket) — is printed on stderr, or as\n' +
    '"route" with --json.\n' +
    'Exit codes: 0 ok; 1 the key is not there (get, del), the daemon refused the\n' +
    'request, or it could not be reached; 2 usage error.\n'
  );
}

export function commandUsage(command: Command): string {
  const options = [...command.help, ...COMMON_HELP].map((line) => `  ${line}\n`).join('');
  return `Usage: ${PROGRAM} ${synopsis(command)}\n\n${command.summary}\n\nOptions:\n${options}`;
}

/** Runs one command line; returns the exit code. Never throws for an expected failure. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr(topLevelUsage());
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout(topLevelUsage());
    return EXIT_OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const what = name.startsWith('-')
      ? `unknown option ${name}`
      : `unknown command ${JSON.stringify(name)}`;
    io.stderr(`${PROGRAM}: ${what}\n\n${topLevelUsage()}`);
    return EXIT_USAGE;
  }
  try {
    const args = parseCommandArgs(command, [...rest]);
    if (args.values.help === true) {
      io.stdout(commandUsage(command));
      return EXIT_OK;
    }
    return await command.run(args, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`${PROGRAM} ${command.name}: ${error.message}\n\n${commandUsage(command)}`);
      return EXIT_USAGE;
    }
    // Not an expected failure: a bug, or an environment we did not foresee.
    io.stderr(
      `${PROGRAM} ${command.name}: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`,
    );
    return EXIT_FAILED;
  }
}
