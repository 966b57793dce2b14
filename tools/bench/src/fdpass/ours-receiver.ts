// Receiver for our case, run as its own Node process: connects to the
// bench's FdServer, closes every fd it receives (the same work as the C and
// Python receivers) and answers each round's last message with the count.
import { closeFds, FdSocket, type ReceivedMessage } from '@handoff/fdpass';
import { countMessage, isLast } from './round-protocol.ts';

const path = process.argv[2];
if (path === undefined) {
  console.error('Usage: ours-receiver.ts <socket path>');
  process.exit(2);
}

const sock = await FdSocket.connect(path, { kind: 'seqpacket' });
let count = 0;
sock.on('message', ({ data, fds }: ReceivedMessage) => {
  closeFds(fds); // one native call; the same close(2) per fd as the C receiver
  count += fds.length;
  if (isLast(data)) {
    sock.write(countMessage(count));
    count = 0;
  }
});
sock.on('error', (err: Error) => {
  console.error(`ours-receiver: ${err.message}`);
  process.exit(1);
});
sock.on('close', () => process.exit(0));
