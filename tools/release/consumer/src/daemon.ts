// Scenario 3: serveDaemon answers a framed request, and probeDaemon verifies
// the daemon's identity (SO_PEERCRED and start time) on the same endpoint.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentDaemonProcess, FrameClient, probeDaemon, serveDaemon } from '@handoff/backend-sdk';
import { check } from './check.js';

const dir = mkdtempSync(join(tmpdir(), 'consumer-daemon-'));
const endpoint = join(dir, 'echo.sock');
const server = await serveDaemon({
  endpoint,
  identity: await currentDaemonProcess(endpoint),
  payloadProtocols: [0xf001],
  onRequest: (frame) => new TextEncoder().encode(`echo ${new TextDecoder().decode(frame.payload)}`),
});
try {
  const probed = await probeDaemon(endpoint);
  check(probed.identity.pid === process.pid, `probe pid ${probed.identity.pid}`);
  const socket = connect(endpoint);
  const client = new FrameClient(socket);
  const reply = await client.request(0xf001, new TextEncoder().encode('hi'));
  check(new TextDecoder().decode(reply.payload) === 'echo hi', 'echo answer');
  client.close();
  console.log(`daemon: ok (probe verified pid ${probed.identity.pid})`);
} finally {
  await server.close({ deadlineMs: 1000 });
  rmSync(dir, { recursive: true, force: true });
}
