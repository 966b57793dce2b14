// `serve`'s output contract: --log-format (the broker log on stderr, JSON or
// pretty, src/log-output.ts), and under --json the one document on stdout —
// `{ok: true, code: "SERVING", …}` once it serves, or the start's failure.
import {
  jsonFailure,
  type OptionHelp,
  type OptionSpecs,
  type ParsedArgs,
  UsageError,
} from '@handoff/backend-sdk/cli';
import type { Logger } from 'pino';
import { createBrokerLogger, LOG_FORMATS, parseLogFormat } from '../log-output.js';
import { stringOption } from './command.js';
import type { CliIo } from './output.js';

export const logFormatOptions: OptionSpecs = { 'log-format': { type: 'string' } };

export const LOG_FORMAT_HELP: OptionHelp[] = [
  [
    '--log-format F',
    'the broker log on stderr: json, pretty or auto (default: $HANDOFF_LOG_FORMAT, else',
    'auto: pretty on a terminal, JSON otherwise)',
  ],
];

/** The logger `serve` gives startBroker; a usage error for an unknown format. */
export function serveLogger(args: ParsedArgs, io: CliIo): Logger {
  const raw = stringOption(args, 'log-format');
  const format = parseLogFormat(raw);
  if (raw !== undefined && format === undefined)
    throw new UsageError(
      `--log-format takes ${LOG_FORMATS.join(', ')}, not ${JSON.stringify(raw)}`,
      'serve',
    );
  return createBrokerLogger({ ...(format === undefined ? {} : { format }), env: io.env });
}

/** A start that failed: one line on stderr, and under --json one document on stdout. */
export function serveFailed(io: CliIo, json: boolean, code: string, message: string): void {
  if (json) io.stdout(jsonFailure(code, message, { command: 'serve' }));
  io.stderr(`handoff-broker serve: ${message}\n`);
}

/** Under --json, the document that says the broker serves (scripts wait for it). */
export function serveStarted(
  io: CliIo,
  json: boolean,
  facts: { socketPath: string; services: number },
): void {
  if (!json) return;
  const message = `serving ${facts.services} services at ${facts.socketPath}`;
  io.stdout(
    `${JSON.stringify({ schema_version: 1, ok: true, code: 'SERVING', message, pid: process.pid, socket_path: facts.socketPath, services: facts.services })}\n`,
  );
}
