// The floor of a handoff written in Node, for broker.connect_to_first_response:
// the least any Node broker can do to route a connection through a second
// process. The "broker" reads nothing (no Hello, no peer check, no parsing):
// it accepts raw fds and passes each to the "daemon" over a seqpacket
// channel, closing its copy. The daemon adopts each fd as a net.Socket and
// echoes what it reads. Its own listener echoes too, for the direct route the
// floor is compared with. Same client, same run: floor ÷ direct is how much
// of the handoff's ratio to direct is the extra process hop itself.
//   bare-handoff.mjs daemon <control.sock> <direct.sock>   prints "ready"
//   bare-handoff.mjs broker <client.sock> <control.sock>   prints "ready"
// The Hello-reading floor (capacity's protocol_floor_ratio) adds what any
// broker that routes by service name must do, and nothing else: it waits
// for the client's first bytes (its Hello, with the request behind it) and
// passes them along with the fd; the daemon writes them back first — the
// size of a Negotiated and a response — then echoes. Its client sends a
// Hello and reads two frames, as connectService does on a handoff.
//   bare-handoff.mjs hello-daemon <control.sock> <direct.sock>
//   bare-handoff.mjs hello-broker <client.sock> <control.sock>
import { createServer } from 'node:net';
import { FdAcceptor, FdServer, FdSocket, socketFromFd } from '@handoff/fdpass';

const [role, first, second] = process.argv.slice(2);
const echo = (socket) => socket.on('data', (chunk) => socket.write(chunk)).on('error', () => {});

if (role === 'daemon' || role === 'hello-daemon') {
  // The Hello-reading daemon writes back first what its broker read for it.
  const writeBack = role === 'hello-daemon';
  const control = await FdServer.listen(first, { kind: 'seqpacket' });
  control.on('connection', (channel) =>
    channel.on('message', ({ data, fds }) => {
      for (const fd of fds) {
        const socket = echo(socketFromFd(fd));
        if (writeBack) socket.write(data);
      }
    }),
  );
  const direct = createServer(echo);
  direct.listen(second, () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => {
    control.close();
    direct.close(() => process.exit(0));
  });
} else if (role === 'hello-broker') {
  const channel = await FdSocket.connect(second, { kind: 'seqpacket' });
  // As the broker reads a client: one read per readiness event, at most 64 KiB.
  const clients = await FdServer.listen(first, {
    kind: 'stream',
    readBudget: 1,
    maxMessageSize: 64 * 1024,
  });
  clients.on('connection', (client) => {
    client.on('error', () => client.close());
    client.once('message', ({ data }) => {
      channel.write(data, [client.fd]);
      client.close();
    });
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    clients.close();
    channel.close();
    process.exit(0);
  });
} else if (role === 'broker') {
  const channel = await FdSocket.connect(second, { kind: 'seqpacket' });
  const one = Buffer.from([1]);
  const acceptor = await FdAcceptor.listen(first);
  acceptor.on('connections', (fds) => {
    for (const fd of fds) channel.write(one, [fd], { transfer: true });
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    acceptor.close();
    channel.close();
    process.exit(0);
  });
} else {
  process.stderr.write('usage: bare-handoff.mjs [hello-]daemon|[hello-]broker <path> <path>\n');
  process.exit(2);
}
