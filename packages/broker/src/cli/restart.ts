// `handoff-broker restart <service>`: a rolling restart of a service's
// running daemons through the broker's RESTART verb — a replacement starts,
// is probed, takes new clients, and the old one drains. The broker renders
// the reply; this file builds the request and speaks for an unreachable broker.
import { type Command, type ParsedArgs, UsageError } from '@handoff/backend-sdk/cli';
import { AdminVerb, validateServiceName, validateVersion } from '@handoff/protocol';
import {
  brokerSocketPath,
  integerOption,
  JSON_HELP,
  jsonOption,
  SOCKET_HELP,
  socketOption,
  stringOption,
  timeoutOption,
} from './command.js';
import { type CliIo, relayAdminRequest } from './output.js';

/** The broker waits for the replacement; the CLI waits a little longer than it could. */
const DEFAULT_TIMEOUT_MS = 120_000;

export const restartCommand: Command = {
  name: 'restart',
  summary: 'replace a service’s running daemon without refusing a client (rolling restart)',
  usage:
    'restart SERVICE [--version V] [--drain MS] [--ready-timeout MS] [--timeout MS] [--json] [--socket PATH]',
  help: [
    '--version V          only the daemon of this version (default: every running version)',
    '--drain MS           how long the old daemon may drain after SIGTERM before SIGKILL',
    '                     (default: the definition’s drainMs, 30000)',
    '--ready-timeout MS   how long the replacement may take to attach and pass its probe',
    '                     (default: the definition’s readyTimeoutMs)',
    `--timeout MS         how long to wait for the broker's answer (default ${DEFAULT_TIMEOUT_MS})`,
    JSON_HELP,
    SOCKET_HELP,
  ],
  options: {
    ...socketOption,
    ...jsonOption,
    ...timeoutOption,
    version: { type: 'string' },
    drain: { type: 'string' },
    'ready-timeout': { type: 'string' },
  },
  minPositionals: 1,
  maxPositionals: 1,
  positionalNames: ['SERVICE'],
  run: runRestart,
};

async function runRestart(args: ParsedArgs, io: CliIo): Promise<number> {
  const json = args.values.json === true;
  const service = args.positionals[0] ?? '';
  const version = stringOption(args, 'version');
  // Verdicts, not throws: a bad name is a usage error here, not a round trip.
  const verdicts = [
    validateServiceName(service),
    ...(version === undefined ? [] : [validateVersion(version, '--version')]),
  ];
  for (const verdict of verdicts) if (!verdict.ok) throw new UsageError(verdict.reason, 'restart');
  const drainMs = integerOption(args, 'drain', 0, 'restart');
  const readyMs = integerOption(args, 'ready-timeout', 0, 'restart');
  const timeoutMs = integerOption(args, 'timeout', DEFAULT_TIMEOUT_MS, 'restart');
  const socketPath = brokerSocketPath(args, io.env);
  return relayAdminRequest(
    socketPath,
    {
      verb: AdminVerb.RESTART,
      json,
      serviceName: version === undefined ? service : `${service}@${version}`,
      drainDeadlineMs: BigInt(drainMs),
      readyDeadlineMs: BigInt(readyMs),
    },
    timeoutMs,
    io,
  );
}
