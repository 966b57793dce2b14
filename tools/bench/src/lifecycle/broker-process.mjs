// A broker for lifecycle.cold_start_queue in its own process, embedded
// with startBroker so that `ownDaemonSockets` can be switched off:
//   broker-process.mjs <socket> <config-file> <own: true|false>
// prints "ready" once listening; SIGTERM closes it.
import { startBroker } from '@handoff/broker';
import pino from 'pino';

const [socketPath, configFile, own] = process.argv.slice(2);
const broker = await startBroker({
  socketPath,
  configFile,
  watchConfig: false,
  ownDaemonSockets: own === 'true',
  logger: pino({ level: 'warn' }),
  // A throwaway broker in a temp dir; benchmarks run as root on CI machines.
  allowRoot: true,
  // The benches measure the broker's own throughput, not its per-uid Hello limit.
  helloRateLimit: false,
});
process.on('SIGTERM', () => void broker.close({ deadlineMs: 1000 }).then(() => process.exit(0)));
process.stdout.write('ready\n');
