// The baseline of broker.handoff.throughput: a bare Node accept-and-write
// server in its own process — each accepted connection's first bytes are
// written back (one framed reply, as the echo daemon answers) and it is ended.
//   capacity-accept-server.mjs <socket>     prints "ready" once listening
import { createServer } from 'node:net';

const server = createServer((socket) => {
  socket.on('error', () => socket.destroy());
  socket.once('data', (data) => socket.end(data));
});
server.listen(process.argv[2], () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
