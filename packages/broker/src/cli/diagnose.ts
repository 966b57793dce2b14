// `handoff-broker diagnose SERVICE`: what the broker knows of one service —
// its definitions with each field's source, its daemons, spawn budget, last
// spawn failure, recent journal events and log tail (the DIAGNOSE verb,
// rendered by the broker: src/admin-diagnostics.ts).
import { type Command, type ParsedArgs, UsageError } from '@handoff/backend-sdk/cli';
import { AdminVerb, validateServiceName } from '@handoff/protocol';
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
import { type CliIo, relayAdminRequest } from './output.js';

export const diagnoseCommand: Command = {
  name: 'diagnose',
  summary: "one service's definition (with sources), daemons, recent events and log tail",
  usage: 'diagnose SERVICE [--json] [--socket PATH] [--timeout MS]',
  help: [JSON_HELP, SOCKET_HELP, TIMEOUT_HELP],
  options: { ...socketOption, ...jsonOption, ...timeoutOption },
  minPositionals: 1,
  maxPositionals: 1,
  positionalNames: ['SERVICE'],
  run: (args: ParsedArgs, io: CliIo) => {
    const service = args.positionals[0] ?? '';
    const verdict = validateServiceName(service);
    if (!verdict.ok) throw new UsageError(verdict.reason, 'diagnose');
    return relayAdminRequest(
      brokerSocketPath(args, io.env),
      { verb: AdminVerb.DIAGNOSE, serviceName: service, json: args.values.json === true },
      integerOption(args, 'timeout', 5000, 'diagnose'),
      io,
    );
  },
};
