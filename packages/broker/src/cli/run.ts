// The handoff-broker program: its name, words, version and commands, run by
// the shared runner (@handoff/backend-sdk/cli), which maps what happened to
// an exit code — 0 ok, 1 a check or request failed, 2 a usage error.
import { type CliIo, CliRunner, type Command } from '@handoff/backend-sdk/cli';
import { brokerPackageVersion } from '../package-version.js';
import {
  healthzCommand,
  listCommand,
  metricsCommand,
  shutdownCommand,
  statusCommand,
} from './admin-commands.js';
import { diagnoseCommand } from './diagnose.js';
import { doctorCommand } from './doctor.js';
import { dumpCommand } from './dump.js';
import { eventsCommand } from './events.js';
import { installCommand } from './install.js';
import { logsCommand } from './logs.js';
import { probeCommand } from './probe.js';
import { restartCommand } from './restart.js';
import { serveCommand } from './serve.js';
import { topCommand } from './top.js';
import { upgradeCommand } from './upgrade.js';

const PROGRAM = 'handoff-broker';

const cli = new CliRunner({
  name: PROGRAM,
  description: 'One socket per user in front of many daemons.',
  commands: [
    serveCommand,
    statusCommand,
    listCommand,
    probeCommand,
    healthzCommand,
    metricsCommand,
    doctorCommand,
    shutdownCommand,
    installCommand,
    upgradeCommand,
    logsCommand,
    restartCommand,
    eventsCommand,
    dumpCommand,
    diagnoseCommand,
    topCommand,
  ],
  version: () => brokerPackageVersion() ?? 'unknown',
  footer:
    `Run \`${PROGRAM} <command> --help\` for a command's options, \`${PROGRAM} --version\` for the version.\n` +
    'Exit codes: 0 ok, 1 a check failed or the broker cannot be reached, 2 usage error.\n' +
    'With --json, success and failure are one JSON document on stdout (schema_version, ok;\n' +
    'on failure code and message). Logs go to stderr.\n',
});

/** The program's commands, as `--help` lists them (the CLI contract test walks them). */
export function brokerCommands(): readonly Command[] {
  return cli.commands;
}

/** Runs one command line; returns the exit code. Never throws for expected failures. */
export function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  return cli.run(argv, io);
}
