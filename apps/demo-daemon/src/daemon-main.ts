#!/usr/bin/env node
// The demo-daemon process: settings from flags and from the environment a
// broker sets, JSON logs on stderr, and signals — SIGTERM or SIGINT drain
// and stop (a second one kills at once). Everything else is
// startDemoDaemon's (daemon.ts).
import { parseArgs } from 'node:util';
import { BROKER_ENV } from '@handoff/backend-sdk';
import pino, { type Logger } from 'pino';
import { type DemoDaemon, startDemoDaemon } from './daemon.js';

const USAGE = `Usage: demo-daemon [--endpoint PATH] [--idle-timeout-secs N] [--drain-ms MS]

The demo-kv cache daemon: a line wire and framed requests (payload protocol
0xF0D0) on one Unix socket. A broker starts it with the environment below;
started by hand, give it --endpoint in a private (0700) directory.

Options:
  --endpoint PATH          the socket to serve (default: $${BROKER_ENV.endpoint})
  --idle-timeout-secs N    exit after N seconds without a connection (default 0: never)
  --drain-ms MS            on SIGTERM/SIGINT, how long running requests may finish (default 5000)
  -h, --help               show this help

Environment:
  ${BROKER_ENV.endpoint}         the socket, when --endpoint is not given
  ${BROKER_ENV.control}   a broker's control socket: attach, so it can hand clients over
  ${BROKER_ENV.service}     the service name to register under (default demo-kv)
  HANDOFF_LOG_LEVEL        pino level of the JSON logs on stderr (default info)
  HANDOFF_LINE_CUTOVER     off: on a broker's SIGTERM, hand only idle line clients
                           to the next daemon, without the live cut-over (default on)
  HANDOFF_TAKEOVER_REHEARSAL  off: do not rehearse a takeover at boot (default on)

Exit codes: 0 stopped cleanly (signal or idle timeout), 1 could not start, 2 usage error.
`;

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;

class UsageError extends Error {}

interface Settings {
  endpoint: string;
  idleTimeoutSecs: number;
  drainMs: number;
}

/** Longest timer Node keeps (2^31 − 1 ms); anything longer would fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

function readSettings(argv: string[], env: NodeJS.ProcessEnv): Settings | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        endpoint: { type: 'string' },
        'idle-timeout-secs': { type: 'string' },
        'drain-ms': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const endpoint = (values.endpoint as string | undefined) ?? env[BROKER_ENV.endpoint];
  if (!endpoint) throw new UsageError(`give --endpoint PATH or set $${BROKER_ENV.endpoint}`);
  return {
    endpoint,
    idleTimeoutSecs: integer(values, 'idle-timeout-secs', 0, Math.floor(MAX_TIMER_MS / 1000)),
    drainMs: integer(values, 'drain-ms', 5000, MAX_TIMER_MS),
  };
}

function integer(
  values: Record<string, string | boolean | undefined>,
  name: string,
  fallback: number,
  max: number,
): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw) || Number(raw) > max) {
    throw new UsageError(`--${name} takes an integer from 0 to ${max}, not ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function createLogger(level: string): Logger {
  // Synchronous, like Node's own stderr on a pipe: nothing is lost when the
  // process exits right after a line.
  const destination = pino.destination({ dest: 2, sync: true });
  // Losing log lines must never take the daemon, and every client on it,
  // down. pino already goes quiet on EPIPE (a broker-spawned daemon
  // outlives its broker, and the stderr pipe dies with the broker); any
  // other write error (ENOSPC when stderr is a file on a full disk, EIO
  // from a vanished terminal) would be an unhandled 'error' event.
  destination.on('error', () => {});
  return pino({ name: 'demo-daemon', level }, destination);
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let settings: Settings | 'help';
  let log: Logger;
  try {
    settings = readSettings(argv, env);
    if (settings === 'help') {
      process.stdout.write(USAGE);
      return EXIT_OK;
    }
    log = createLogger(env.HANDOFF_LOG_LEVEL || 'info');
  } catch (error) {
    // pino refuses an unknown level with a plain Error: a usage error too.
    process.stderr.write(`demo-daemon: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }

  const serviceName = env[BROKER_ENV.service];
  const brokerControlPath = env[BROKER_ENV.control];
  let daemon: DemoDaemon;
  try {
    daemon = await startDemoDaemon({
      endpoint: settings.endpoint,
      ...(serviceName ? { serviceName } : {}),
      ...(brokerControlPath ? { brokerControlPath } : {}),
      idleTimeoutSecs: settings.idleTimeoutSecs,
      drainDeadlineMs: settings.drainMs,
      lineCutover: env.HANDOFF_LINE_CUTOVER !== 'off',
      rehearseTakeover: env.HANDOFF_TAKEOVER_REHEARSAL !== 'off',
      logger: log,
    });
  } catch (error) {
    // An endpoint in use or in an unsafe directory: say so and fail.
    log.fatal({ err: error, endpoint: settings.endpoint }, 'cannot start');
    return EXIT_FAILED;
  }

  const stop = (signal: NodeJS.Signals) => {
    log.info({ signal }, 'signal received; draining (send it again to kill)');
    void daemon.close(signal);
  };
  // once: the second signal meets Node's default handler and kills.
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await daemon.stopped;
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  return EXIT_OK;
}

// exitCode, not exit(): the process ends when the stopped daemon has let go
// of every handle — if one leaked, the hang shows it.
void main(process.argv.slice(2), process.env).then((code) => {
  process.exitCode = code;
});
