// The broker for the broker suite, in its own process, as users run it:
// plain JavaScript over the built packages, no transpiler loaded.
//   broker-process.mjs <socket>     prints "ready" once listening
import { join } from 'node:path';
import { startBroker } from '@handoff/broker';
import pino from 'pino';

const socketPath = process.argv[2];
const daemon = join(import.meta.dirname, 'echo-daemon.mjs');
// BENCH_DAEMON_NODE_ARGS: node flags for the daemons (e.g. --cpu-prof
// --cpu-prof-dir=…, which NODE_OPTIONS does not take) to profile the adopting side.
const daemonNodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
// BENCH_DAEMON_UNDER: a command the daemons run under (valgrind, for the
// instructions suite), which also gives them longer to attach.
const under = (process.env.BENCH_DAEMON_UNDER ?? '').split(' ').filter(Boolean);
const daemonArgv = [...under, process.execPath, ...daemonNodeArgs, daemon];
const service = (name, handoff) => ({
  name,
  version: '1.0.0',
  command: daemonArgv[0],
  args: daemonArgv.slice(1),
  handoff,
  readyTimeoutMs: under.length > 0 ? 300_000 : 30_000,
});
const broker = await startBroker({
  socketPath,
  services: [service('echo', true), service('echo-plain', false)],
  watchConfig: false,
  logger: pino({ level: 'warn' }),
  // A throwaway broker in a temp dir; benchmarks run as root on CI machines.
  allowRoot: true,
  // The benches measure the broker's own throughput, not its per-uid Hello limit.
  helloRateLimit: false,
});
process.on('SIGTERM', () => void broker.close().then(() => process.exit(0)));
process.stdout.write('ready\n');
