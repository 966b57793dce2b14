// Child process for the backend-sdk suite: serves, side by side, a daemon
// built with serveDaemon (echoing payload protocol 0xF001) and a raw
// net echo server — the same bytes back with no framing work at all.
//   servers.ts <daemon.sock> <echo.sock>     prints "ready" when both listen
import { createServer } from 'node:net';
import { currentDaemonProcess, serveDaemon } from '@handoff/backend-sdk';

const [daemonPath, echoPath] = process.argv.slice(2);
if (!daemonPath || !echoPath) {
  console.error('usage: servers.ts <daemon.sock> <echo.sock>');
  process.exit(2);
}
const identity = await currentDaemonProcess(daemonPath);
const daemon = await serveDaemon({
  endpoint: daemonPath,
  identity,
  payloadProtocols: [0xf001],
  maxInFlightPerConnection: 1024,
  onRequest: (frame) => frame.payload,
});
const echo = createServer((socket) => socket.pipe(socket));
await new Promise<void>((resolve) => echo.listen(echoPath, resolve));
process.on('SIGTERM', async () => {
  echo.close();
  await daemon.close({ deadlineMs: 200 });
  process.exit(0);
});
process.stdout.write('ready\n');
