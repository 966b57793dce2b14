// `npm start`: the project's main job. A broker in the foreground whose
// embedded configuration serves the demo key-value daemon — spawned on the
// first Hello, handed each client's connection, stopped with the broker.
// Ctrl-C (or `handoff-broker shutdown`) stops everything.
//   HANDOFF_BROKER_SOCKET  where to listen (default: the per-user path)

import { createBrokerLogger, defaultBrokerSocketPath, startBroker } from '@handoff/broker';
import { demoKvServiceDefinition } from '@handoff/demo-daemon';

const socketPath = defaultBrokerSocketPath();
// The broker's log goes to stderr — pretty on a terminal, JSON otherwise ($HANDOFF_LOG_FORMAT) —
// so the banner on stdout stays readable.
const log = createBrokerLogger();
// The broker refuses root unless told (a root broker spawns root daemons).
// `npm start` is a demo that CI and containers run as root: it opts in, and says so.
const asRoot = process.geteuid?.() === 0;
if (asRoot)
  process.stderr.write(
    'npm start: running as root, so the broker runs with allowRoot (its daemons run as root too)\n',
  );
let broker: Awaited<ReturnType<typeof startBroker>>;
try {
  broker = await startBroker({
    socketPath,
    allowRoot: asRoot,
    // The daemon exits by itself after five idle minutes; the next client respawns it.
    services: [demoKvServiceDefinition({ idleTimeoutSecs: 300 })],
    logger: log,
  });
} catch (error) {
  process.stderr.write(
    `npm start: cannot start the broker at ${socketPath}: ${(error as Error).message}\n`,
  );
  process.exit(1);
}

const cli = (tool: string, args: string) => `npm run -s ${tool} -- ${args}`;
process.stdout.write(
  [
    '',
    `handoff broker listening on ${socketPath}`,
    'serving demo-kv 1.0.0 (started on the first client)',
    '',
    'In another terminal:',
    `  ${cli('demo-kv', 'set greeting hello')}`,
    `  ${cli('demo-kv', 'get greeting')}`,
    `  ${cli('handoff-broker', 'probe demo-kv')}`,
    `  ${cli('handoff-broker', 'metrics')}`,
    process.env.HANDOFF_BROKER_SOCKET
      ? `  (with HANDOFF_BROKER_SOCKET=${socketPath} set there too)`
      : '',
    'Ctrl-C stops the broker and the daemon.',
    '',
  ]
    .filter((line, i, all) => line !== '' || all[i - 1] !== '')
    .join('\n'),
);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) {
    process.stderr.write('stopping already; a second signal does not hurry it\n');
    return;
  }
  stopping = true;
  process.stdout.write(`\n${signal}: stopping the broker and its daemons…\n`);
  void broker.close({ deadlineMs: 5000 });
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
// An admin SHUTDOWN closes the broker too; either way, leave once it has.
broker.once('close', () => {
  process.stdout.write('broker stopped.\n');
  process.exit(0);
});
