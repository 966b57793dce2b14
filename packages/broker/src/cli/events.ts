// `handoff-broker events`: the lifecycle event journal (src/events/) read
// from its files — the last N events, since a time, of one service — and
// with -f the new ones as they are written until SIGINT. The state
// directory: --state-dir, else the running broker's (its STATUS), else the default.
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  jsonFailure,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import { eventLine, type JournalEvent } from '../events/event.js';
import {
  type EventFilter,
  EventsError,
  followEvents,
  parseSince,
  readEvents,
} from '../events/reader.js';
import { integerOption, SOCKET_HELP, socketOption, stringOption } from './command.js';
import type { CliIo } from './output.js';
import { resolveStateDir } from './state-dir.js';

export const eventsCommand: Command = {
  name: 'events',
  summary: 'print the lifecycle event journal (spawns, exits, refusals, reloads…), -f to follow',
  usage:
    'events [-f] [--since DURATION|TIME] [--service S] [-n N] [--json] [--state-dir DIR] [--socket PATH]',
  help: [
    '-f, --follow        then print new events as they are written, across rotations, until SIGINT',
    '--since WHEN        only events since a duration ago (90s, 15m, 2h, 1d) or an ISO 8601 time',
    '--service S         only events of service S',
    '-n N                how many of the last events to print (default 50)',
    '--json              print one JSON document {schema_version, ok, events}; with -f,',
    '                    one JSON event per line instead',
    "--state-dir DIR     the broker state directory (default: the running broker's, else",
    '                    $XDG_STATE_HOME/handoff or ~/.local/state/handoff)',
    SOCKET_HELP,
  ],
  options: {
    ...socketOption,
    json: { type: 'boolean' },
    follow: { type: 'boolean', short: 'f' },
    since: { type: 'string' },
    service: { type: 'string' },
    n: { type: 'string', short: 'n' },
    'state-dir': { type: 'string' },
  },
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const json = args.values.json === true;
    const follow = args.values.follow === true;
    const count = integerOption(args, 'n', 50, 'events');
    const filter: EventFilter = {};
    const service = stringOption(args, 'service');
    if (service === '') throw new UsageError('--service must not be empty', 'events');
    if (service !== undefined) filter.service = service;
    const since = stringOption(args, 'since');
    if (since !== undefined) {
      try {
        filter.sinceMs = parseSince(since);
      } catch (error) {
        if (error instanceof EventsError) throw new UsageError(error.message, 'events');
        throw error;
      }
    }
    const stateDir = await resolveStateDir(args, io);
    let events: JournalEvent[];
    let position: Awaited<ReturnType<typeof readEvents>>['position'] = null;
    try {
      ({ events, position } = await readEvents(stateDir, filter, count));
    } catch (error) {
      if (!(error instanceof EventsError)) throw error;
      // Nothing yet is not a failure when following: the journal may appear.
      if (!(follow && error.code === 'NO_EVENTS')) {
        if (json) io.stdout(jsonFailure(error.code, error.message, { state_dir: stateDir }));
        io.stderr(`handoff-broker events: ${error.message}\n`);
        return EXIT_FAILED;
      }
      events = [];
    }
    if (json && !follow) {
      io.stdout(
        `${JSON.stringify({ schema_version: 1, ok: true, state_dir: stateDir, events })}\n`,
      );
      return EXIT_OK;
    }
    const print = (e: JournalEvent) => io.stdout(json ? `${JSON.stringify(e)}\n` : eventLine(e));
    for (const e of events) print(e);
    if (!follow) return EXIT_OK;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await followEvents(stateDir, filter, print, stop.signal, position);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return EXIT_OK;
  },
};
