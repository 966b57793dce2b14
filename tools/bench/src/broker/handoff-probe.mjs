// A focused probe of broker.connect_to_first_response.handoff for profiling
// and A/B runs: one broker (broker-process.mjs, or HELLO_PROBE_B), then N
// rounds, rotated, of: connectService + first request (initialData) → first
// response; the same through a hand-written client (Hello with the
// handle-passing capability and the request in one write, read until the
// response frame) — the broker and daemon without the client library; and
// straight to the daemon. Prints p50/p99 and the broker's and the daemon's
// on-CPU µs per round (/proc/<pid>/schedstat), and the client's own CPU.
// HANDOFF_PROBE_CS_A=<a built client entry, e.g. a copy of HEAD's
// dist/client/index.js>: adds mode `csA`, connectService from that build, for
// an A/B of the client library in the same run (HANDOFF_PROBE_MODES picks modes).
//   node handoff-probe.mjs [n]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectService } from '@handoff/broker';
import { childReady, stopOnExit } from './probe-children.mjs';
import { helloBytes, onlyDaemonOf, readFrames, echoRequest as request } from './probe-wire.mjs';

// Never hold the bench lock past a hang: give up after 3 minutes.
const spawned = [];
stopOnExit(spawned);
const watchdog = setTimeout(
  () => {
    console.error('probe: timed out');
    for (const c of spawned) c.kill('SIGKILL');
    process.exit(1);
  },
  Number(process.env.PROBE_TIMEOUT_MS ?? 180_000),
);
const n = Number(process.argv[2] ?? 1000);
const csA = process.env.HANDOFF_PROBE_CS_A
  ? (await import(process.env.HANDOFF_PROBE_CS_A)).connectService
  : undefined;
const dir = mkdtempSync(join(tmpdir(), 'handoff-probe-'));
const nodeArgs = (process.env.HELLO_PROBE_NODE_ARGS ?? '').split(' ').filter(Boolean);
// HELLO_PROBE_PIN=<cpu>: servers on that CPU (run the probe under taskset on another), so
// where the scheduler happens to place each process does not decide an A/B run.
const pin = process.env.HELLO_PROBE_PIN;
const pinned = (args) =>
  pin === undefined
    ? [process.execPath, args]
    : ['taskset', ['-c', pin, process.execPath, ...args]];
const brokerPath = join(dir, 'broker.sock');
const script = process.env.HELLO_PROBE_B ?? join(import.meta.dirname, 'broker-process.mjs');
const broker = spawn(...pinned([...nodeArgs, script, brokerPath]), {
  stdio: ['ignore', 'pipe', 'inherit'],
});
spawned.push(broker);
await childReady(broker);
const first = await connectService('echo', { version: '1.0.0', brokerPath, timeoutMs: 60_000 });
const pipe = first.negotiated.backendPipe;
first.socket.destroy();
const daemonPid = onlyDaemonOf(broker.pid);
const helloAndRequest = Buffer.concat([helloBytes('echo', { handoff: true }), request]);

/** connectService (or csA's) + first request → first response. */
async function viaConnectService(connectServiceOf) {
  const t0 = performance.now();
  const { socket } = await connectServiceOf('echo', {
    version: '1.0.0',
    brokerPath,
    timeoutMs: 10_000,
    initialData: request,
  });
  await readFrames(socket, 1);
  const e = performance.now() - t0;
  socket.destroy();
  return e;
}
const modes = {
  cs: () => viaConnectService(connectService),
  csA: () => viaConnectService(csA),
  raw: async () => {
    const t0 = performance.now();
    const socket = connect({ path: brokerPath });
    socket.write(helloAndRequest);
    await readFrames(socket, 3);
    const e = performance.now() - t0;
    socket.destroy();
    return e;
  },
  direct: async () => {
    const t0 = performance.now();
    const socket = connect({ path: pipe });
    socket.write(request);
    await readFrames(socket, 1);
    const e = performance.now() - t0;
    socket.destroy();
    return e;
  },
};
const cpu = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
const names = (
  process.env.HANDOFF_PROBE_MODES ?? (csA ? 'cs,csA,raw,direct' : 'cs,raw,direct')
).split(',');
const stats = Object.fromEntries(names.map((m) => [m, { t: [], broker: 0, daemon: 0, client: 0 }]));
for (let i = 0; i < 200; i++) for (const m of names) await modes[m]();
for (let i = 0; i < n; i++) {
  for (let j = 0; j < names.length; j++) {
    const m = names[(i + j) % names.length];
    const b0 = cpu(broker.pid);
    const d0 = cpu(daemonPid);
    const own = process.cpuUsage();
    stats[m].t.push(await modes[m]());
    const used = process.cpuUsage(own);
    stats[m].client += used.user + used.system;
    stats[m].broker += cpu(broker.pid) - b0;
    stats[m].daemon += cpu(daemonPid) - d0;
  }
}
const pct = (xs, p) =>
  [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const r = (x) => Number((x * 1000).toFixed(1));
const out = { n };
for (const m of names) {
  out[`${m}_p50_us`] = r(pct(stats[m].t, 50));
  out[`${m}_p99_us`] = r(pct(stats[m].t, 99));
  out[`${m}_broker_cpu_us`] = Number((stats[m].broker / n).toFixed(1));
  out[`${m}_daemon_cpu_us`] = Number((stats[m].daemon / n).toFixed(1));
  out[`${m}_client_cpu_us`] = Number((stats[m].client / n).toFixed(1));
}
if (stats.direct)
  for (const m of names)
    out[`${m}_vs_direct_p50`] = Number((pct(stats[m].t, 50) / pct(stats.direct.t, 50)).toFixed(2));
console.log(JSON.stringify(out));
broker.kill('SIGTERM');
await once(broker, 'exit');
// The daemon may outlive its broker by design (a successor rediscovers it): not this one.
try {
  process.kill(daemonPid, 'SIGTERM');
} catch {}
rmSync(dir, { recursive: true, force: true });
clearTimeout(watchdog);
