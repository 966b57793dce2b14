// The demo-kv program: its name, words, common flags and commands, run by
// the shared runner (@handoff/backend-sdk/cli), which maps what happened to
// an exit code — 0 ok, 1 not found / refused / unreachable, 2 usage error.
import { type CliIo, CliRunner } from '@handoff/backend-sdk/cli';
import { COMMON_HELP, COMMON_OPTIONS } from './command.js';
import { delCommand, getCommand, setCommand, statsCommand } from './kv-commands.js';

const cli = new CliRunner({
  name: 'demo-kv',
  description:
    'A client of the demo-kv cache daemon, reached through the handoff broker\n' +
    '(which starts the daemon when none runs).',
  commands: [getCommand, setCommand, delCommand, statsCommand],
  listByUsage: true,
  commonOptions: COMMON_OPTIONS,
  commonHelp: COMMON_HELP,
  footer:
    'The route — handoff (the broker passed this very connection to the daemon) or\n' +
    'reconnect (we dialled the daemon’s own socket) — is printed on stderr, or as\n' +
    '"route" with --json.\n' +
    'Exit codes: 0 ok; 1 the key is not there (get, del), the daemon refused the\n' +
    'request, or it could not be reached; 2 usage error.\n',
});

/** Runs one command line; returns the exit code. Never throws for an expected failure. */
export function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  return cli.run(argv, io);
}
