// `handoff-broker upgrade`: ask the running broker to hand over to a
// successor (admin verb UPGRADE) and wait until it did or did not. The work
// is the broker's (src/upgrade/); this prints its answer and exits with it.
import type { Command, ParsedArgs } from '@handoff/backend-sdk/cli';
import { AdminVerb } from '@handoff/protocol';
import { DEFAULT_UPGRADE_READY_MS } from '../upgrade/handover.js';
import {
  brokerSocketPath,
  integerOption,
  JSON_HELP,
  jsonOption,
  SOCKET_HELP,
  socketOption,
  timeoutOption,
} from './command.js';
import { type CliIo, relayAdminRequest } from './output.js';

/** Room past the ready deadline for the successor's start and the handover itself. */
const ANSWER_MARGIN_MS = 10_000;

export const upgradeCommand: Command = {
  name: 'upgrade',
  summary: 'replace the running broker by a fresh one (a newer install) without refusing a client',
  usage: 'upgrade [--ready-timeout MS] [--timeout MS] [--json] [--socket PATH]',
  help: [
    `--ready-timeout MS  how long the successor may take to be ready (default ${DEFAULT_UPGRADE_READY_MS});`,
    '                    past it the successor is killed and the old broker keeps serving (exit 1)',
    `--timeout MS        how long to wait for the answer (default: the ready timeout + ${ANSWER_MARGIN_MS})`,
    JSON_HELP,
    SOCKET_HELP,
  ],
  options: {
    ...socketOption,
    ...timeoutOption,
    ...jsonOption,
    'ready-timeout': { type: 'string' },
  },
  async run(args: ParsedArgs, io: CliIo): Promise<number> {
    const json = args.values.json === true;
    const socketPath = brokerSocketPath(args, io.env);
    const readyMs = integerOption(args, 'ready-timeout', 0, 'upgrade');
    const timeoutMs = integerOption(
      args,
      'timeout',
      (readyMs || DEFAULT_UPGRADE_READY_MS) + ANSWER_MARGIN_MS,
      'upgrade',
    );
    return relayAdminRequest(
      socketPath,
      { verb: AdminVerb.UPGRADE, json, readyDeadlineMs: BigInt(readyMs) },
      timeoutMs,
      io,
    );
  },
};
