// A separate process for the tour: it listens on a Unix socket path, takes
// the TCP connection whose fd arrives there, and serves it. It shares no IPC
// channel with the tour — only the socket path given on its command line.
import { FdServer, type ReceivedMessage, socketFromFd } from '@handoff/fdpass';

const path = process.argv[2];
if (!path) {
  console.error('usage: adopter.ts <socket-path>');
  process.exit(2);
}

const server = await FdServer.listen(path, { kind: 'seqpacket' });
process.stdout.write('ready\n');
server.once('connection', (channel) => {
  channel.once('message', ({ data, fds }: ReceivedMessage) => {
    const [fd, ...extra] = fds;
    for (const stray of extra) socketFromFd(stray).destroy();
    if (fd === undefined) {
      console.error(`adopter: message without an fd (${data.length} bytes)`);
      process.exit(1);
    }
    const client = socketFromFd(fd);
    client.write(`now served by pid ${process.pid}, which received the connection's fd\n`);
    client.on('data', (chunk) => client.end(`echo from pid ${process.pid}: ${chunk}`));
    client.on('close', () => {
      channel.close();
      server.close();
    });
  });
});
