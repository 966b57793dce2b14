// `handoff-broker dump`: the broker's whole state as one snapshot — services
// with each setting's source, daemons, control channels, handoffs in
// progress, spawn budgets, fd store, recent events (the DUMP verb, rendered
// by the broker: src/admin-diagnostics.ts). With --output the CLI writes the
// JSON snapshot to a file itself (0600, whole or not at all).
import { renameSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  type Command,
  EXIT_FAILED,
  EXIT_OK,
  jsonFailure,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import { AdminVerb } from '@handoff/protocol';
import { adminRequest } from '../client/admin-client.js';
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
import {
  type CliIo,
  contractDocument,
  isAdminClientError,
  reportAdminError,
  withNewline,
} from './output.js';

export const dumpCommand: Command = {
  name: 'dump',
  summary: 'print (or save) a full snapshot of the broker state, each setting with its source',
  usage: 'dump [--json] [--output FILE] [--socket PATH] [--timeout MS]',
  help: [
    JSON_HELP,
    '--output FILE   write the JSON snapshot to FILE (mode 0600) instead of printing it',
    SOCKET_HELP,
    TIMEOUT_HELP,
  ],
  options: {
    ...socketOption,
    ...jsonOption,
    ...timeoutOption,
    output: { type: 'string' },
  },
  run: runDump,
};

async function runDump(args: ParsedArgs, io: CliIo): Promise<number> {
  const json = args.values.json === true;
  const output = stringOption(args, 'output');
  if (output === '') throw new UsageError('--output must not be empty', 'dump');
  const timeoutMs = integerOption(args, 'timeout', 5000, 'dump');
  let reply: Awaited<ReturnType<typeof adminRequest>>;
  try {
    reply = await adminRequest(
      brokerSocketPath(args, io.env),
      // A file is always JSON: it is for reading back later, by programs too.
      { verb: AdminVerb.DUMP, json: json || output !== undefined },
      { timeoutMs },
    );
  } catch (error) {
    if (!isAdminClientError(error)) throw error;
    return reportAdminError(io, json, error);
  }
  if (output === undefined || reply.exitCode !== EXIT_OK) {
    if (json) io.stdout(contractDocument(reply.body, reply.exitCode));
    else if (reply.exitCode === EXIT_OK) io.stdout(withNewline(reply.body));
    else io.stderr(withNewline(reply.body));
    return reply.exitCode;
  }
  const path = resolve(output);
  try {
    writeFileSync(`${path}.tmp`, contractDocument(reply.body, reply.exitCode), { mode: 0o600 });
    renameSync(`${path}.tmp`, path);
  } catch (error) {
    const message = `cannot write ${path}: ${(error as Error).message}`;
    if (json) io.stdout(jsonFailure('WRITE_FAILED', message, { path }));
    io.stderr(`handoff-broker dump: ${message}\n`);
    return EXIT_FAILED;
  }
  const message = `wrote the broker state to ${path}`;
  if (json)
    io.stdout(
      `${JSON.stringify({ schema_version: 1, ok: true, code: 'WRITTEN', message, path })}\n`,
    );
  else io.stdout(`${message}\n`);
  return EXIT_OK;
}
