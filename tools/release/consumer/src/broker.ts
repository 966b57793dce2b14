// Scenario 4: a broker spawns the greeter on demand, connectService hands the
// client's connection to it, and the client talks to the daemon on the same
// socket: the handoff route, not a reconnect.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrameClient } from '@handoff/backend-sdk';
import { connectService, startBroker } from '@handoff/broker';
import { check } from './check.js';

const dir = mkdtempSync(join(tmpdir(), 'consumer-broker-'));
const socketPath = join(dir, 'broker.sock');
const broker = await startBroker({
  socketPath,
  services: [
    {
      name: 'greeter',
      version: '1.0.0',
      command: process.execPath,
      args: [join(import.meta.dirname, 'greeter-daemon.js')],
    },
  ],
  watchConfig: false,
});
try {
  const { socket, route } = await connectService('greeter', {
    version: '1.0.0',
    brokerPath: socketPath,
    timeoutMs: 30_000,
  });
  check(route === 'handoff', `route handoff, got ${route}`);
  const client = new FrameClient(socket);
  const reply = await client.request(0xf001, new TextEncoder().encode('consumer'));
  const text = new TextDecoder().decode(reply.payload);
  check(text.startsWith('hello consumer from '), `greeting, got ${text}`);
  client.close();
  console.log(`broker: ok (route ${route}: ${text})`);
} finally {
  await broker.close();
  rmSync(dir, { recursive: true, force: true });
}
