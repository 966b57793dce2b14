// The handoff-broker command line: picks the command, parses its flags,
// runs it, and maps what happened to an exit code — 0 ok, 1 a check or
// request failed, 2 a usage error (with the usage on stderr).

import { brokerPackageVersion } from '../package-version.js';
import {
  healthzCommand,
  listCommand,
  metricsCommand,
  shutdownCommand,
  statusCommand,
} from './admin-commands.js';
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_USAGE,
  parseCommandArgs,
  UsageError,
} from './command.js';
import { doctorCommand } from './doctor.js';
import { type CliIo, columns } from './output.js';
import { probeCommand } from './probe.js';
import { serveCommand } from './serve.js';

const PROGRAM = 'handoff-broker';

export const COMMANDS: readonly Command[] = [
  serveCommand,
  statusCommand,
  listCommand,
  probeCommand,
  healthzCommand,
  metricsCommand,
  doctorCommand,
  shutdownCommand,
];

export function topLevelUsage(): string {
  return (
    `Usage: ${PROGRAM} <command> [options]\n\n` +
    'One socket per user in front of many daemons.\n\nCommands:\n' +
    columns(COMMANDS.map((c) => [`  ${c.name}`, c.summary])) +
    `\nRun \`${PROGRAM} <command> --help\` for a command's options, \`${PROGRAM} --version\` for the version.\n` +
    'Exit codes: 0 ok, 1 a check failed or the broker cannot be reached, 2 usage error.\n'
  );
}

export function commandUsage(command: Command): string {
  const help = command.help
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
  return `Usage: ${PROGRAM} ${command.usage}\n\n${command.summary}\n\nOptions:\n${help}\n  -h, --help      show this help\n`;
}

/** Runs one command line; returns the exit code. Never throws for expected failures. */
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
  if (name === '--version') {
    io.stdout(`${brokerPackageVersion() ?? 'unknown'}\n`);
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
    // Not an expected failure: a bug or an environment we did not foresee.
    io.stderr(
      `${PROGRAM} ${command.name}: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`,
    );
    return EXIT_FAILED;
  }
}
