import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_PAYLOAD_PROTOCOL, CAP_HANDLE_PASSING, encodeFramed, Hello, requestFrame } from '@handoff/protocol';
const dir = mkdtempSync(join(tmpdir(), 'ph-'));
const sock = join(dir, 'run', 'b.sock');
const b = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', join(import.meta.dirname, 'broker-process.mjs'), sock], { stdio: ['ignore', 'pipe', 'inherit'] });
await once(b.stdout, 'data');
const hello = (svc) => encodeFramed(requestFrame({ payloadProtocol: CONTROL_PAYLOAD_PROTOCOL, requestId: 1n, payload: Hello.encode({ clientMinProtocol: 1, clientMaxProtocol: 1, serviceName: svc, wantedVersion: '1.0.0', clientCapabilities: CAP_HANDLE_PASSING }) }));
const h = hello('echo-plain');
for (let i = 0; i < 20000; i++) { const s = connect({ path: sock }); await once(s, 'connect'); s.write(h); await once(s, 'data'); s.destroy(); }
b.kill('SIGTERM'); await once(b, 'exit');
