// The demo daemon with a slow warm-up, for lifecycle.cold_start_queue:
//   slow-daemon.mjs <daemon-main.js> [its arguments…]
// At start it writes $BENCH_MARKER (JSON: pid, endpoint, whether the
// endpoint already exists — the broker bound it — and inherited fds),
// atomically, then waits $BENCH_WARMUP_MS before running the real daemon,
// as a daemon that loads a large state would.
import { readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';

const [entry, ...args] = process.argv.slice(2);
const endpoint = process.env.HANDOFF_ENDPOINT ?? '';
let endpointExists = false;
try {
  endpointExists = statSync(endpoint).isSocket();
} catch {}
const marker = process.env.BENCH_MARKER;
if (marker) {
  const note = {
    pid: process.pid,
    endpoint,
    endpoint_exists: endpointExists,
    fds: readdirSync('/proc/self/fd').length,
  };
  writeFileSync(`${marker}.tmp`, JSON.stringify(note));
  renameSync(`${marker}.tmp`, marker);
}
await new Promise((resolve) => setTimeout(resolve, Number(process.env.BENCH_WARMUP_MS ?? 1000)));
process.argv = [process.argv[0], entry, ...args];
await import(entry);
