// The CLI commands that are one admin request each (status, list, metrics,
// healthz, shutdown): ask the broker, print its reply, exit with its exit
// code. The broker renders text and JSON (src/admin.ts); under --json this
// file holds the reply to the CLI contract (ok, code, message) and turns
// metrics' OpenMetrics text into JSON families (metrics-json.ts).

import {
  type Command,
  EXIT_FAILED,
  EXIT_USAGE,
  jsonFailure,
  type OptionHelp,
  type ParsedArgs,
} from '@handoff/backend-sdk/cli';
import { type AdminRequest, AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
import { OpenMetricsParseError } from '../openmetrics-parse.js';
import {
  brokerSocketPath,
  integerOption,
  JSON_HELP,
  jsonOption,
  SOCKET_HELP,
  socketOption,
  TIMEOUT_HELP,
  timeoutOption,
} from './command.js';
import { metricsJson } from './metrics-json.js';
import {
  type CliIo,
  contractDocument,
  isAdminClientError,
  reportAdminError,
  withNewline,
} from './output.js';

/** A failed reply's code and message, when its body names none (healthz: UNHEALTHY). */
type FailureOf = (doc: Record<string, unknown>) => { code: string; message: string };

async function ask(
  command: string,
  args: ParsedArgs,
  io: CliIo,
  request: Partial<AdminRequest>,
  failure?: FailureOf,
): Promise<number> {
  const json = args.values.json === true;
  const socketPath = brokerSocketPath(args, io.env);
  const timeoutMs = integerOption(args, 'timeout', 5000, command);
  try {
    const reply = await adminRequest(socketPath, { ...request, json }, { timeoutMs });
    if (json) io.stdout(contractDocument(reply.body, reply.exitCode, failure));
    // A refusal of the request itself (exit 2) is an error message, not output.
    else if (reply.exitCode === EXIT_USAGE) io.stderr(withNewline(reply.body));
    else io.stdout(withNewline(reply.body));
    return reply.exitCode;
  } catch (error) {
    if (!isAdminClientError(error)) throw error;
    return reportAdminError(io, json, error);
  }
}

const common = { ...socketOption, ...timeoutOption, ...jsonOption };
const COMMON_HELP: OptionHelp[] = [JSON_HELP, SOCKET_HELP, TIMEOUT_HELP];
const COMMON_USAGE = '[--json] [--socket PATH] [--timeout MS]';

export const statusCommand: Command = {
  name: 'status',
  summary: 'show what the broker is doing, and which services run or start on demand',
  usage: `status ${COMMON_USAGE}`,
  help: COMMON_HELP,
  options: common,
  run: (args, io) => ask('status', args, io, { verb: AdminVerb.STATUS }),
};

export const listCommand: Command = {
  name: 'list',
  summary: 'list running daemon instances (of one service, if named)',
  usage: `list [SERVICE] ${COMMON_USAGE}`,
  help: [
    [
      'SERVICE',
      'only its daemons; says whether a service with none is defined (starts on demand,',
      'exit 0) or unknown (SERVICE_UNKNOWN, exit 1)',
    ],
    ...COMMON_HELP,
  ],
  options: common,
  maxPositionals: 1,
  run: (args, io) =>
    ask('list', args, io, {
      verb: AdminVerb.LIST_INSTANCES,
      serviceName: args.positionals[0] ?? '',
    }),
};

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'print the broker metrics (OpenMetrics text; --json: families and samples)',
  usage: `metrics ${COMMON_USAGE}`,
  help: [
    [
      '--json',
      'print one JSON document: {schema_version, ok, families: [{name, type, help, samples:',
      '[{name, labels, value}]}]} instead of OpenMetrics text',
    ],
    SOCKET_HELP,
    TIMEOUT_HELP,
  ],
  options: common,
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    if (args.values.json !== true) return ask('metrics', args, io, { verb: AdminVerb.METRICS });
    // The broker sends the scrape format; the JSON is read from it here.
    const socketPath = brokerSocketPath(args, io.env);
    const timeoutMs = integerOption(args, 'timeout', 5000, 'metrics');
    let reply: Awaited<ReturnType<typeof adminRequest>>;
    try {
      reply = await adminRequest(socketPath, { verb: AdminVerb.METRICS }, { timeoutMs });
    } catch (error) {
      if (!isAdminClientError(error)) throw error;
      return reportAdminError(io, true, error);
    }
    if (reply.exitCode !== 0) {
      io.stdout(
        jsonFailure('FAILED', reply.body.trim() || 'the broker did not render its metrics'),
      );
      return reply.exitCode;
    }
    let families: ReturnType<typeof metricsJson>;
    try {
      families = metricsJson(reply.body);
    } catch (error) {
      if (!(error instanceof OpenMetricsParseError)) throw error;
      const message = `the broker's metrics are not OpenMetrics text: ${error.message}`;
      io.stdout(jsonFailure('PROTOCOL', message));
      return EXIT_FAILED;
    }
    io.stdout(`${JSON.stringify({ schema_version: 1, ok: true, families })}\n`);
    return reply.exitCode;
  },
};

export const healthzCommand: Command = {
  name: 'healthz',
  summary: 'check the broker health (exit 1 when unhealthy)',
  usage: `healthz ${COMMON_USAGE}`,
  help: COMMON_HELP,
  options: common,
  run: (args, io) =>
    ask('healthz', args, io, { verb: AdminVerb.HEALTHZ }, (doc) => ({
      code: 'UNHEALTHY',
      message: `unhealthy: ${failingChecks(doc)}`,
    })),
};

function failingChecks(doc: Record<string, unknown>): string {
  const checks = Array.isArray(doc.checks) ? (doc.checks as Record<string, unknown>[]) : [];
  const failing = checks.filter((c) => c.ok === false).map((c) => `${c.name}: ${c.detail}`);
  return failing.length > 0 ? failing.join('; ') : 'a check failed';
}

export const shutdownCommand: Command = {
  name: 'shutdown',
  summary: 'stop the broker gracefully',
  usage: `shutdown [--deadline MS] ${COMMON_USAGE}`,
  help: [
    ['--deadline MS', 'how long in-flight work may drain (default: the broker’s, 5000)'],
    ...COMMON_HELP,
  ],
  options: { ...common, deadline: { type: 'string' } },
  run: (args, io) =>
    ask('shutdown', args, io, {
      verb: AdminVerb.SHUTDOWN,
      drainDeadlineMs: BigInt(integerOption(args, 'deadline', 0, 'shutdown')),
    }),
};
