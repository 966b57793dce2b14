// The dispatcher under test, in its own process:
//   ours-master.mjs <port> <workers>     prints "ready" once every worker is
// On SIGTERM prints its stats as one JSON line, closes, exits.
import { createDispatcher } from '@handoff/backend-sdk';

const [port, workers] = process.argv.slice(2).map(Number);
const dispatcher = await createDispatcher({
  // TCP_NODELAY once on the listener: every connection inherits it, so the
  // workers' setNoDelay(true) (what node:http's own server does per
  // connection, with a setsockopt) is already done.
  listen: { port, host: '127.0.0.1', backlog: 4096, noDelay: true },
  workers,
  workerScript: new URL('./ours-worker.mjs', import.meta.url).pathname,
  execArgv: [],
  maxQueuePerWorker: 1024,
  maxConnectionsPerWorker: 16384,
  spawnBackoff: { initialMs: 100, maxMs: 5000 },
  shutdownDeadline: 2000,
});
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  process.stdout.write(`${JSON.stringify(dispatcher.stats())}\n`);
  await dispatcher.close();
  process.exit(0);
});
