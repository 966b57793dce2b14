// A broker for the capacity suite, in its own process over the built
// packages, its services read from a config dir the bench wrote (as
// `handoff-broker serve --config-dir` would). Started with --expose-gc.
//   capacity-broker.mjs <socket> <configDir>
// Prints one JSON line once listening: {"ready":true,"start_ms","services"}
// (start_ms: startBroker() from call to resolve, config load included).
// On each "rss" line on stdin: two full GCs, then {"rss_kib","heap_used_kib"}.
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { startBroker } from '@handoff/broker';
import pino from 'pino';

const [socketPath, configDir] = process.argv.slice(2);
const t0 = performance.now();
const broker = await startBroker({
  socketPath,
  configDir,
  watchConfig: false,
  logger: pino({ level: 'warn' }),
  allowRoot: true,
  helloRateLimit: false,
});
const startMs = performance.now() - t0;
process.on('SIGTERM', () => void broker.close().then(() => process.exit(0)));
process.stdout.write(
  `${JSON.stringify({ ready: true, start_ms: startMs, services: broker.definitions().length })}\n`,
);
const vm = (field) =>
  Number(
    /(\d+) kB/.exec(
      readFileSync('/proc/self/status', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(field)) ?? '',
    )?.[1] ?? Number.NaN,
  );
createInterface({ input: process.stdin }).on('line', (command) => {
  if (command !== 'rss') return;
  globalThis.gc?.();
  globalThis.gc?.();
  process.stdout.write(
    `${JSON.stringify({ rss_kib: vm('VmRSS:'), heap_used_kib: Math.round(process.memoryUsage().heapUsed / 1024) })}\n`,
  );
});
