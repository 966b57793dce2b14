// The CLI commands that are one admin request each (status, list, metrics,
// healthz, shutdown): ask the broker, print its reply as it came, exit
// with its exit code. The broker renders text and JSON (src/admin.ts).

import { type Command, EXIT_FAILED, EXIT_USAGE, type ParsedArgs } from '@handoff/backend-sdk/cli';
import { type AdminRequest, AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
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
import { type CliIo, describeAdminError, isAdminClientError, withNewline } from './output.js';

async function ask(
  command: string,
  args: ParsedArgs,
  io: CliIo,
  request: Partial<AdminRequest>,
): Promise<number> {
  const socketPath = brokerSocketPath(args, io.env);
  const timeoutMs = integerOption(args, 'timeout', 5000, command);
  try {
    const reply = await adminRequest(socketPath, request, { timeoutMs });
    // A refusal of the request itself (exit 2) is an error message, not output.
    if (reply.exitCode === EXIT_USAGE && !request.json) io.stderr(withNewline(reply.body));
    else io.stdout(withNewline(reply.body));
    return reply.exitCode;
  } catch (error) {
    if (!isAdminClientError(error)) throw error;
    io.stderr(`handoff-broker: ${describeAdminError(error)}\n`);
    return EXIT_FAILED;
  }
}

const common = { ...socketOption, ...timeoutOption };

export const statusCommand: Command = {
  name: 'status',
  summary: 'show what the broker is doing',
  usage: 'status [--json] [--socket PATH]',
  help: [JSON_HELP, SOCKET_HELP, TIMEOUT_HELP],
  options: { ...common, ...jsonOption },
  run: (args, io) =>
    ask('status', args, io, { verb: AdminVerb.STATUS, json: args.values.json === true }),
};

export const listCommand: Command = {
  name: 'list',
  summary: 'list running daemon instances (of one service, if named)',
  usage: 'list [SERVICE] [--json] [--socket PATH]',
  help: [JSON_HELP, SOCKET_HELP, TIMEOUT_HELP],
  options: { ...common, ...jsonOption },
  maxPositionals: 1,
  run: (args, io) =>
    ask('list', args, io, {
      verb: AdminVerb.LIST_INSTANCES,
      json: args.values.json === true,
      serviceName: args.positionals[0] ?? '',
    }),
};

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'print the broker metrics (OpenMetrics text)',
  usage: 'metrics [--socket PATH]',
  help: [SOCKET_HELP, TIMEOUT_HELP],
  options: common,
  run: (args, io) => ask('metrics', args, io, { verb: AdminVerb.METRICS }),
};

export const healthzCommand: Command = {
  name: 'healthz',
  summary: 'check the broker health (exit 1 when unhealthy)',
  usage: 'healthz [--json] [--socket PATH]',
  help: [JSON_HELP, SOCKET_HELP, TIMEOUT_HELP],
  options: { ...common, ...jsonOption },
  run: (args, io) =>
    ask('healthz', args, io, { verb: AdminVerb.HEALTHZ, json: args.values.json === true }),
};

export const shutdownCommand: Command = {
  name: 'shutdown',
  summary: 'stop the broker gracefully',
  usage: 'shutdown [--deadline MS] [--json] [--socket PATH]',
  help: [
    '--deadline MS   how long in-flight work may drain (default: the broker’s, 5000)',
    JSON_HELP,
    SOCKET_HELP,
    TIMEOUT_HELP,
  ],
  options: { ...common, ...jsonOption, deadline: { type: 'string' } },
  run: (args, io) =>
    ask('shutdown', args, io, {
      verb: AdminVerb.SHUTDOWN,
      json: args.values.json === true,
      drainDeadlineMs: BigInt(integerOption(args, 'deadline', 0, 'shutdown')),
    }),
};
