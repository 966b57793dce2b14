// A focused probe of broker.hello_to_reply for profiling and A/B runs:
// spawns broker-process.mjs (with NODE flags from HELLO_PROBE_NODE_ARGS) and
// echo-process.mjs, then N interleaved Hellos/echoes; prints p50/p99 and the
// broker's CPU µs per Hello (from /proc/<pid>/stat).
// HELLO_PROBE_A=<another broker-process.mjs> adds a second broker (say, an
// older build) to the interleaving, for A/B runs in one process.
//   node hello-probe.mjs [n]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childReady, stopOnExit } from './probe-children.mjs';
import { helloBytes } from './probe-wire.mjs';

// Never hold the bench lock past a hang: give up after 3 minutes.
const spawned = [];
stopOnExit(spawned);
const watchdog = setTimeout(() => {
  console.error('probe: timed out');
  for (const c of spawned) c.kill('SIGKILL');
  process.exit(1);
}, 180_000);
const n = Number(process.argv[2] ?? 3000);
const dir = mkdtempSync(join(tmpdir(), 'hello-probe-'));
const nodeArgs = (process.env.HELLO_PROBE_NODE_ARGS ?? '').split(' ').filter(Boolean);
// HELLO_PROBE_PIN=<cpu>: servers on that CPU (run the probe under taskset on another), so
// where the scheduler happens to place each process does not decide an A/B run.
const pin = process.env.HELLO_PROBE_PIN;
const pinned = (args) =>
  pin === undefined
    ? [process.execPath, args]
    : ['taskset', ['-c', pin, process.execPath, ...args]];
const child = (script, arg, args = []) =>
  spawn(...pinned([...args, join(import.meta.dirname, script), arg]), {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
const brokerPath = join(dir, 'broker.sock');
const echoPath = join(dir, 'echo.sock');
// HELLO_PROBE_B=<broker-process.mjs> replaces this directory's broker.
const broker = process.env.HELLO_PROBE_B
  ? spawn(...pinned([...nodeArgs, process.env.HELLO_PROBE_B, brokerPath]), {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
  : child('broker-process.mjs', brokerPath, nodeArgs);
const echo = spawn(process.execPath, ['/tmp/alt/echo-process.mjs', echoPath], { stdio: ['ignore', 'pipe', 'inherit'] });
const aScript = process.env.HELLO_PROBE_A;
// Its own directory: a broker keeps its control socket beside its client socket.
mkdirSync(join(dir, 'a'));
const aPath = join(dir, 'a', 'broker.sock');
const brokerA = aScript
  ? spawn(...pinned([aScript, aPath]), { stdio: ['ignore', 'pipe', 'inherit'] })
  : null;
spawned.push(broker, echo, ...(brokerA ? [brokerA] : []));
if (brokerA) await childReady(brokerA);
await childReady(broker);
await childReady(echo);
const frame = helloBytes('echo-plain');
const probeTimes = [];
const echoProbe = [];
async function firstReply(path) {
  const tc = process.hrtime.bigint();
  const socket = connect({ path });
  await once(socket, 'connect');
  const tk = process.hrtime.bigint();
  const t0 = performance.now();
  const h0 = process.hrtime.bigint();
  socket.write(frame);
  await once(socket, 'data');
  const h1 = process.hrtime.bigint();
  const e = performance.now() - t0;
  if (path === aPath) probeTimes.push([String(tc), String(tk), String(h0), String(h1)]);
  if (path === echoPath) echoProbe.push([String(tc), String(tk), String(h0), String(h1)]);
  socket.destroy();
  return e;
}
process.on('exit', () => { (await_fs()).writeFileSync('/tmp/probe-times.json', JSON.stringify(probeTimes)); (await_fs()).writeFileSync('/tmp/probe-echo-times.json', JSON.stringify(echoProbe)); });
import * as __fs from 'node:fs';
function await_fs() { return __fs; }
// On-CPU ns of the process's main thread (schedstat: exact, unlike ticks), in µs.
const cpu = (pid) => Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
// Warm up (this also spawns the daemon of echo-plain).
for (let i = 0; i < 500; i++) {
  await firstReply(brokerPath);
  if (brokerA) await firstReply(aPath);
}
// A fresh random order each round, so no target always follows the same one
// (a rotation keeps each one's neighbour fixed).
const targets = [
  { name: 'b', path: brokerPath, pid: broker.pid, t: [], cpu: 0 },
  { name: 'echo', path: echoPath, pid: echo.pid, t: [], cpu: 0 },
  ...(brokerA ? [{ name: 'a', path: aPath, pid: brokerA.pid, t: [], cpu: 0 }] : []),
];
for (let i = 0; i < n; i++) {
  const order = [...targets];
  for (let k = order.length - 1; k > 0; k--) {
    const m = Math.floor(Math.random() * (k + 1));
    [order[k], order[m]] = [order[m], order[k]];
  }
  for (const x of order) {
    const c0 = cpu(x.pid);
    x.t.push(await firstReply(x.path));
    x.cpu += cpu(x.pid) - c0;
  }
}
const [{ t: a, cpu: brokerCpu }, { t: b, cpu: echoCpu }, { t: old, cpu: oldCpu } = {}] = targets;
const pct = (xs, p) =>
  [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
console.log(JSON.stringify(Object.fromEntries([50,75,90,95,97,98,99].map((p) => [p, [Math.round(pct(a, p) * 1000), Math.round(pct(b, p) * 1000), old ? Math.round(pct(old, p) * 1000) : null]]))));
const r = (x) => Number((x * 1000).toFixed(1));
console.log(
  JSON.stringify({
    n,
    p50_us: r(pct(a, 50)),
    p99_us: r(pct(a, 99)),
    echo_p50_us: r(pct(b, 50)),
    echo_p99_us: r(pct(b, 99)),
    ratio_speed: Number((pct(b, 50) / pct(a, 50)).toFixed(3)),
    broker_cpu_us_per_hello: Number((brokerCpu / n).toFixed(1)),
    echo_cpu_us_per_conn: Number((echoCpu / n).toFixed(1)),
    ...(brokerA
      ? {
          a_p50_us: r(pct(old, 50)),
          a_p99_us: r(pct(old, 99)),
          a_ratio_speed: Number((pct(b, 50) / pct(old, 50)).toFixed(3)),
          a_cpu_us_per_hello: Number((oldCpu / n).toFixed(1)),
        }
      : {}),
  }),
);
broker.kill('SIGTERM');
echo.kill('SIGTERM');
brokerA?.kill('SIGTERM');
await Promise.all([
  once(broker, 'exit'),
  once(echo, 'exit'),
  ...(brokerA ? [once(brokerA, 'exit')] : []),
]);
rmSync(dir, { recursive: true, force: true });
clearTimeout(watchdog);
