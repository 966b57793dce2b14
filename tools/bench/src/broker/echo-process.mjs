// A raw byte echo in its own process: the baseline for first-reply latency,
// so ours and the baseline both cross a process boundary.
//   echo-process.mjs <socket>     prints "ready" once listening
import { createServer } from 'node:net';

const server = createServer((socket) => socket.pipe(socket));
server.listen(process.argv[2], () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
