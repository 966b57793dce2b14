import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_PAYLOAD_PROTOCOL, CAP_HANDLE_PASSING, encodeFramed, Hello, requestFrame, tryDecodeFramed, HelloReply } from '@handoff/protocol';
const dir = mkdtempSync(join(tmpdir(), 'ph-'));
const sock = join(dir, 'run', 'b.sock');
const b = spawn(process.execPath, [join(import.meta.dirname, 'broker-process.mjs'), sock], { stdio: ['ignore', 'pipe', 'inherit'] });
await once(b.stdout, 'data');
const hello = (svc) => encodeFramed(requestFrame({ payloadProtocol: CONTROL_PAYLOAD_PROTOCOL, requestId: 1n, payload: Hello.encode({ clientMinProtocol: 1, clientMaxProtocol: 1, serviceName: svc, wantedVersion: '1.0.0', clientCapabilities: CAP_HANDLE_PASSING }) }));
const req = encodeFramed(requestFrame({ payloadProtocol: 0xf001, requestId: 7n, payload: new Uint8Array(32) }));
async function run(svc, pipeline) {
  const t = [performance.now()];
  const s = connect({ path: sock }); await once(s, 'connect'); t.push(performance.now());
  s.write(pipeline ? Buffer.concat([hello(svc), req]) : hello(svc));
  let buf = Buffer.alloc(0); const frames = [];
  await new Promise((res) => s.on('data', (d) => { buf = Buffer.concat([buf, d]); for (;;) { const x = tryDecodeFramed(buf); if (!x) break; buf = buf.subarray(x.consumed); frames.push(x.frame); t.push(performance.now()); if (frames.length === (svc === 'echo' ? (pipeline ? 3 : 2) : 1)) res(); } }));
  let neg;
  if (svc === 'echo-plain') {
    neg = HelloReply.decode(frames[0].payload).result.value;
    s.destroy();
    const c = connect({ path: neg.backendPipe }); await once(c, 'connect'); t.push(performance.now());
    c.write(req); await once(c, 'data'); t.push(performance.now()); c.destroy();
  } else if (!pipeline) { s.write(req); await once(s, 'data'); t.push(performance.now()); s.destroy(); } else s.destroy();
  return t.map((x) => x - t[0]);
}
for (const [svc, pl] of [['echo', false], ['echo', true], ['echo-plain', false], ['echo', false], ['echo', true], ['echo-plain', false]]) {
  for (let i = 0; i < 200; i++) await run(svc, pl);
  const rows = []; for (let i = 0; i < 1000; i++) rows.push(await run(svc, pl));
  const med = rows[0].map((_, k) => { const a = rows.map((r) => r[k]).sort((x, y) => x - y); return (a[500] * 1000).toFixed(0); });
  console.log(svc, pl ? 'pipelined' : '', 'cumulative µs p50:', med.join(' '));
}
b.kill('SIGTERM'); await once(b, 'exit');
