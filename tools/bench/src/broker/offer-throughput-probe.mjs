// A focused probe of the server side of broker.handoff.throughput, for
// profiling and A/B runs of the offer (broker) and adoption (daemon) paths:
// one broker (broker-process.mjs, or OFFER_PROBE_BROKER=<another one>), then
// LOOPS concurrent loops of a hand-written client (Hello with the
// handle-passing capability and the request in one write, read until the
// response), so that no client library is measured. Prints handoffs/s and
// the broker's, the daemon's (/proc/<pid>/schedstat) and the client's CPU µs
// per handoff.
//   node offer-throughput-probe.mjs [loops=64] [measureMs=3000]
// OFFER_PROBE_BROKER_ARGS / BENCH_DAEMON_NODE_ARGS: node flags for the broker / its daemons.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childReady, stopOnExit } from './probe-children.mjs';
import { echoRequest, helloBytes, onlyDaemonOf, readFrames } from './probe-wire.mjs';

const loops = Number(process.argv[2] ?? 64);
const measureMs = Number(process.argv[3] ?? 3000);
const dir = mkdtempSync(join(tmpdir(), 'offer-probe-'));
const brokerPath = join(dir, 'broker.sock');
const script = process.env.OFFER_PROBE_BROKER ?? join(import.meta.dirname, 'broker-process.mjs');
const brokerArgs = (process.env.OFFER_PROBE_BROKER_ARGS ?? '').split(' ').filter(Boolean);
const broker = spawn(process.execPath, [...brokerArgs, script, brokerPath], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let daemonPid = 0;
stopOnExit([broker]);
// Never hold the bench lock past a hang.
const watchdog = setTimeout(() => {
  console.error('probe: timed out');
  broker.kill('SIGKILL');
  if (daemonPid) process.kill(daemonPid, 'SIGKILL');
  process.exit(1);
}, 120_000);
await childReady(broker);

const helloAndRequest = Buffer.concat([helloBytes('echo', { handoff: true }), echoRequest]);

/** One handoff: Negotiated + relay (written by the daemon) + the response = 3 frames. */
async function handoff() {
  const socket = connect({ path: brokerPath });
  socket.on('error', () => {});
  socket.write(helloAndRequest);
  try {
    await readFrames(socket, 3);
  } finally {
    socket.destroy();
  }
}

await handoff();
daemonPid = onlyDaemonOf(broker.pid);
const cpu = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
let measuring = false;
let stop = false;
let done = 0;
let errors = 0;
async function loop() {
  while (!stop) {
    try {
      await handoff();
      if (measuring) done++;
    } catch {
      if (measuring) errors++;
    }
  }
}
const running = Array.from({ length: loops }, loop);
await new Promise((r) => setTimeout(r, 1000));
measuring = true;
const b0 = cpu(broker.pid);
const d0 = cpu(daemonPid);
const c0 = process.cpuUsage();
const t0 = performance.now();
await new Promise((r) => setTimeout(r, measureMs));
const elapsed = performance.now() - t0;
const brokerUs = cpu(broker.pid) - b0;
const daemonUs = cpu(daemonPid) - d0;
const client = process.cpuUsage(c0);
const n = done;
measuring = false;
stop = true;
await Promise.all(running);
const per = (us) => Number((us / n).toFixed(1));
console.log(
  JSON.stringify({
    loops,
    handoffs_per_s: Math.round((n * 1000) / elapsed),
    errors,
    broker_cpu_us: per(brokerUs),
    daemon_cpu_us: per(daemonUs),
    client_cpu_us: per(client.user + client.system),
  }),
);
broker.kill('SIGTERM');
await once(broker, 'exit');
// The daemon may outlive its broker by design (a successor rediscovers it): not this one.
try {
  process.kill(daemonPid, 'SIGTERM');
} catch {}
rmSync(dir, { recursive: true, force: true });
clearTimeout(watchdog);
