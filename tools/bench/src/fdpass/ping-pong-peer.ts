// The far end of the ping-pong case (ping-pong.ts), in its own Node process:
// listens on a stream socket at `path` with @handoff/fdpass ('fdpass') or
// node:net ('net'), writes every byte it reads straight back, and prints
// "ready" once listening. SIGTERM ends it.
import { createServer } from 'node:net';
import { FdServer, type FdSocket, type ReceivedMessage } from '@handoff/fdpass';

const [impl, path] = process.argv.slice(2);
if ((impl !== 'fdpass' && impl !== 'net') || path === undefined) {
  console.error('Usage: ping-pong-peer.ts fdpass|net <socket path>');
  process.exit(2);
}

let close: () => void;
if (impl === 'fdpass') {
  const server = await FdServer.listen(path, { kind: 'stream' });
  server.on('connection', (socket: FdSocket) => {
    socket.on('message', ({ data }: ReceivedMessage) => socket.write(data));
    socket.on('error', () => socket.close());
  });
  close = () => server.close();
} else {
  const server = createServer((socket) => {
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  close = () => server.close();
}
process.on('SIGTERM', () => {
  close();
  process.exit(0);
});
process.stdout.write('ready\n');
