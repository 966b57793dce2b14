// `handoff-broker logs <service>`: the last lines a service's daemons wrote
// (src/logs/reader.ts), as text or JSON, and with -f the new ones as they
// come until SIGINT. The state directory: --state-dir, else the running
// broker's (its STATUS), else the default.
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  jsonFailure,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import { type FollowPositions, followRecords, LogsError, readLastRecords } from '../logs/reader.js';
import type { LogRecord } from '../logs/record.js';
import { integerOption, jsonOption, SOCKET_HELP, socketOption, stringOption } from './command.js';
import type { CliIo } from './output.js';
import { resolveStateDir } from './state-dir.js';

export const logsCommand: Command = {
  name: 'logs',
  summary: "print a service's daemon output (stdout and stderr), -f to follow",
  usage: 'logs SERVICE [--version V] [-n N] [-f] [--json] [--state-dir DIR] [--socket PATH]',
  help: [
    ['--version V', 'only version V of the service (default: every version, merged by time)'],
    ['-n N', 'how many of the last lines to print (default 50)'],
    ['-f, --follow', 'then print new lines as they are written, across rotations, until SIGINT'],
    [
      '--json',
      'print one JSON document {schema_version, ok, service, lines} (on failure ok: false,',
      'code, message); with -f, one JSON record per line instead',
    ],
    [
      '--state-dir DIR',
      "the broker state directory (default: the running broker's, else",
      '$XDG_STATE_HOME/handoff or ~/.local/state/handoff)',
    ],
    SOCKET_HELP,
  ],
  options: {
    ...socketOption,
    ...jsonOption,
    version: { type: 'string' },
    n: { type: 'string', short: 'n' },
    follow: { type: 'boolean', short: 'f' },
    'state-dir': { type: 'string' },
  },
  minPositionals: 1,
  maxPositionals: 1,
  positionalNames: ['SERVICE'],
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const service = args.positionals[0]!;
    const version = stringOption(args, 'version');
    if (version === '') throw new UsageError('--version must not be empty', 'logs');
    const count = integerOption(args, 'n', 50, 'logs');
    const follow = args.values.follow === true;
    const json = args.values.json === true;
    const stateDir = await resolveStateDir(args, io);
    let records: LogRecord[];
    let positions: FollowPositions;
    try {
      ({ records, positions } = await readLastRecords(stateDir, service, count, version));
    } catch (error) {
      if (!(error instanceof LogsError)) throw error;
      if (json) io.stdout(jsonFailure(error.code, error.message, { service }));
      else io.stderr(`handoff-broker logs: ${error.message}\n`);
      return EXIT_FAILED;
    }
    if (json && !follow) {
      io.stdout(
        `${JSON.stringify({ schema_version: 1, ok: true, service, version: version ?? null, state_dir: stateDir, lines: records })}\n`,
      );
      return EXIT_OK;
    }
    const print = (r: LogRecord) => io.stdout(json ? `${JSON.stringify(r)}\n` : textLine(r));
    for (const r of records) print(r);
    if (!follow) return EXIT_OK;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await followRecords(stateDir, service, print, stop.signal, version, positions);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return EXIT_OK;
  },
};

/** `2026-12-03T07:01:19.123Z 4242 stderr the line` (a split piece ends in `…`). */
export function textLine(r: LogRecord): string {
  return `${new Date(r.t).toISOString()} ${r.pid} ${r.stream} ${r.line}${r.split ? '…' : ''}\n`;
}
