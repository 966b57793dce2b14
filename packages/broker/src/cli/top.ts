// `handoff-broker top`: the live view on a terminal (top/live.ts), or one
// snapshot — `--once`, `--json`, or whenever stdout is not a terminal — as
// text or as one JSON document. Options and the snapshot path live here.
import { type Command, EXIT_OK, type ParsedArgs, UsageError } from '@handoff/backend-sdk/cli';
import { AdminClientError } from '../client/admin-client.js';
import { BrokerError } from '../errors.js';
import { runLive } from '../top/live.js';
import { buildView, isSortKey, SORT_KEYS, type SortKey } from '../top/model.js';
import { renderJson, renderText } from '../top/render.js';
import { type TopSample, takeSample } from '../top/sample.js';
import {
  brokerSocketPath,
  integerOption,
  JSON_HELP,
  jsonOption,
  SOCKET_HELP,
  socketOption,
  stringOption,
  TIMEOUT_HELP,
  timeoutOption,
} from './command.js';
import { type CliIo, describeAdminError, reportUnreachable } from './output.js';

/** A live view refreshing faster than this would mostly measure itself. */
const MIN_LIVE_INTERVAL_MS = 100;

export const topCommand: Command = {
  name: 'top',
  summary: 'a live view per service: daemons, sessions/s, Hello p50/p99, refusals',
  usage: 'top [--once] [--json] [--interval MS] [--sort KEY] [--socket PATH] [--timeout MS]',
  help: [
    ['--once', 'print one snapshot and exit (what top does when stdout is not a terminal)'],
    [JSON_HELP[0], `${JSON_HELP[1]}; implies --once`],
    [
      '--interval MS',
      'time between samples (default 1000; live at least 100); --once samples',
      'twice this far apart for its rates, or once with 0',
    ],
    ['--sort KEY', `${SORT_KEYS.join(', ')} (default service)`],
    SOCKET_HELP,
    TIMEOUT_HELP,
    ['keys (live)', 's / S next / previous sort column, 1-8 pick one, q or Ctrl-C quit'],
  ],
  options: {
    ...socketOption,
    ...timeoutOption,
    ...jsonOption,
    once: { type: 'boolean' },
    interval: { type: 'string' },
    sort: { type: 'string' },
  },
  run: runTop,
};

async function runTop(args: ParsedArgs, io: CliIo): Promise<number> {
  const socketPath = brokerSocketPath(args, io.env);
  const timeoutMs = integerOption(args, 'timeout', 5000, 'top');
  const intervalMs = integerOption(args, 'interval', 1000, 'top');
  const sortText = stringOption(args, 'sort') ?? 'service';
  if (!isSortKey(sortText))
    throw new UsageError(
      `--sort takes one of ${SORT_KEYS.join(', ')}, not ${JSON.stringify(sortText)}`,
      'top',
    );
  const json = args.values.json === true;
  const live = !json && args.values.once !== true && process.stdout.isTTY === true;
  if (!live) return snapshot({ socketPath, timeoutMs, intervalMs, sort: sortText, json }, io);
  if (intervalMs < MIN_LIVE_INTERVAL_MS)
    throw new UsageError(
      `--interval must be at least ${MIN_LIVE_INTERVAL_MS} ms for the live view`,
      'top',
    );
  return runLive(
    { socketPath, intervalMs, timeoutMs, sort: sortText, describe },
    { input: process.stdin, output: process.stdout, signals: process },
  );
}

interface SnapshotOptions {
  socketPath: string;
  timeoutMs: number;
  intervalMs: number;
  sort: SortKey;
  json: boolean;
}

/** Two samples `intervalMs` apart (one when 0), the second one's view printed. */
async function snapshot(options: SnapshotOptions, io: CliIo): Promise<number> {
  let first: TopSample | null = null;
  let second: TopSample;
  try {
    const ask = { timeoutMs: options.timeoutMs };
    if (options.intervalMs > 0) {
      first = await takeSample(options.socketPath, ask);
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
    }
    second = await takeSample(options.socketPath, ask);
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    return reportUnreachable(io, options.json, error.code, describe(error), options.socketPath);
  }
  const view = buildView(second, first, options.sort);
  io.stdout(options.json ? renderJson(view) : renderText(view));
  return EXIT_OK;
}

/** One line for why a sample could not be taken. */
function describe(error: unknown): string {
  if (error instanceof AdminClientError) return describeAdminError(error);
  if (error instanceof BrokerError) return `${error.code}: ${error.message}`;
  return (error as Error).message;
}
